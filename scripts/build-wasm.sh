#!/usr/bin/env bash
# Builds cairn-wasm (and with it cairn-core) for wasm32-unknown-unknown with
# Debian's rustc-web toolchain, then runs wasm-bindgen twice:
#   $CAIRN_BUILD_CACHE/build/wasm-pkg/node  --target nodejs (the node tests)
#   $CAIRN_BUILD_CACHE/build/wasm-pkg/web   --target web: the npm package
#       (wasm/js: client.js + worker.js + types + README + package.json),
#       served to the browser demo at /pkg/.
# (default cache root ~/.cache/cairn). CAIRN_WASM_OPT=1 first runs
# `wasm-opt -O3` on cargo's output (about 1 min; binaryen must run before
# wasm-bindgen, see shared/TOOLCHAIN.md). Usage: scripts/build-wasm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env-wasm.sh
$WASM_CARGO build --locked --release --target wasm32-unknown-unknown "${WASM_BUILD_STD[@]}" -p cairn-wasm
wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/cairn_wasm.wasm"
if [ "${CAIRN_WASM_OPT:-0}" = 1 ]; then
  wasm-opt -O3 --strip-debug --strip-producers "$wasm" -o "$wasm.opt"
  wasm="$wasm.opt"
fi
bindgen=(wasm-bindgen --remove-name-section --remove-producers-section --out-name cairn_wasm)
node_out="$CAIRN_CACHE_ROOT/build/wasm-pkg/node"
web_out="$CAIRN_CACHE_ROOT/build/wasm-pkg/web"
rm -rf "$node_out" "$web_out"
"${bindgen[@]}" --target nodejs --out-dir "$node_out" "$wasm"
"${bindgen[@]}" --target web --out-dir "$web_out" "$wasm"
cp wasm/js/client.js wasm/js/client.d.ts wasm/js/worker.js wasm/js/package.json wasm/js/README.md "$web_out/"
bg="$web_out/cairn_wasm_bg.wasm"
printf 'wasm32 package: %s (%s bytes raw, %s bytes gzip)\n' "$web_out" "$(stat -c %s "$bg")" "$(gzip -9c "$bg" | wc -c)"
