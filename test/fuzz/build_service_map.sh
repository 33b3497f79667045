#!/usr/bin/env bash
# Builds the service-map resource decoder's libFuzzer target with clang++-16 and, with `run`,
# fuzzes it from its seed corpus.
#
#   test/fuzz/build_service_map.sh                        # builds .out/fuzz/service_map_fuzz
#   test/fuzz/build_service_map.sh run service_map 60     # builds, then fuzzes for 60 s
set -euo pipefail
cd "$(dirname "$0")/../.."

CXX=${CXX:-clang++-16}
OUT=${FUZZ_OUT:-.out/fuzz}
mkdir -p "$OUT"

# -D__cpp_concepts: libstdc++ 12's <expected> checks it, and clang 16 reports an older value.
FLAGS=(-std=c++2b -D__cpp_concepts=202002L -Wno-macro-redefined -g -O1 -I.
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)

"$CXX" "${FLAGS[@]}" test/fuzz/service_map_fuzz.cc proxy/xds/service_map.cc base/json.cc base/json_writer.cc \
  base/json_fields.cc base/ip.cc -lsimdjson -o "$OUT/service_map_fuzz"
echo "built $OUT/service_map_fuzz"

if [[ "${1:-}" == run ]]; then
  name=${2:-service_map}
  seconds=${3:-60}
  mkdir -p "$OUT/corpus/$name" "$OUT/artifacts/$name"
  "$OUT/${name}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$OUT/artifacts/$name/" -print_final_stats=1 \
    "$OUT/corpus/$name" "test/fuzz/corpus/$name"
fi
