#!/usr/bin/env bash
# Every test of the project: formatting, lints, unit, property, integration and behaviour tests.
# Needs Postgres and NATS (JetStream) reachable (DATABASE_URL / NATS_URL, defaults below);
# every test makes its own database and NATS prefix, so runs can overlap and repeat.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
