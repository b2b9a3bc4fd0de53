#!/usr/bin/env bash
# Serves the in-browser demo: installs what is missing, fetches the models,
# builds the wasm package, then serves www/ + the package (/pkg/) + the models
# (/models/) from one origin. Open the printed URL, load the models, drop your
# PDFs and ask. Nothing but the page's origin is contacted.
# Usage: scripts/serve-demo.sh [--port 8080] [--host 127.0.0.1]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CAIRN_BUILD_CACHE:-$HOME/.cache/cairn}/build/native"
cargo run --locked -q --release -p cairn -- fetch
scripts/build-wasm.sh
exec node www/serve.mjs "$@"
