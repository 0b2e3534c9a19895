#!/usr/bin/env bash
# Fault drill 3 (issue 7): Postgres goes away.
#
#   ./scripts/drills/postgres-outage.sh
#
# A Postgres cluster of this drill's own (initdb + pg_ctl in a temp folder, a free port, trust
# auth; as root it runs as the `postgres` user; the shared Postgres on 5432 is never touched)
# and two `esqase serve` nodes on it, with a NATS prefix of this drill's own on the shared NATS.
# Before: a firm and three keys, each verified on both nodes. Then the drill stops Postgres
# (`pg_ctl stop -m immediate`, a crash: no goodbye to clients) for DRILL_OUTAGE_S seconds while
# scripts/drills/drill.py probes both nodes in rounds: POST /v1/api-keys, POST .../revoke,
# PUT .../allowed-domains, GET /v1/api-keys/{id}, GET /v1/api-keys/current with each key,
# /readyz. It checks:
#   - every command (and key read) answers 503 `service_unavailable` (problem+json) with
#     `Retry-After`, each within 1 s (latency p50/p99/max printed per route);
#   - keys made before the outage keep verifying (GET /v1/api-keys/current 200, from memory);
#   - /readyz says 503 meanwhile;
# then starts Postgres again and checks that commands succeed again (time printed), both nodes
# answer /readyz 200, no refused command left an event, the key whose revoke was refused is
# still Active and still works on both nodes (no half state; revoking it now works and both
# nodes refuse it at once), the log and read models are whole and the audit log verifies.
# DRILL_PG_OUTAGE=freeze runs the same drill with Postgres frozen (SIGSTOP on every process of
# the private cluster: sockets stay open and nothing answers, like a hung host or a partition)
# instead of stopped, then thawed (SIGCONT).
# Exits non-zero when a claim fails. Knobs: DRILL_OUTAGE_S (20), DRILL_PG_OUTAGE (stop), DRILL_SKIP_BUILD=1, DRILL_KEEP=1,
# ESQASE_BIN (another esqase binary; skips the build).
set -euo pipefail
DRILL_NAME=postgres-outage
# shellcheck source=scripts/drills/lib.sh
source "$(dirname "$0")/lib.sh"

OUTAGE="${DRILL_OUTAGE_S:-20}"
MODE="${DRILL_PG_OUTAGE:-stop}" # stop: pg_ctl stop -m immediate; freeze: SIGSTOP every Postgres process
[[ "$MODE" == stop || "$MODE" == freeze ]] || die "DRILL_PG_OUTAGE must be stop or freeze"

build
start_private_postgres
use_shared_nats
log "private Postgres $PG_SERVER (data $PRIVATE_PG_DATA), database ${DB_URL##*/}, NATS prefix $PREFIX"
log "machine: $(machine_line)"

start_two_nodes

"$PY" "$DRILL_PY" pg-before --bases "$A,$B" --state "$WORK/state.json"

"$PY" "$DRILL_PY" pg-during --bases "$A,$B" --state "$WORK/state.json" --out "$WORK/outage.json" \
    --seconds "$(awk -v s="$OUTAGE" 'BEGIN { print s - 1 }')" --outage-file "$WORK/outage_at" &
PROBE_PID=$!
PIDS_TO_END+=("$PROBE_PID")
sleep 2 # creates running back to back: some will be in flight when Postgres goes away
stopped=$(now)
if [[ "$MODE" == stop ]]; then
    log "stopping the private Postgres (immediate) for ${OUTAGE}s"
    stop_private_postgres immediate
else
    log "freezing the private Postgres (SIGSTOP: pids $(private_postgres_pids | tr '\n' ' ')) for ${OUTAGE}s"
    freeze_private_postgres
fi
gone=$(now)
echo "$stopped" >"$WORK/outage_at"
sleep "$OUTAGE"
until [[ -f "$WORK/outage.json.ready" ]]; do sleep 0.1; done
if [[ "$MODE" == stop ]]; then
    log "starting the private Postgres again"
    pg_start
else
    log "thawing the private Postgres (SIGCONT)"
    thaw_private_postgres
fi
started=$(now)
down_s=$(elapsed "$stopped" "$started")
wait "$PROBE_PID" || die "the outage probes failed"
for name in A B; do kill -0 "${NODE_PID[$name]}" 2>/dev/null || die "node $name died during the outage"; done

log "checking"
"$PY" "$DRILL_PY" pg-after --bases "$A,$B" --state "$WORK/state.json" --results "$WORK/outage.json" \
    --db "$DB_URL" --down-s "$down_s" --since-start "$(elapsed "$started" "$(now)")" --gone-at "$gone"
