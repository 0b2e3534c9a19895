#!/usr/bin/env bash
# Schemathesis against a real `esqase serve` (issue 7): every check (`--checks all`), every phase
# (examples, coverage, fuzzing, stateful), driven by the service's own `GET /openapi.json`.
#
#   ./scripts/schemathesis.sh                                  # the full run
#   SCHEMATHESIS_MAX_EXAMPLES=5 SCHEMATHESIS_PROFILE=debug ./scripts/schemathesis.sh  # short
#
# It installs schemathesis from PyPI into a venv under target/ (Python 3.11), builds and starts
# the release binary on 127.0.0.1 with its own database and NATS prefix, signs up a firm (the
# owner's session) and creates API keys, then runs schemathesis three times:
#   1. with an API key holding every scope: the firm's data API and `GET /v1/api-keys/current`;
#   2. with the owner's session: every operation but those two `…/current` routes (the data API
#      too: it takes either credential);
#   3. with a second, throwaway session: `DELETE /v1/sessions/current` (it ends that session;
#      no stateful phase, as the operation links to nothing).
# It fails when any run finds a server error, a response that does not match the document, or
# any other failed check (scripts/schemathesis.toml lists the few contract rules that JSON Schema
# cannot express, for the check that schema-valid requests are accepted). Needs Postgres and
# NATS (JetStream) as for ./scripts/test.sh (DATABASE_URL, NATS_URL), curl and python3.11. The
# database and the NATS stream are removed at the end, even on failure. Requests go to
# 127.0.0.1 only.
# Knobs: SCHEMATHESIS_MAX_EXAMPLES (default 100: test cases per operation and phase),
# SCHEMATHESIS_WORKERS (1), SCHEMATHESIS_SEED (random), SCHEMATHESIS_REPORTS (a directory for
# JUnit reports and the server's log; default target/schemathesis), SCHEMATHESIS_PROFILE
# (release, or debug to reuse the test build).
set -euo pipefail
cd "$(dirname "$0")/.."

DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
# One worker by default: with more, hypothesis 6 sometimes fails inside its own lambda-source
# cache ("AST constructor recursion depth mismatch"), a tool error rather than a finding.
WORKERS="${SCHEMATHESIS_WORKERS:-1}"
REPORTS="${SCHEMATHESIS_REPORTS:-target/schemathesis}"
PROFILE="${SCHEMATHESIS_PROFILE:-release}"
BIN="target/$([[ "$PROFILE" == release ]] && echo release || echo debug)"
VERSION="4.32.5"
VENV=target/schemathesis-venv
UNIQUE="$(date +%s)$$$RANDOM"
DB_URL="${DATABASE_URL%/*}/esqase_schemathesis_$UNIQUE"
PREFIX="st$UNIQUE"
SERVER_PID=""
STARTED=""

log() { printf '[schemathesis %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

on_exit() {
    local status=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n "$STARTED" ]]; then
        "./$BIN/esqase-bench-seed" --cleanup --database-url "$DB_URL" --nats-url "$NATS_URL" \
            --nats-prefix "$PREFIX" || log "cleanup of $DB_URL / $PREFIX failed"
    fi
    exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# --- tools and binaries ------------------------------------------------------------------------
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "version $VERSION\$"; then
    log "installing schemathesis $VERSION into $VENV"
    python3.11 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi
PYTHON="$VENV/bin/python"
if [[ "$PROFILE" == release ]]; then
    log "building release binaries"
    cargo build --release --locked -p api -p bench --bin esqase --bin esqase-bench-seed
else
    log "building debug binaries"
    # With the workspace's test targets, features resolve as for `cargo test --workspace`: right
    # after the test run (./scripts/test.sh) the binaries are already built, where a build of the
    # two packages alone would rebuild much of the tree under other features.
    cargo build --locked --workspace --all-targets
fi
mkdir -p "$REPORTS"

# --- the service ---------------------------------------------------------------------------------
SERVE_LOG="$REPORTS/serve.log"
log "starting esqase serve (database ${DB_URL##*/}, prefix $PREFIX)"
STARTED=1
# The secret scanning route is on, with a public key whose private half nobody kept: every
# report schemathesis makes is signed wrongly, so it is refused (401), never acted on.
DATABASE_URL="$DB_URL" NATS_URL="$NATS_URL" ESQASE_NATS_PREFIX="$PREFIX" ESQASE_LISTEN=127.0.0.1:0 \
    ESQASE_SECRET_SCANNING_KEYS=scripts/schemathesis-scanner-keys.json \
    ESQASE_SIGN_IN_ACCOUNT_FAILURES=1000000 ESQASE_SIGN_IN_ADDRESS_FAILURES=1000000 \
    RUST_LOG="${RUST_LOG:-info}" "./$BIN/esqase" serve >"$SERVE_LOG" 2>&1 &
