#!/usr/bin/env bash
# Builds the npm package of cairn-wasm with wasm-pack (ES module for browsers
# and bundlers, with .d.ts types) into wasm/pkg. wasm-opt runs on cargo's
# output before wasm-bindgen: Debian's binaryen breaks wasm-bindgen's output if
# run after it (see shared/TOOLCHAIN.md). Usage: scripts/build-npm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env-wasm.sh
$WASM_CARGO build --locked --release --target wasm32-unknown-unknown "${WASM_BUILD_STD[@]}" -p cairn-wasm
wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/cairn_wasm.wasm"
wasm-opt -O3 "$wasm" -o "$wasm.opt"
mv "$wasm.opt" "$wasm"
# wasm-pack reruns cargo (a no-op now) and wasm-bindgen, and writes package.json + README.
wasm-pack build --mode force --no-opt --target web --release --out-dir pkg wasm -- --locked "${WASM_BUILD_STD[@]}"
ls -l wasm/pkg
