#!/usr/bin/env bash
# Fault drill 4 (issue 11): other transactions open on the shared Postgres cluster.
#
#   ./scripts/drills/open-transaction.sh
#
# Two `esqase serve` nodes A and B on a database of this drill's own (shared Postgres, shared
# NATS, a prefix of its own). First DRILL_ROUNDS quiet rounds; then, while a session in
# ANOTHER database of the cluster runs `BEGIN; SELECT txid_current(); SELECT pg_sleep(12);
# COMMIT;` (a migration, a batch job) and a session in the drill's own database sits idle in a
# transaction that holds an id (a forgotten psql), the same rounds again. A round: create a key
# on A and ask B with it at once; two kept-alive clients per node ask with it without pause
# while A revokes it. Claims:
#   - with the open transactions a revoke answers within its usual latency (p50 at most 2x the
#     quiet p50, or +10 ms) and none waits on them (max < 500 ms);
#   - a key created on A works on B at once, every round;
#   - no node ever accepted a key after its revoke had answered; every request after it got 401.
# Knobs: DRILL_ROUNDS (10), DRILL_SKIP_BUILD=1, DRILL_KEEP=1, ESQASE_BIN.
set -euo pipefail
DRILL_NAME=open-transaction
# shellcheck source=scripts/drills/lib.sh
source "$(dirname "$0")/lib.sh"

ROUNDS="${DRILL_ROUNDS:-10}"

build
use_shared_postgres
use_shared_nats
NEIGHBOUR_URL="$PG_SERVER/esqase_drill_${UNIQUE}_neighbour"
on_cleanup "psql '$PG_SERVER/postgres' -qtAX -c 'DROP DATABASE IF EXISTS esqase_drill_${UNIQUE}_neighbour WITH (FORCE)' >/dev/null"
log "database ${DB_URL##*/}, neighbour ${NEIGHBOUR_URL##*/}, NATS prefix $PREFIX, work dir $WORK"
log "machine: $(machine_line)"

start_two_nodes
psql "$PG_SERVER/postgres" -qtAX -c "CREATE DATABASE esqase_drill_${UNIQUE}_neighbour" >/dev/null

"$PY" "$DRILL_PY" setup --base "$A" --firms 1 --state "$WORK/state.json"
"$PY" "$DRILL_PY" revoke-probe --bases "$A,$B" --state "$WORK/state.json" --label quiet --rounds "$ROUNDS" \
    --out "$WORK/quiet.json"

log "opening a 12 s write transaction in another database and an idle one in this database"
psql "$NEIGHBOUR_URL" -qtAX -c "BEGIN; SELECT txid_current(); SELECT pg_sleep(12); COMMIT;" >/dev/null &
PIDS_TO_END+=("$!")
{ echo "BEGIN; SELECT txid_current();"; sleep 14; echo "ROLLBACK;"; } | psql "$DB_URL" -qtAX >/dev/null &
PIDS_TO_END+=("$!")
sleep 1
open=$(psql "$PG_SERVER/postgres" -qtAX -c "SELECT count(*) FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL AND datname IN ('esqase_drill_${UNIQUE}_neighbour', 'esqase_drill_$UNIQUE')
      AND (state = 'idle in transaction' OR query LIKE '%pg_sleep(12)%')")
[[ "$open" == 2 ]] || die "expected the two open transactions, found $open"
t0=$(now)
"$PY" "$DRILL_PY" revoke-probe --bases "$A,$B" --state "$WORK/state.json" --label held --rounds "$ROUNDS" \
    --out "$WORK/held.json"
took=$(elapsed "$t0" "$(now)")
still=$(psql "$PG_SERVER/postgres" -qtAX -c "SELECT count(*) FROM pg_stat_activity
    WHERE backend_xid IS NOT NULL AND datname IN ('esqase_drill_${UNIQUE}_neighbour', 'esqase_drill_$UNIQUE')
      AND (state = 'idle in transaction' OR query LIKE '%pg_sleep(12)%')")
log "the held rounds took ${took} s; transactions still open at their end: $still"
[[ "$still" == 2 ]] || die "the open transactions ended before the held rounds did: raise the sleep or lower DRILL_ROUNDS"

"$PY" "$DRILL_PY" revoke-check --quiet "$WORK/quiet.json" --held "$WORK/held.json"
