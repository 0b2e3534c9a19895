#!/usr/bin/env bash
# Fault drill 2 (issue 7): NATS goes away for 30 s under load.
#
#   ./scripts/drills/nats-outage.sh
#
# A nats-server of this drill's own (JetStream, a free port, store in a temp folder; the shared
# NATS on 4222 is never touched), two `esqase serve` nodes on a database of this drill's own on
# the shared Postgres. scripts/drills/drill.py runs a steady command load on both nodes (create,
# edit domains, revoke; each revoke and each create is followed at once by
# GET /v1/api-keys/current with that key on BOTH nodes) and a verification load
# (GET /v1/api-keys/current with random keys, revoked ones included, on both nodes). The
# drill kills the nats-server (SIGKILL), keeps it down DRILL_OUTAGE_S seconds, and starts it
# again on the same port and store. Then it checks:
#   - commands kept succeeding during the outage (counted per phase, with latencies);
#   - no node accepted a key after its revoke had answered (stale acceptances = 0), no node
#     refused an Active key, no verification failed;
#   - after NATS returned: both nodes /readyz 200; the log and read models are whole; the audit
#     log verifies on both nodes; both nodes answer the same for every key; the JetStream
#     stream holds every event of the `events` table exactly once.
# Exits non-zero when a claim fails. Knobs: DRILL_OUTAGE_S (30), DRILL_LOAD_BEFORE_S (8),
# DRILL_LOAD_AFTER_S (10), DRILL_SKIP_BUILD=1, DRILL_KEEP=1,
# ESQASE_BIN (another esqase binary; skips the build).
set -euo pipefail
DRILL_NAME=nats-outage
# shellcheck source=scripts/drills/lib.sh
source "$(dirname "$0")/lib.sh"

OUTAGE="${DRILL_OUTAGE_S:-30}"
BEFORE="${DRILL_LOAD_BEFORE_S:-8}"
AFTER="${DRILL_LOAD_AFTER_S:-10}"

build
use_shared_postgres
start_private_nats
log "database ${DB_URL##*/}, private NATS $NATS_URL (pid $PRIVATE_NATS_PID), prefix $PREFIX, work dir $WORK"
log "machine: $(machine_line)"

start_two_nodes

"$PY" "$DRILL_PY" setup --base "$A" --firms 1 --state "$WORK/state.json"
"$PY" "$DRILL_PY" outage-load --bases "$A,$B" --state "$WORK/state.json" --stop-file "$WORK/stop" \
    --out "$WORK/results.json" &
LOAD_PID=$!
PIDS_TO_END+=("$LOAD_PID")
log "load running for ${BEFORE}s"
sleep "$BEFORE"

log "killing the private nats-server (pid $PRIVATE_NATS_PID) for ${OUTAGE}s; relay leader: A $(relay_leader A), B $(relay_leader B)"
stopped=$(now)
kill_private_nats KILL
sleep "$OUTAGE"
started=$(now)
start_private_nats
"$PY" "$DRILL_PY" consumers-wait --nats "$NATS_URL" --prefix "$PREFIX" --count 2 >"$WORK/consumers_after_s" &
CONSUMERS_PID=$!
PIDS_TO_END+=("$CONSUMERS_PID")
log "nats-server back (pid $PRIVATE_NATS_PID)"
ready_s=$(wait_ready 120 A B)
log "both nodes /readyz 200 ${ready_s} s after NATS returned; relay leader: A $(relay_leader A), B $(relay_leader B)"
sleep "$AFTER"
touch "$WORK/stop"
wait "$LOAD_PID" || die "the load generator failed"
wait "$CONSUMERS_PID" || true
consumers_s=$(cat "$WORK/consumers_after_s" 2>/dev/null || true)
printf '{"nats_stopped": %s, "nats_started": %s, "ready_after_s": %s, "consumers_after_s": %s}\n' \
    "$stopped" "$started" "$ready_s" "${consumers_s:--1}" >"$WORK/phases.json"

log "checking"
"$PY" "$DRILL_PY" outage-check --bases "$A,$B" --state "$WORK/state.json" --results "$WORK/results.json" \
    --phases "$WORK/phases.json" --db "$DB_URL" --nats "$NATS_URL" --prefix "$PREFIX"
