# Sourced by the scripts that build for wasm32: Debian's rustc-web toolchain
# with its std source (build-std) and LLVM 19's wasm-ld. rustup's toolchain
# stays in charge of native builds; the two never share a target directory.
CAIRN_CACHE_ROOT="${CAIRN_BUILD_CACHE:-$HOME/.cache/cairn}"
export PATH="/usr/bin:$PATH"
export RUSTC=/usr/bin/rustc
export RUSTDOC=/usr/bin/rustdoc
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-19/bin/wasm-ld
export CARGO_TARGET_DIR="$CAIRN_CACHE_ROOT/build/wasm"
export RUSTFLAGS="-C target-feature=+simd128 --cfg getrandom_backend=\"wasm_js\""
WASM_CARGO=/usr/bin/cargo
WASM_BUILD_STD=(-Z build-std=std,panic_abort)
