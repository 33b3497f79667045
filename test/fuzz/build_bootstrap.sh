#!/usr/bin/env bash
# Builds (and with `run`, runs) the libFuzzer target for picket-proxy's bootstrap file:
# test/fuzz/bootstrap_fuzz.cc over config/bootstrap.cc (and base/ip.cc, its address parser).
#
#   test/fuzz/build_bootstrap.sh              # builds .out/fuzz/bootstrap_fuzz
#   test/fuzz/build_bootstrap.sh run 300      # builds, then fuzzes for 300 s
set -euo pipefail
cd "$(dirname "$0")/../.."

CXX=${CXX:-clang++-16}
OUT=${FUZZ_OUT:-.out/fuzz}
mkdir -p "$OUT/artifacts/bootstrap" "$OUT/corpus/bootstrap"

FLAGS=(-std=c++2b -D__cpp_concepts=202002L -Wno-macro-redefined -g -O1 -I.
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)

"$CXX" "${FLAGS[@]}" test/fuzz/bootstrap_fuzz.cc config/bootstrap.cc base/ip.cc -lyaml-cpp \
  -o "$OUT/bootstrap_fuzz"
echo "built $OUT/bootstrap_fuzz"

if [[ "${1:-}" == run ]]; then
  "$OUT/bootstrap_fuzz" -max_total_time="${2:-300}" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$OUT/artifacts/bootstrap/" -print_final_stats=1 \
    "$OUT/corpus/bootstrap" test/fuzz/corpus/bootstrap
fi
