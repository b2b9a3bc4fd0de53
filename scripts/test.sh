#!/usr/bin/env bash
# Installs what is missing, then runs every check and test of cairn:
#   formatting, clippy, model fetch (verified), native tests (GPU kernels on
#   whatever adapter exists — Mesa lavapipe on a CPU-only machine — required),
#   the wasm32 build of cairn-core + cairn-wasm, the wasm build in node, and
#   the demo page end to end in headless Chromium (screenshots and a report in
#   artifacts/ of the checkout, or $CAIRN_ARTIFACTS).
# Build output is cached outside the clone, in ~/.cache/cairn/build
# (override the root with CAIRN_BUILD_CACHE). Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n==> %s  [%ss]\n' "$*" "$(( $(date +%s) - start ))"; }

step "setup"
scripts/setup.sh
export CARGO_TARGET_DIR="${CAIRN_BUILD_CACHE:-$HOME/.cache/cairn}/build/native"
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d); chmod 700 "$XDG_RUNTIME_DIR"; export XDG_RUNTIME_DIR
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cairn fetch (models and corpus, sha256-verified)"
cargo run --locked -q -p cairn -- fetch

step "GPU kernel check: matmul_f32.wgsl against the CPU backend"
cargo run --locked -q -p cairn -- doctor --require-gpu

step "native tests (CAIRN_REQUIRE_GPU=1: the GPU conformance tests must run, not skip)"
CAIRN_REQUIRE_GPU=1 cargo nextest run --locked --workspace --no-fail-fast

step "doc tests"
cargo test --locked --workspace --doc -q

step "wasm32 build (Debian rustc-web)"
scripts/build-wasm.sh

step "wasm in node"
CAIRN_WASM_PKG="${CAIRN_BUILD_CACHE:-$HOME/.cache/cairn}/build/wasm-pkg/node" node --test tests/node/

step "browser end to end: the demo page in headless Chromium (CPU, then WebGPU on SwiftShader, required)"
CAIRN_REQUIRE_GPU=1 node --test www/tests/

step "all checks passed"
