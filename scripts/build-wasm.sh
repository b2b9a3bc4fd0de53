#!/usr/bin/env bash
# Builds cairn-wasm (and with it cairn-core) for wasm32-unknown-unknown with
# Debian's rustc-web toolchain, then runs wasm-bindgen for node.
# Output: $CAIRN_BUILD_CACHE/build/wasm-pkg/node (default ~/.cache/cairn/...),
# used by the node tests in tests/node. Usage: scripts/build-wasm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env-wasm.sh
$WASM_CARGO build --locked --release --target wasm32-unknown-unknown "${WASM_BUILD_STD[@]}" -p cairn-wasm
wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/cairn_wasm.wasm"
out="$CAIRN_CACHE_ROOT/build/wasm-pkg/node"
rm -rf "$out"
wasm-bindgen --target nodejs --out-dir "$out" "$wasm"
printf 'wasm32 build: %s (%s bytes raw, %s bytes gzip)\n' "$wasm" "$(stat -c %s "$wasm")" "$(gzip -9c "$wasm" | wc -c)"
