#!/usr/bin/env bash
# The README's test command: installs what is missing, builds everything, checks the layering of
# DESIGN.md, and runs every test (unit, integration, conformance, e2e) — then the same tests
# again under ASan+UBSan unless PICKET_SKIP_ASAN=1.
#
# e2e tests create network namespaces and iptables rules: they need root and fail loudly
# without it.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh

BAZEL=(bazel)
JOBS=(--jobs="$(nproc)")

echo "== layering: //config and //policy must not depend on libuv, c-ares, BoringSSL or spdlog"
forbidden='//bazel/system:uv + //bazel/system:cares + //bazel/system:spdlog + //bazel/system:boringssl + @boringssl//:ssl'
bad=$("${BAZEL[@]}" query --noshow_progress "deps(//config/... + //policy/...) intersect ($forbidden)" 2>/dev/null)
if [[ -n "$bad" ]]; then
  echo "layering violation: //config or //policy depends on:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "layering ok"

echo "== build and test"
"${BAZEL[@]}" build "${JOBS[@]}" //...
"${BAZEL[@]}" test "${JOBS[@]}" //...

if [[ "${PICKET_SKIP_ASAN:-0}" != 1 ]]; then
  echo "== ASan+UBSan"
  "${BAZEL[@]}" test "${JOBS[@]}" --config=asan -- //... -//test/bench/...
fi
echo "all tests passed"
