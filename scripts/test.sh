#!/usr/bin/env bash
# Every test of the project: formatting, lints, unit, property, integration and behaviour tests,
# and a short schemathesis run against the OpenAPI document.
# Needs Postgres and NATS (JetStream) reachable (DATABASE_URL / NATS_URL, defaults below);
# every test makes its own database and NATS prefix, so runs can overlap and repeat.
set -euo pipefail
cd "$(dirname "$0")/.."

export DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"

# Test databases a killed run left behind (names carry a UUID v7, so their age): older than
# 2 hours, dropped. Younger ones may belong to a run going on beside this one.
echo "== sweeping test databases older than 2 hours"
stale=$(psql "$DATABASE_URL" -qtAX -c "SELECT datname FROM pg_database
    WHERE datname ~ '^esqase_test_[0-9a-f]{32}$' AND substr(datname, 25, 1) = '7'
      AND to_timestamp(('x' || substr(datname, 13, 12))::bit(48)::bigint / 1000.0) < now() - interval '2 hours'" || true)
for name in $stale; do
    psql "$DATABASE_URL" -qtAX -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null && echo "dropped $name"
done

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
# The short schemathesis run (every check, 5 examples per operation and phase) against the debug
# binary the tests just built; ./scripts/schemathesis.sh alone runs the full one.
echo "== schemathesis (short)"
SCHEMATHESIS_MAX_EXAMPLES=5 SCHEMATHESIS_PROFILE=debug ./scripts/schemathesis.sh

# One closing line for the whole run: cargo's per-binary results plus the cucumber scenarios.
awk '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
  /^[0-9]+ scenarios \(/ { n = $1; sp = 0; if (match($0, /[0-9]+ passed/)) sp = substr($0, RSTART, RLENGTH) + 0; p += sp; f += n - sp }
  END { printf "tests: %d passed, %d failed\n", p, f }
' "$log"
