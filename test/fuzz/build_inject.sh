#!/usr/bin/env bash
# Builds the injection libFuzzer targets with clang++-16 (Bazel's toolchain is g++) and, with
# `run`, runs one of them on its seed corpus.
#
#   test/fuzz/build_inject.sh                          # builds admission, jsonpatch, document
#   test/fuzz/build_inject.sh run admission 120        # builds, then fuzzes for 120 s
#
# Findings (crash-*, timeout-*, oom-*) land in .out/fuzz/artifacts/; the grown corpus in
# .out/fuzz/corpus/<name>/ (the seeds in test/fuzz/corpus/<name>/ are never modified).
set -euo pipefail
cd "$(dirname "$0")/../.."

CXX=${CXX:-clang++-16}
OUT=${FUZZ_OUT:-.out/fuzz}
mkdir -p "$OUT/artifacts"

# -D__cpp_concepts: libstdc++ 12's <expected> checks it, and clang 16 reports an older value.
FLAGS=(-std=c++2b -D__cpp_concepts=202002L -Wno-macro-redefined -g -O1 -I.
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined)

DOCUMENT=(config/document.cc config/document_emit.cc config/document_json.cc base/json.cc base/json_writer.cc
          -lsimdjson)
INJECT=(inject/admission.cc inject/bootstrap_gen.cc inject/injector.cc inject/json_patch.cc
        config/bootstrap.cc base/ip.cc)

"$CXX" "${FLAGS[@]}" test/fuzz/admission_fuzz.cc "${INJECT[@]}" "${DOCUMENT[@]}" -lyaml-cpp \
  -o "$OUT/admission_fuzz" &
"$CXX" "${FLAGS[@]}" test/fuzz/jsonpatch_fuzz.cc inject/json_patch.cc "${DOCUMENT[@]}" -lyaml-cpp \
  -o "$OUT/jsonpatch_fuzz" &
wait
"$CXX" "${FLAGS[@]}" test/fuzz/document_fuzz.cc "${DOCUMENT[@]}" -lyaml-cpp -o "$OUT/document_fuzz"
echo "built $OUT/admission_fuzz $OUT/jsonpatch_fuzz $OUT/document_fuzz"

if [[ "${1:-}" == run ]]; then
  name=${2:-admission}
  seconds=${3:-120}
  mkdir -p "$OUT/corpus/$name"
  "$OUT/${name}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -artifact_prefix="$OUT/artifacts/" -print_final_stats=1 \
    "$OUT/corpus/$name" "test/fuzz/corpus/$name"
fi
