#!/usr/bin/env bash
# kubectl kustomize examples/kubernetes (Debian's kubectl 1.20 at /opt/kubectl-1.20, or
# $KUBECTL), offline, then check_kustomize.py on what it renders. Arguments: the picket-control
# binary and the Dockerfile (runfiles paths).
set -euo pipefail

CONTROL=$1
DOCKERFILE=$2
KUBECTL=${KUBECTL:-/opt/kubectl-1.20/usr/bin/kubectl}
if [[ ! -x $KUBECTL ]]; then
  echo "FAIL: no kubectl at $KUBECTL (tools/install-deps.sh unpacks Debian's kubernetes-client" \
    "there; or set KUBECTL)" >&2
  exit 1
fi
HERE=$(dirname "$0")
TMP=$(mktemp -d "${TEST_TMPDIR:-/tmp}/kustomize.XXXXXX")
export HOME=$TMP/home # kubectl may write ~/.kube; never the user's
mkdir -p "$HOME"

# A plain copy of the directory: kustomize refuses files reached through symlinks that leave
# the kustomization's root, which is what the runfiles tree is made of.
cp -rL examples/kubernetes "$TMP/kubernetes"
"$KUBECTL" kustomize "$TMP/kubernetes" >"$TMP/rendered.yaml"
"$CONTROL" serve --help >"$TMP/serve-help.txt" 2>&1

/usr/bin/python3 "$HERE/check_kustomize.py" "$TMP/rendered.yaml" "$TMP/serve-help.txt" \
  "$DOCKERFILE"
