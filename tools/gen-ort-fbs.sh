#!/usr/bin/env bash
# Regenerates src/artifacts/generated/fbs/ (TypeScript readers/builders for ORT's training
# checkpoint flatbuffer) from the official ONNX Runtime schemas kept in src/artifacts/generated/schema/.
#
# Schema source (github.com/microsoft/onnxruntime, MIT licence), copied verbatim:
#   onnxruntime/core/flatbuffers/schema/ort_training_checkpoint.fbs @ 1ad44866feb9cbe2fc6d2e72da8062d15cc3f1a4
#   onnxruntime/core/flatbuffers/schema/ort.fbs                     @ a80912204add4e15b34542eb412348f53edb8098
# (the release tag v1.19.2 itself was not reachable from the tools used; these are the stored
# versions with ModuleState.has_external_data and checkpoint version 2, the layout the
# onnxruntime-web 1.19.2 training build reads, which test/artifacts/ort-training.test.ts verifies.
# The Tensor fields this tool reads/writes - name, dims, data_type, raw_data - are the same in
# every ORT release since the checkpoint format was introduced.)
#
# Pass a directory holding newer copies of the two .fbs files to refresh them first:
#   bash tools/gen-ort-fbs.sh [path/to/onnxruntime/core/flatbuffers/schema]
#
# Compiler: flatc 2.0.8 (Debian bookworm: apt-get install -y flatbuffers-compiler). Its TypeScript
# output uses bigint for 64-bit fields and the ByteBuffer/Builder API of the npm `flatbuffers`
# runtime >= 2.0 (the project pins flatbuffers ^25.9.23; the generated code type-checks and round-trips
# with it - see test/artifacts/checkpoint.test.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
SCHEMA=src/artifacts/generated/schema
OUT=src/artifacts/generated/fbs
if [ $# -ge 1 ]; then
  cp "$1/ort_training_checkpoint.fbs" "$1/ort.fbs" "$SCHEMA/"
fi
command -v flatc >/dev/null || { echo "flatc not found (apt-get install -y flatbuffers-compiler)" >&2; exit 1; }
echo "using $(flatc --version)"
rm -rf "$OUT"
mkdir -p "$OUT"
flatc --ts --gen-all -o "$OUT" "$SCHEMA/ort_training_checkpoint.fbs"
echo "generated $(find "$OUT" -name '*.ts' | wc -l) files in $OUT"
