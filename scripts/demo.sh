#!/usr/bin/env bash
# Installs what is missing, fetches the bundled default models and documents,
# and runs what cairn can do with them today. Usage: scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export CARGO_TARGET_DIR="${CAIRN_BUILD_CACHE:-$HOME/.cache/cairn}/build/native"
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d); chmod 700 "$XDG_RUNTIME_DIR"; export XDG_RUNTIME_DIR
fi
cargo build --locked --release -q -p cairn
cairn="$CARGO_TARGET_DIR/release/cairn"
run() { printf '\n$ cairn %s\n' "$*"; "$cairn" "$@"; }
run fetch
run models
run info smollm2-135m-instruct
run info all-minilm-l6-v2
run tokenize "How do I install an R package from a local tarball?"
run similarity "Machine learning is transforming industries." "Artificial intelligence is changing how businesses work."
run similarity "Machine learning is transforming industries." "I love hiking"
run doctor
run generate --chat "What is the capital of France?" --max-new-tokens 32
