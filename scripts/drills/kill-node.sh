#!/usr/bin/env bash
# Fault drill 1 (issue 7): kill -9 a node in the middle of a stream of commands.
#
#   ./scripts/drills/kill-node.sh
#
# Two `esqase serve` nodes (A and B) on one Postgres database and one NATS prefix of this
# drill's own (shared servers: DATABASE_URL's server, NATS_URL; neither is stopped). A client
# (scripts/drills/drill.py, several threads, a fresh connection per command, a unique
# X-Request-Id per command) sends creates, domain edits and revokes to node A; A is killed with
# SIGKILL mid-stream, stays down for a moment, and is restarted on the same port while the
# client keeps knocking; then the load stops and the drill checks:
#   - every command answered 2xx has its event in `events` exactly once (by request id);
#     a command whose connection was reset has its event at most once; a refused one none;
#   - nothing partial: stream versions 1..n, api_keys rows = Created events = acknowledged
#     creates + reset creates that committed, each row agrees with its events, the audit log has
#     one entry per event and /v1/audit-log/verify says ok on both nodes;
#   - both nodes give the same answer for every key (/v1/api-keys/current with each secret,
#     GET /v1/api-keys/{id}), matching the log; both /readyz 200;
#   - the JetStream stream holds every event exactly once.
# Exits non-zero when a claim fails. Knobs: DRILL_LOAD_BEFORE_S (6), DRILL_DOWN_S (3),
# DRILL_LOAD_AFTER_S (6), DRILL_WORKERS (6), DRILL_SKIP_BUILD=1, DRILL_KEEP=1 (keep logs),
# ESQASE_BIN (another esqase binary; skips the build).
set -euo pipefail
DRILL_NAME=kill-node
# shellcheck source=scripts/drills/lib.sh
source "$(dirname "$0")/lib.sh"

BEFORE="${DRILL_LOAD_BEFORE_S:-6}"
DOWN="${DRILL_DOWN_S:-3}"
AFTER="${DRILL_LOAD_AFTER_S:-6}"
WORKERS="${DRILL_WORKERS:-6}"

build
use_shared_postgres
use_shared_nats
log "database ${DB_URL##*/}, NATS prefix $PREFIX, work dir $WORK"
log "machine: $(machine_line)"

start_two_nodes

"$PY" "$DRILL_PY" setup --base "$A" --firms 2 --state "$WORK/state.json"
"$PY" "$DRILL_PY" kill-load --base "$A" --state "$WORK/state.json" --stop-file "$WORK/stop" \
    --out "$WORK/results.json" --workers "$WORKERS" &
LOAD_PID=$!
PIDS_TO_END+=("$LOAD_PID")
log "load running against A for ${BEFORE}s"
sleep "$BEFORE"

log "kill -9 node A (pid ${NODE_PID[A]}; relay leader: A $(relay_leader A), B $(relay_leader B))"
now >"$WORK/killed_at"
kill -KILL "${NODE_PID[A]}"
wait "${NODE_PID[A]}" 2>/dev/null || true
sleep "$DOWN"
log "restarting node A on the same port"
t0=$(now)
start_node A
wait_ready 120 A >/dev/null
log "node A ready again $(elapsed "$t0" "$(now)") s after restart (pid ${NODE_PID[A]})"
log "relay leader now: A $(relay_leader A), B $(relay_leader B)"
sleep "$AFTER"
touch "$WORK/stop"
wait "$LOAD_PID" || die "the load generator failed"

log "checking"
"$PY" "$DRILL_PY" kill-check --bases "$A,$B" --state "$WORK/state.json" --results "$WORK/results.json" \
    --db "$DB_URL" --kill-file "$WORK/killed_at" --nats "$NATS_URL" --prefix "$PREFIX"
