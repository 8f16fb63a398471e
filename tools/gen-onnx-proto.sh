#!/usr/bin/env bash
# Regenerates src/onnx/onnx-proto.{js,d.ts} from the official onnx.proto.
# Source used for the committed code: Debian bookworm python3-onnx 1.12.0
# (/usr/lib/python3/dist-packages/onnx/onnx.proto, IR_VERSION 8). Needs: apt-get install python3-onnx.
set -euo pipefail
cd "$(dirname "$0")/.."
PROTO=${1:-/usr/lib/python3/dist-packages/onnx/onnx.proto}
[ -f "$PROTO" ] || { echo "onnx.proto not found at $PROTO (apt-get install python3-onnx, or pass its path)" >&2; exit 1; }
mkdir -p src/onnx/generated
cp "$PROTO" src/onnx/generated/onnx.proto
npx pbjs -t static-module -w commonjs --no-verify --no-delimited --no-service --force-number \
  -o src/onnx/generated/onnx-proto.js src/onnx/generated/onnx.proto
npx pbts -o src/onnx/generated/onnx-proto.d.ts src/onnx/generated/onnx-proto.js
echo "generated from $PROTO (onnx $(/usr/bin/python3 -c 'import onnx;print(onnx.__version__)' 2>/dev/null || echo unknown))"
