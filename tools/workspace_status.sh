#!/bin/sh
# tools/workspace_status.sh — Bazel's --workspace_status_command (see .bazelrc): the keys that
# //base:build_info stamps into every binary's --version. Outside a git checkout (a source
# tarball, git not installed) the commit is "unknown"; the build never fails because of it.
commit=$(git rev-parse --short=12 HEAD 2>/dev/null) || commit=""
if [ -z "$commit" ]; then
  commit=unknown
elif [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit-dirty"
fi
echo "STABLE_GIT_COMMIT $commit"
