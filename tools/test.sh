#!/usr/bin/env bash
# The README's test command: installs what is missing, builds everything, checks the layering of
# docs/architecture.md, and runs every test (unit, integration, conformance, e2e) — then the same tests
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
bad=$("${BAZEL[@]}" query --noshow_progress "deps(//config/... + //policy/...) intersect ($forbidden)")
if [[ -n "$bad" ]]; then
  echo "layering violation: //config or //policy depends on:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "layering ok"

echo "== build and test"
"${BAZEL[@]}" build "${JOBS[@]}" //...
SUMMARY=$(mktemp)
trap 'rm -f "$SUMMARY"' EXIT
passed=0 failed=0
count() {  # adds the counts of bazel's "Executed N out of M tests: ..." line to the totals
  local line p f
  line=$(grep -E '^Executed [0-9]+ out of [0-9]+ tests?:' "$SUMMARY" | tail -n 1)
  p=$(grep -oE '[0-9]+ tests? pass' <<<"$line" | grep -oE '^[0-9]+' || echo 0)
  f=$(grep -oE '[0-9]+ (fails?|tests? fail)[a-z ]*' <<<"$line" | grep -oE '^[0-9]+' || echo 0)
  passed=$((passed + p)) failed=$((failed + f))
}
status=0
"${BAZEL[@]}" test "${JOBS[@]}" //... 2>&1 | tee "$SUMMARY" || status=1
count

if [[ "${PICKET_SKIP_ASAN:-0}" != 1 ]]; then
  echo "== ASan+UBSan"
  "${BAZEL[@]}" test "${JOBS[@]}" --config=asan -- //... -//test/bench/... 2>&1 | tee "$SUMMARY" ||
    status=1
  count
fi
echo "test targets (plain and ASan+UBSan runs):"
echo "$passed passed, $failed failed"
exit "$status"
