#!/bin/sh
# Build {{id}}.wasm, ready to drop into an inlet plugins folder. Adds the
# wasm32-wasip2 target to the Rust toolchain first if it is missing.
set -eu
cd "$(dirname "$0")"
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
cargo build --release --target wasm32-wasip2
cp "${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{artifact}}.wasm" {{id}}.wasm
echo "built {{id}}.wasm"
