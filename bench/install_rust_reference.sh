#!/usr/bin/env bash
# Installs the Rust otlp2parquet, the reference `bench/e2e.ts --compare-rust` runs against. Idempotent:
# does nothing when the wanted version is already installed. Only the binary is used; its source is not
# part of this project. Needs a Rust toolchain (cargo) and crates.io.
#
#   bash bench/install_rust_reference.sh [ROOT]     # default ROOT: /work/tools/otlp2parquet-rust
#
# Then `OTLP2PARQUET_RUST_BIN=ROOT/bin/otlp2parquet` if ROOT is not the default.
set -euo pipefail

ROOT="${1:-/work/tools/otlp2parquet-rust}"
VERSION="${OTLP2PARQUET_RUST_VERSION:-~0.12}"
BIN="$ROOT/bin/otlp2parquet"

if [[ -x "$BIN" ]] && "$BIN" --version 2>/dev/null | grep -q '^otlp2parquet 0\.12\.'; then
  echo "already installed: $("$BIN" --version) at $BIN"
  exit 0
fi
if ! command -v cargo >/dev/null; then
  echo "cargo not found: install a Rust toolchain first (https://rustup.rs)" >&2
  exit 1
fi
mkdir -p "$ROOT"
# A release build takes about 4 minutes on 2 cores.
cargo install otlp2parquet --version "$VERSION" --locked --root "$ROOT"
"$BIN" --version
