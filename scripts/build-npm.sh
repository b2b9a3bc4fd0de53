#!/usr/bin/env bash
# Builds the publishable npm package `cairn-wasm` into wasm/pkg with wasm-pack
# (ES module for browsers and bundlers, .d.ts types), optimised: wasm-pack
# builds once, wasm-opt -O3 rewrites cargo's output in place (Debian's
# binaryen breaks wasm-bindgen's output if run after it, see
# shared/TOOLCHAIN.md), then wasm-pack binds the optimised module (cargo is a
# no-op). The page-side API (client.js, worker.js, client.d.ts), the README
# and package.json come from wasm/js. Ends with `npm pack` (the tarball is
# written to wasm/pkg). Usage: scripts/build-npm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env-wasm.sh
pack=(wasm-pack build --mode force --no-opt --target web --release --out-dir pkg --out-name cairn_wasm wasm -- --locked "${WASM_BUILD_STD[@]}")
"${pack[@]}"
wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/cairn_wasm.wasm"
wasm-opt -O3 --strip-debug --strip-producers "$wasm" -o "$wasm.opt"
mv "$wasm.opt" "$wasm"
"${pack[@]}"
cp wasm/js/client.js wasm/js/client.d.ts wasm/js/worker.js wasm/js/package.json wasm/js/README.md wasm/pkg/
(cd wasm/pkg && npm pack --silent)
bg=wasm/pkg/cairn_wasm_bg.wasm
printf 'npm package: wasm/pkg (%s bytes raw, %s bytes gzip)\n' "$(stat -c %s "$bg")" "$(gzip -9c "$bg" | wc -c)"