SERVER_PID=$!
ADDR="" deadline=$((SECONDS + 120))
while [[ -z "$ADDR" ]]; do
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$SERVE_LOG" >&2; log "esqase exited"; exit 1; }
    ((SECONDS < deadline)) || { log "esqase did not log its address"; exit 1; }
    ADDR=$(grep -m1 -o '"addr":"127\.0\.0\.1:[0-9]*"' "$SERVE_LOG" | sed 's/.*"127/127/; s/"$//' || true)
    [[ -n "$ADDR" ]] || sleep 0.05
done
BASE="http://$ADDR"
until curl -fsS -o /dev/null "$BASE/readyz"; do
    kill -0 "$SERVER_PID" 2>/dev/null || { log "esqase exited"; exit 1; }
    ((SECONDS < deadline)) || { log "esqase did not become ready"; exit 1; }
    sleep 0.1
done
log "ready at $BASE"

# --- a firm, its owner's sessions and an API key ---------------------------------------------------
# Posts JSON and prints one field of the answer (a path of keys separated by dots).
post_json() { # path token body field
    local auth=()
    [[ -n "$2" ]] && auth=(-H "Authorization: Bearer $2")
    curl -fsS -X POST "$BASE$1" -H 'Content-Type: application/json' "${auth[@]}" -d "$3" \
        | "$PYTHON" -c 'import json, sys
value = json.load(sys.stdin)
for key in sys.argv[1].split("."):
    value = value[key]
print(value)' "$4"
}
EMAIL="owner-$UNIQUE@schemathesis.test"
PASSWORD="schemathesis password $UNIQUE"
SESSION=$(post_json /v1/firms "" \
    "{\"firm_name\":\"Schemathesis Law\",\"time_zone\":\"America/New_York\",\"owner\":{\"name\":\"Olivia Owner\",\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}}" \
    session.token)
THROWAWAY=$(post_json /v1/sessions "" "{\"email\":\"$EMAIL\",\"password\":\"$PASSWORD\"}" session.token)
SCOPES='["contacts:read","contacts:write","matters:read","matters:write","leads:read","leads:write","practice_areas:read","practice_areas:write","matter_types:read","matter_types:write"]'
KEY=$(post_json /v1/api-keys "$SESSION" "{\"name\":\"Schemathesis\",\"scopes\":$SCOPES}" secret)
# A second key, with allowed domains and an expiry, so that lists hold more than one shape.
post_json /v1/api-keys "$SESSION" \
    "{\"name\":\"Browser\",\"scopes\":[\"contacts:read\"],\"expires_at\":\"2099-01-01\",\"allowed_domains\":[\"app.example.com\",\"*.example.com\"]}" \
    api_key.id >/dev/null
log "signed up a firm; created two API keys"

# --- the runs ------------------------------------------------------------------------------------
FAILED=()
ALL_PHASES=examples,coverage,fuzzing,stateful
run() { # name token phases schemathesis-options...
    local name=$1 token=$2 phases=$3
    shift 3
    log "run '$name': max $MAX_EXAMPLES examples per operation"
    if ! "$VENV/bin/schemathesis" --no-color --config-file scripts/schemathesis.toml run "$BASE/openapi.json" \
        --url "$BASE" \
        --header "Authorization: Bearer $token" \
        --checks all \
        --phases "$phases" \
        --max-examples "$MAX_EXAMPLES" \
        --workers "$WORKERS" \
        --request-timeout 10 \
        --generation-database none \
        ${SCHEMATHESIS_SEED:+--seed "$SCHEMATHESIS_SEED"} \
        --report junit --report-junit-path "$REPORTS/$name.xml" \
        "$@"; then
        FAILED+=("$name")
    fi
}
KEY_ROUTES='^/v1/(contacts|matters|leads|practice-areas|matter-types)(/|$)|^/v1/api-keys/current$'
run api-key "$KEY" "$ALL_PHASES" --include-path-regex "$KEY_ROUTES"
run member-session "$SESSION" "$ALL_PHASES" --exclude-path-regex '^/v1/(api-keys|sessions)/current$'
# One operation links to nothing: no stateful phase.
run log-out "$THROWAWAY" examples,coverage,fuzzing --include-path '/v1/sessions/current'

if ((${#FAILED[@]})); then
    log "FAILED: ${FAILED[*]} (reports in $REPORTS; the server's log is $SERVE_LOG)"
    exit 1
fi
log "every run passed (reports in $REPORTS)"
