#!/usr/bin/env bash
# Builds the HTTP/1.1 request and response parsers' libFuzzer targets with clang++-16 and, with `run`, fuzzes
# it from its seed corpus.
#
#   test/fuzz/build_http.sh                 # builds .out/fuzz/http_fuzz
#   test/fuzz/build_http.sh run http 60     # builds, then fuzzes for 60 s
#   test/fuzz/build_http.sh run http_response 60
set -euo pipefail
cd "$(dirname "$0")/../.."

CXX=${CXX:-$(command -v clang++-16 || command -v clang++)}
OUT=${FUZZ_OUT:-.out/fuzz}
mkdir -p "$OUT"

# -D__cpp_concepts: libstdc++ 12's <expected> checks it, and clang 16 reports an older value.
FLAGS=(-std=c++2b -D__cpp_concepts=202002L -Wno-macro-redefined -g -O1 -I.
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)

"$CXX" "${FLAGS[@]}" test/fuzz/http_fuzz.cc net/http_parser.cc -o "$OUT/http_fuzz"
echo "built $OUT/http_fuzz"
"$CXX" "${FLAGS[@]}" test/fuzz/http_response_fuzz.cc net/http_parser.cc -o "$OUT/http_response_fuzz"
echo "built $OUT/http_response_fuzz"

if [[ "${1:-}" == run ]]; then
  name=${2:-http}
  seconds=${3:-60}
  mkdir -p "$OUT/corpus/$name" "$OUT/artifacts/$name"
  "$OUT/${name}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$OUT/artifacts/$name/" -print_final_stats=1 \
    "$OUT/corpus/$name" "test/fuzz/corpus/$name"
fi
