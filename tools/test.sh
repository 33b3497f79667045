#!/usr/bin/env bash
# The README's test command: installs what is missing, builds everything, checks the layering of
# docs/architecture.md ("Dependency directions"), and runs every test (//:all_tests: unit,
# integration, conformance, e2e) — then the same tests again under ASan+UBSan unless
# PICKET_SKIP_ASAN=1.
#
# e2e tests create network namespaces and iptables rules: they need root and fail loudly
# without it.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh

BAZEL=(bazel)
JOBS=(--jobs="$(nproc)")

query() { "${BAZEL[@]}" query --noshow_progress "$@" 2> >(grep -v '^INFO: Empty results' >&2); }

# Our rooms as a query set; a room that does not exist (yet) is left out.
rooms() {
  local set="" d
  for d in "$@"; do
    [[ -f "$d/BUILD.bazel" ]] && set+="${set:+ + }//$d/..."
  done
  echo "$set"
}

# Fails with `message` and the offending targets when `expr` is not empty.
must_be_empty() {
  local message="$1" expr="$2" bad
  bad=$(query "$expr")
  if [[ -n "$bad" ]]; then
    echo "layering violation: $message:" >&2
    echo "$bad" >&2
    exit 1
  fi
}

echo "== layering (docs/architecture.md)"
# base/ depends on nothing of ours (third-party libraries such as spdlog and simdjson are fine).
must_be_empty "//base depends on" \
  "deps(//base/...) intersect ($(rooms config policy net filters proxy control inject xds))"
# config/ and policy/ are pure: no event loop, no TLS, no DNS, no logging library.
third_party_io='//bazel/system:uv + //bazel/system:cares + //bazel/system:spdlog + //bazel/system:boringssl + @boringssl//:ssl'
must_be_empty "//config or //policy depends on" \
  "deps(//config/... + //policy/...) intersect ($third_party_io)"
# net/ is transport: the binaries use it, never the other way round.
must_be_empty "//net depends on" "deps(//net/...) intersect ($(rooms proxy control inject))"
# //:all_tests is what runs below: every test target must be in it.
must_be_empty "tests missing from //:all_tests in BUILD.bazel" \
  "tests(//...) except tests(//:all_tests)"
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
"${BAZEL[@]}" test "${JOBS[@]}" //:all_tests 2>&1 | tee "$SUMMARY" || status=1
count

if [[ "${PICKET_SKIP_ASAN:-0}" != 1 ]]; then
  echo "== ASan+UBSan"
  "${BAZEL[@]}" test "${JOBS[@]}" --config=asan //:all_tests 2>&1 | tee "$SUMMARY" ||
    status=1
  count
fi
echo "test targets (plain and ASan+UBSan runs):"
echo "$passed passed, $failed failed"
exit "$status"
