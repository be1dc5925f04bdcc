#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs what the end-to-end layer
# needs, checks formatting and lints, then runs unit, integration and end-to-end tests.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=1

echo "==> installing test prerequisites"
scripts/install-tools.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> cargo test"
cargo test --workspace --all-targets --locked
