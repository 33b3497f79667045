#!/usr/bin/env bash
# Builds the libFuzzer targets with clang++-16 (Bazel's toolchain is g++) and, with `run`, runs
# one of them on its seed corpus.
#
#   test/fuzz/build.sh                       # builds .out/fuzz/manifest_fuzz
#   test/fuzz/build.sh run manifest 300      # builds, then fuzzes for 300 s
#
# Findings (crash-*, timeout-*, oom-*) land in .out/fuzz/artifacts/<name>/; the grown corpus in
# .out/fuzz/corpus/<name>/ (the seeds in test/fuzz/corpus/<name>/ are never modified).
set -euo pipefail
cd "$(dirname "$0")/../.."

CXX=${CXX:-clang++-16}
OUT=${FUZZ_OUT:-.out/fuzz}
mkdir -p "$OUT"

# -D__cpp_concepts: libstdc++ 12's <expected> checks it, and clang 16 reports an older value.
FLAGS=(-std=c++2b -D__cpp_concepts=202002L -Wno-macro-redefined -g -O1 -I.
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)

MANIFEST_SRCS=(
  config/label_validation.cc
  config/manifest_cidr.cc
  config/endpoint_slice.cc
  config/manifest_decode.cc
  config/manifest_defaults.cc
  config/manifest_loader.cc
  config/manifest_network_policy.cc
  config/yaml_documents.cc
  config/service.cc
  config/yaml_fields.cc
  base/ip.cc
)

"$CXX" "${FLAGS[@]}" test/fuzz/manifest_fuzz.cc "${MANIFEST_SRCS[@]}" -lyaml-cpp \
  -o "$OUT/manifest_fuzz"
echo "built $OUT/manifest_fuzz"

if [[ "${1:-}" == run ]]; then
  name=${2:-manifest}
  seconds=${3:-300}
  mkdir -p "$OUT/corpus/$name" "$OUT/artifacts/$name"
  "$OUT/${name}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$OUT/artifacts/$name/" -print_final_stats=1 \
    "$OUT/corpus/$name" "test/fuzz/corpus/$name"
fi
