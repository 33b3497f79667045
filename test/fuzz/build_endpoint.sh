#!/usr/bin/env bash
# Builds (and with `run`, runs) the libFuzzer target for the sidecar's policy text:
# test/fuzz/endpoint_resource_fuzz.cc over config/endpoint_resource.cc, policy/*.cc and the
# JSON reader (base/json*.cc over the system simdjson).
#
#   test/fuzz/build_endpoint.sh              # builds .out/fuzz/endpoint_resource_fuzz
#   test/fuzz/build_endpoint.sh run 300      # builds, then fuzzes for 300 s
set -euo pipefail
cd "$(dirname "$0")/../.."

CXX=${CXX:-clang++-16}
OUT=${FUZZ_OUT:-.out/fuzz}
mkdir -p "$OUT/artifacts" "$OUT/corpus/endpoint_resource"

FLAGS=(-std=c++2b -D__cpp_concepts=202002L -Wno-macro-redefined -g -O1 -I.
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)

"$CXX" "${FLAGS[@]}" test/fuzz/endpoint_resource_fuzz.cc config/endpoint_resource.cc \
  base/json.cc base/json_fields.cc base/json_writer.cc base/ip.cc \
  policy/cluster_policy.cc policy/endpoint_codec.cc policy/endpoint_policy.cc \
  policy/rule_set.cc policy/selector.cc -lsimdjson \
  -o "$OUT/endpoint_resource_fuzz"
echo "built $OUT/endpoint_resource_fuzz"

if [[ "${1:-}" == run ]]; then
  "$OUT/endpoint_resource_fuzz" -max_total_time="${2:-300}" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$OUT/artifacts/" -print_final_stats=1 \
    "$OUT/corpus/endpoint_resource" test/fuzz/corpus/endpoint_resource
fi
