#!/usr/bin/env bash
# The headline benchmark (issue 7): one command that measures the service's headline figures
# side by side with their physical limits, measured in the same run on the same machine:
#
#   1. verified requests/s (`GET /v1/api-keys/current`, Active key; then a key with a rate limit
#      far above the load)  vs  `GET /healthz` of the same process (wrk);
#   2. key creations/s at concurrency C (`POST /v1/api-keys`)  vs  pgbench inserting one row per
#      transaction at the same concurrency, in the same database;
#   3. projection lag p50/p99 (commit → both nodes verify accordingly) under a steady command
#      load  vs  a JetStream publish → delivery on a scratch stream;
#   4. projection rebuild speed over 1M events  vs  a plain read of the same rows in feed order;
#   5. revocation latency with two nodes (the barrier)  vs  a write with no event and no barrier,
#      the same revocation with one node, and a NATS request/reply.
#
# Prints the table and writes it, with the machine it ran on, under "## Headline figures" in
# docs/benchmarks.md (only that section is replaced).
#
#   ./scripts/bench.sh
#
# Needs Postgres and NATS (JetStream) as for ./scripts/test.sh (DATABASE_URL, NATS_URL), `wrk`
# and `pgbench` (postgresql-contrib / postgresql client). Every run makes its own databases and
# NATS prefix and removes them at the end, even on failure. Requests go to 127.0.0.1 only.
# Knobs (defaults): BENCH_KEYS (10000) keys cached for (1); BENCH_WRK_DURATION (5s), BENCH_WRK_ROUNDS (3),
# BENCH_CONNECTIONS (32), BENCH_THREADS (2) for wrk; BENCH_CONCURRENCY (8), BENCH_CREATE_SECONDS
# (10) for (2); BENCH_LAG_RATE (20 commands/s), BENCH_LAG_SECONDS (15) for (3); BENCH_EVENTS
# (1000000), BENCH_USED_PER_KEY (9), BENCH_REBUILD ("read_models audit_log") for (4);
# BENCH_REVOKES (200) for (5); BENCH_NATS_COUNT (1000); BENCH_BUILD (1; 0 uses the binaries in
# target/release as they are); BENCH_OUT (docs/benchmarks.md; "-" prints only).
set -euo pipefail
cd "$(dirname "$0")/.."

DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
KEYS="${BENCH_KEYS:-10000}"
WRK_DURATION="${BENCH_WRK_DURATION:-5s}"
WRK_ROUNDS="${BENCH_WRK_ROUNDS:-3}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
THREADS="${BENCH_THREADS:-2}"
CONCURRENCY="${BENCH_CONCURRENCY:-8}"
CREATE_SECONDS="${BENCH_CREATE_SECONDS:-10}"
LAG_RATE="${BENCH_LAG_RATE:-20}"
LAG_SECONDS="${BENCH_LAG_SECONDS:-15}"
EVENTS="${BENCH_EVENTS:-1000000}"
USED_PER_KEY="${BENCH_USED_PER_KEY:-9}"
REBUILDS="${BENCH_REBUILD:-read_models audit_log}"
REVOKES="${BENCH_REVOKES:-200}"
NATS_COUNT="${BENCH_NATS_COUNT:-1000}"
BUILD="${BENCH_BUILD:-1}"
OUT="${BENCH_OUT:-docs/benchmarks.md}"
PG_SERVER="${DATABASE_URL%/*}"
WORK="$(mktemp -d -t esqase-bench.XXXXXX)"
UNIQUE="$(date +%s)_$$_${RANDOM}"
PREFIX="bench_$UNIQUE"
DB_URL="$PG_SERVER/esqase_bench_$UNIQUE"            # nodes, creates, lag, revocations
REBUILD_DB_URL="$PG_SERVER/esqase_bench_rb_$UNIQUE"  # the 1M-event log
SERVER_PIDS=()
CLEANUPS=() # "database_url [prefix]" still to remove

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

stop_servers() {
    local pid
    for pid in "${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${SERVER_PIDS[@]+"${SERVER_PIDS[@]}"}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    SERVER_PIDS=()
}

cleanup() { # database_url [prefix]
    local args=(--cleanup --database-url "$1" --nats-url "$NATS_URL")
    [[ $# -ge 2 ]] && args+=(--nats-prefix "$2")
    ./target/release/esqase-bench-seed "${args[@]}" || log "cleanup of $* failed"
}

on_exit() {
    local status=$?
    stop_servers
    local entry
    for entry in "${CLEANUPS[@]+"${CLEANUPS[@]}"}"; do
        # shellcheck disable=SC2086
        cleanup $entry
    done
    rm -rf "$WORK"
    exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

forget_cleanup() { # entry
    local kept=() entry
    for entry in "${CLEANUPS[@]+"${CLEANUPS[@]}"}"; do [[ "$entry" == "$1" ]] || kept+=("$entry"); done
    CLEANUPS=("${kept[@]+"${kept[@]}"}")
}

# --- tools and binaries ------------------------------------------------------------------------
for tool in wrk pgbench psql curl; do
    command -v "$tool" >/dev/null || { log "$tool is missing (apt-get install wrk postgresql-client)"; exit 1; }
done
if [[ "$BUILD" == 1 ]]; then
    log "building release binaries"
    cargo build --release --locked -p api -p bench --bins
fi
ESQASE=./target/release/esqase
SEED=./target/release/esqase-bench-seed
LOAD=./target/release/esqase-bench-load
for binary in "$ESQASE" "$SEED" "$LOAD"; do [[ -x "$binary" ]] || { log "$binary is missing"; exit 1; }; done

# --- helpers ---------------------------------------------------------------------------------
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh
seconds_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

# A value from a "name=value" file.
val() { sed -n "s/^$2=//p" "$1" | tail -1; }

# Starts a node on $DB_URL / $PREFIX; sets NODE_BASE to its URL once /readyz answers 200.
start_node() { # name
    local serve_log="$WORK/serve-$1.log"
    DATABASE_URL="$DB_URL" NATS_URL="$NATS_URL" ESQASE_NATS_PREFIX="$PREFIX" ESQASE_LISTEN=127.0.0.1:0 \
        "$ESQASE" serve >"$serve_log" 2>&1 &
    local pid=$!
    SERVER_PIDS+=("$pid")
    local addr="" deadline=$((SECONDS + 180))
    while [[ -z "$addr" ]]; do
        kill -0 "$pid" 2>/dev/null || { tail -20 "$serve_log" >&2; log "node $1 exited"; return 1; }
        ((SECONDS < deadline)) || { log "node $1 did not listen in time"; return 1; }
        addr=$(grep -m1 -o '"addr":"127\.0\.0\.1:[0-9]*"' "$serve_log" | sed 's/.*"127/127/; s/"$//' || true)
        [[ -n "$addr" ]] || sleep 0.02
    done
    NODE_BASE="http://$addr"
    until [[ "$(status_of "$NODE_BASE/readyz")" == 200 ]]; do
        kill -0 "$pid" 2>/dev/null || { log "node $1 exited"; return 1; }
        ((SECONDS < deadline)) || { log "node $1 not ready in time"; return 1; }
        sleep 0.02
    done
    log "node $1 ready at $NODE_BASE"
}

# pgbench per-transaction log → "p50_ms p99_ms" (column 3 is the latency in µs).
pgbench_percentiles() { # log files...
    cat "$@" | awk '{ print $3 }' | sort -n | awk '
        { v[NR] = $1 }
        END { if (NR == 0) { print "- -"; exit }
              i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
              printf "%.2f %.2f\n", v[i50] / 1000, v[i99] / 1000 }'
}

LOAD_AVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
STARTED=$(now_ns)

# --- 1. verified requests/s vs /healthz --------------------------------------------------------
CLEANUPS+=("$DB_URL $PREFIX")
log "seeding $KEYS keys into $DB_URL"
"$SEED" --database-url "$DB_URL" --keys "$KEYS" >"$WORK/seed.txt"
ACTIVE=$(val "$WORK/seed.txt" active_secret)
LIMITED=$(val "$WORK/seed.txt" limited_secret)
start_node A
A="$NODE_BASE"
AUTH="Authorization: Bearer $ACTIVE"
[[ "$(status_of "$A/v1/api-keys/current" "$AUTH")" == 200 ]] || { log "the seeded key is not accepted"; exit 1; }
LIMITED_AUTH="Authorization: Bearer $LIMITED"
[[ "$(status_of "$A/v1/api-keys/current" "$LIMITED_AUTH")" == 200 ]] || { log "the limited key is not accepted"; exit 1; }
log "1. wrk warm-up, then $WRK_ROUNDS rounds of GET /healthz, /v1/api-keys/current with the Active key and with the limited key ($WRK_DURATION each)"
wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -H "$AUTH" "$A/v1/api-keys/current" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -H "$LIMITED_AUTH" "$A/v1/api-keys/current" >/dev/null
# The routes in turn, round after round, and each route's median round: a burst of other work
# on the machine skews one round, not the figure (tens of percent between single rounds here).
for round in $(seq "$WRK_ROUNDS"); do
    wrk_load "health-$round" "$WRK_DURATION" "$A/healthz" >>"$WORK/rounds-health"
    wrk_load "current-$round" "$WRK_DURATION" "$A/v1/api-keys/current" "$AUTH" >>"$WORK/rounds-current"
    wrk_load "limited-$round" "$WRK_DURATION" "$A/v1/api-keys/current" "$LIMITED_AUTH" >>"$WORK/rounds-limited"
done
read -r HEALTH_RPS HEALTH_P50 HEALTH_P99 _ _ <<<"$(median_round <"$WORK/rounds-health")"
read -r CURRENT_RPS CURRENT_P50 CURRENT_P99 CURRENT_NON2XX CURRENT_ERRORS <<<"$(median_round <"$WORK/rounds-current")"
read -r LIMITED_RPS LIMITED_P50 LIMITED_P99 LIMITED_NON2XX LIMITED_ERRORS <<<"$(median_round <"$WORK/rounds-limited")"
log "   /healthz $HEALTH_RPS/s; /v1/api-keys/current $CURRENT_RPS/s ($CURRENT_NON2XX non-2xx); limited key $LIMITED_RPS/s ($LIMITED_NON2XX non-2xx)"

# --- 2. key creations/s vs pgbench -------------------------------------------------------------
log "2. key creations: $CONCURRENCY workers, one firm each, ${CREATE_SECONDS}s"
"$LOAD" creates --base "$A" --concurrency "$CONCURRENCY" --seconds "$CREATE_SECONDS" >"$WORK/creates.txt"
log "   key creations: $CONCURRENCY workers, all in one firm, ${CREATE_SECONDS}s"
"$LOAD" creates --base "$A" --concurrency "$CONCURRENCY" --seconds "$CREATE_SECONDS" --one-firm >"$WORK/creates-one.txt"
log "   pgbench: one-row INSERT per transaction, -c $CONCURRENCY, ${CREATE_SECONDS}s"
psql -q -X -v ON_ERROR_STOP=1 "$DB_URL" -c \
    "CREATE TABLE bench_insert (id uuid PRIMARY KEY, payload jsonb NOT NULL, at timestamptz NOT NULL DEFAULT now())"
echo "INSERT INTO bench_insert (id, payload) VALUES (gen_random_uuid(), '{\"name\": \"pgbench row\"}');" >"$WORK/insert.sql"
(cd "$WORK" && pgbench -n -c "$CONCURRENCY" -j 2 -T "$CREATE_SECONDS" -f insert.sql -l --log-prefix=pgbench "$DB_URL") \
    >"$WORK/pgbench.txt" 2>&1 || { cat "$WORK/pgbench.txt" >&2; exit 1; }
PGBENCH_TPS=$(awk '/^tps = / { printf "%.0f", $3; exit }' "$WORK/pgbench.txt")
read -r PGBENCH_P50 PGBENCH_P99 <<<"$(pgbench_percentiles "$WORK"/pgbench.*)"
psql -q -X "$DB_URL" -c "DROP TABLE bench_insert"
log "   creates $(val "$WORK/creates.txt" creates_per_s)/s, one firm $(val "$WORK/creates-one.txt" creates_per_s)/s; pgbench $PGBENCH_TPS tps"

log "5a. revocations with one node ($REVOKES, one by one)"
"$LOAD" revokes --a "$A" --b "$A" --count "$REVOKES" >"$WORK/revokes-one.txt"

# --- 3. projection lag with two nodes ----------------------------------------------------------
start_node B
B="$NODE_BASE"
log "3. NATS round trips ($NATS_COUNT each)"
"$LOAD" nats --nats-url "$NATS_URL" --prefix "$PREFIX" --count "$NATS_COUNT" >"$WORK/nats.txt"
log "   projection lag: $LAG_RATE commands/s for ${LAG_SECONDS}s direct, then the same through node A"
"$LOAD" lag --a "$A" --b "$B" --database-url "$DB_URL" --rate "$LAG_RATE" --seconds "$LAG_SECONDS" >"$WORK/lag.txt"
log "   lag p50 $(val "$WORK/lag.txt" lag_both_p50_ms) ms, p99 $(val "$WORK/lag.txt" lag_both_p99_ms) ms"

# --- 5. revocation latency with two nodes ------------------------------------------------------
log "5b. revocations with two nodes ($REVOKES, one by one through A, each checked on B)"
"$LOAD" revokes --a "$A" --b "$B" --count "$REVOKES" >"$WORK/revokes.txt"
stop_servers
cleanup "$DB_URL" "$PREFIX"
forget_cleanup "$DB_URL $PREFIX"

# --- 4. projection rebuild over 1M events ------------------------------------------------------
CLEANUPS+=("$REBUILD_DB_URL")
log "4. seeding about $EVENTS events into $REBUILD_DB_URL"
"$SEED" --database-url "$REBUILD_DB_URL" --keys 0 >/dev/null
REBUILD_KEYS=$((EVENTS / (USED_PER_KEY + 1)))
t0=$(now_ns)
psql -q -X -v ON_ERROR_STOP=1 -v keys="$REBUILD_KEYS" -v per_key="$((USED_PER_KEY + 1))" "$REBUILD_DB_URL" <<'SQL'
BEGIN;
-- The log's writers hold the shared writer lock (docs/decisions.md, "The feed's horizon"), and
-- mark their transaction so (the guard on `events` reads the mark).
SELECT pg_advisory_xact_lock_shared(1702064481, 2003986804);
SET LOCAL esqase.event_log_writer = 'on';
-- Each key: its real ApiKeyCreated payload (a seeded key's, with its own name and hash), then
-- Used events, versions 1, 2, … per stream; all creations first, then rounds of use, as a log
-- that has run for a while would hold them.
CREATE TEMP TABLE template AS
    SELECT payload, firm_id, actor FROM events WHERE event_type = 'ApiKeyCreated' ORDER BY position LIMIT 1;
CREATE TEMP TABLE bench_keys AS SELECT g, gen_random_uuid() AS stream_id FROM generate_series(1, :keys) AS g;
INSERT INTO events (id, stream_id, stream_kind, version, event_type, payload, firm_id, actor, occurred_at)
SELECT gen_random_uuid(), k.stream_id, 'api_key', v.version,
       CASE WHEN v.version = 1 THEN 'ApiKeyCreated' ELSE 'ApiKeyUsed' END,
       CASE WHEN v.version = 1
            THEN t.payload || jsonb_build_object('name', 'Rebuild key ' || k.g,
                                                 'key_hash', encode(sha256(convert_to(k.stream_id::text, 'UTF8')), 'hex'))
            ELSE jsonb_build_object('last_used_at',
                                    to_char((now() + make_interval(mins => v.version)) AT TIME ZONE 'UTC',
                                            'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                                    'count', 1)
       END,
       t.firm_id, t.actor, now()
FROM bench_keys AS k CROSS JOIN generate_series(1, :per_key) AS v(version) CROSS JOIN template AS t
ORDER BY v.version, k.g;
COMMIT;
ANALYZE events;
SQL
REBUILD_SEED_S=$(seconds_since "$t0")
EVENT_COUNT=$(psql -X -At "$REBUILD_DB_URL" -c "SELECT count(*) FROM events")
EVENTS_MB=$(psql -X -At "$REBUILD_DB_URL" -c "SELECT round(pg_total_relation_size('events') / 1048576.0)")
log "   $EVENT_COUNT events (${EVENTS_MB} MiB with indexes) in ${REBUILD_SEED_S}s"
log "   reading every event in feed order (COPY … TO STDOUT > /dev/null)"
t0=$(now_ns)
psql -X -q "$REBUILD_DB_URL" -c \
    "COPY (SELECT position, tx_id, id, stream_id, stream_kind, version, event_type, payload, firm_id, actor,
                  request_id, occurred_at FROM events ORDER BY tx_id, position) TO STDOUT" >/dev/null
SCAN_S=$(seconds_since "$t0")
declare -A REBUILD_S=()
for name in $REBUILDS; do
    log "   esqase projections rebuild $name"
    t0=$(now_ns)
    DATABASE_URL="$REBUILD_DB_URL" RUST_LOG=warn "$ESQASE" projections rebuild "$name" >"$WORK/rebuild-$name.log" 2>&1 \
        || { cat "$WORK/rebuild-$name.log" >&2; exit 1; }
    REBUILD_S[$name]=$(seconds_since "$t0")
    log "   $name: ${REBUILD_S[$name]}s"
done
cleanup "$REBUILD_DB_URL"
forget_cleanup "$REBUILD_DB_URL"

LOAD_AVG_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
TOTAL_S=$(seconds_since "$STARTED")

# --- report ----------------------------------------------------------------------------------
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a + 0 == a) printf "%.0f%%", 100 * a / b; else printf "-" }'; }
per_s() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.0f", n / s }'; }
ms() { printf '%s / %s ms' "$(val "$1" "$2_p50_ms")" "$(val "$1" "$2_p99_ms")"; }
# How many times the limit's p50 latency the service's p50 is.
times() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 > 0 && a + 0 == a) printf "%.1f× (p50)", a / b; else printf "-" }'; }
# 1234567 → 1,234,567.
thousands() { sed ':a; s/\B[0-9]\{3\}\>/,&/; ta' <<<"$1"; }

CREATES=$(val "$WORK/creates.txt" creates_per_s)
CREATES_ONE=$(val "$WORK/creates-one.txt" creates_per_s)
SCAN_RATE=$(per_s "$EVENT_COUNT" "$SCAN_S")
rebuild_rows() {
    local name rate
    for name in $REBUILDS; do
        rate=$(per_s "$EVENT_COUNT" "${REBUILD_S[$name]}")
        echo "| Projection rebuild \`$name\`, $(thousands "$EVENT_COUNT") events | **$rate events/s** (${REBUILD_S[$name]} s) | the same rows read in feed order: $SCAN_RATE events/s (${SCAN_S} s) | $(pct "$rate" "$SCAN_RATE") |"
    done
}

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
pg_version=$(psql -X -At "$DATABASE_URL" -c "SHOW server_version")
pg_settings=$(psql -X -At "$DATABASE_URL" -c \
    "SELECT string_agg(name || ' = ' || setting || coalesce(unit, ''), ', ' ORDER BY name) FROM pg_settings
     WHERE name IN ('synchronous_commit', 'fsync', 'shared_buffers', 'wal_level')")
nats_version=$( (command -v nats-server >/dev/null && nats-server --version || /usr/sbin/nats-server --version) 2>/dev/null \
    | sed -n 's/^nats-server: *//p' | head -1)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$([[ -n "$(git status --porcelain 2>/dev/null)" ]] && echo " (uncommitted changes in the tree)" || true)

# How to read the table (written into the doc under the table).
notes() {
    cat <<'NOTES'
- **Verified requests/s.** `wrk -t2 -c32 --latency` from a second process over loopback, after a
  3 s warm-up, against one node: three rounds of 5 s of the three routes in turn, and each
  route's median round (requests/s and that round's latencies). `GET /v1/api-keys/current` with an Active key verifies it from
  the node's memory and builds its body from memory (see "Verification"); `GET /healthz`
  does nothing, so the ratio is what verification and the body cost over the bare HTTP stack.
  The seeded keys are read-model rows with no events (as in `bench-verification.sh`). The
  limited key (made through the commands, with a limit of 1,000,000 requests per 1-second
  window, far above what one node serves) runs the same route with its rate limit counted on
  every request: the node's reservation of quota, topped up from the NATS key-value count in
  the background, and the `RateLimit` fields on every answer (docs/decisions.md, "Rate limits
  per key").
- **Key creations/s.** `esqase-bench-load creates`: C closed-loop workers over keep-alive HTTP,
  each the owner of its own firm; only requests that began and ended inside the window (after
  a 2 s warm-up) count. One creation is one Postgres transaction (the firm's advisory lock, the
  expected-version check, the event insert, the `api_keys` row, the audit entry with its chain
  head and actor lookups), then the barrier: the node folds the event into its own memory,
  sends it to the other nodes over core NATS and waits for its own message to come back (and,
  with two nodes, for the other node's reply). The limit is `pgbench -n -c C -j 2` on a scratch table in
  the same database, one `INSERT` of a uuid and a small jsonb per transaction, with this
  server's `synchronous_commit = on`: the commits per second the WAL flush allows here when the
  clients do nothing else. In the one-firm row all workers act for one firm, whose commands
  take turns by design (docs/decisions.md).
- **Projection lag.** A command's response waits until every live node has applied its events
  (the barrier, docs/decisions.md "Verification on every node"), so measured from a response
  the lag is always zero: the supporting line shows node B answering accordingly right after
  every response through node A, and what that wait costs. The raw lag is measured without
  the barrier: `esqase-bench-load lag` commits commands itself through the commands layer (the
  same code and transaction as a node's command; being outside the cluster it wakes the relays
  with a NOTIFY after each commit; nobody waits), at a
  steady rate, alternating key creations and allowed-domain edits of keys created earlier in
  the run. From the moment the command returns it polls `GET /v1/api-keys/current` on both
  nodes every 1 ms: a creation is applied when the new secret answers 200 instead of
  `401 invalid_api_key`, an edit when a request with `Origin: https://<the new domain>` answers
  200 instead of `403 origin_not_allowed`, both answered from the node's memory. "Both nodes" is
  the later of the two. The path is NOTIFY → the relay leader (one of the nodes) reads the feed
  from Postgres → JetStream → each node's runner → its verification state. The limit beside it
  is one hop of that path that no design avoids: a JetStream publish on a scratch file stream
  until an ordered consumer receives it, one message at a time.
- **Projection rebuild.** The log is written straight into `events` with SQL, in the real
  payload shapes (each key's `ApiKeyCreated` is a seeded key's payload with its own name and
  hash; `ApiKeyUsed` as the usage flush writes it), consecutive versions per stream, all the
  creations first and then rounds of use. The figure is the wall time of
  `esqase projections rebuild <name>` (process start, connection and migration check
  included): the feed is streamed in chunks of 1M events (so this log is one chunk, and a
  second one for the 5 events after it), decoded by one task while another folds, in memory,
  into shadow tables beside the live ones (read models: each row the chunk changed written once,
  with one `INSERT … SELECT FROM unnest(…)` per table; audit log: a SHA-256 and an entry per
  creation, 10k entries per statement, while uses make no entry and cost only their read and
  decoding); then the shadow tables get their indexes and constraints and are swapped in. The
  limit is reading the same rows, every column, in the same feed order, with
  `psql -c "COPY (…) TO STDOUT" > /dev/null`.
- **Revocation.** `esqase-bench-load revokes` creates N keys through node A, then revokes them
  one by one through node A; each response waits until both nodes have applied the revocation,
  and node B is asked right after it (the supporting line counts its refusals). Beside it: a
  contact creation through the same node (the data API: one transaction on a plain table, no
  event, no NATS, no barrier), the same revocations run earlier with node A alone, and a core
  NATS request/reply (the barrier needs one: its commit message out to every node, their
  replies back).
- **What could mislead.** Everything runs on one 2-core machine that other work shares (see the
  load average): Postgres, NATS, the nodes, wrk, pgbench and the load generator compete for the
  cores, and absolute figures move by tens of percent from run to run; ratios measured back to
  back are steadier. Loopback has no network latency, so the lag and barrier figures are lower
  bounds for nodes on separate hosts. The lag figures include up to one poll interval plus one
  request (about 1.5 ms), and start one NOTIFY round trip after the commit. The lag was measured
  at a modest steady rate, not under saturation. A node that did not trust its cache would
  verify against Postgres and answer 200 at once; the nodes stayed connected to NATS throughout.
  The rebuilt log is one firm's synthetic keys, not a production mix of firms and members.
- **Lag tails.** The relay reads the feed below the oldest open event-log writer of this
  database only (docs/decisions.md, "The feed's horizon"); transactions elsewhere on the
  cluster no longer hold it back. The supporting line still counts how often the cluster-wide
  horizon (`pg_snapshot_xmin`) was held back during the run, which the old design waited on.
NOTES
}

HORIZON_OLDEST=""
if [[ "$(val "$WORK/lag.txt" horizon_held_samples)" != 0 ]]; then
    where="another database"
    [[ "$(val "$WORK/lag.txt" horizon_longest_here)" == true ]] && where="this run's database"
    HORIZON_OLDEST=" (the oldest was $(val "$WORK/lag.txt" horizon_longest_ms) ms old, in $where)"
fi

section="$WORK/section.md"
{
    echo "## Headline figures"
    echo
    echo "Generated by \`./scripts/bench.sh\` (rerun it to refresh this section; it does not touch the"
    echo "rest of the file). Each figure stands beside its physical limit, measured in the same run."
    echo
    echo "- Run: $(date -u '+%Y-%m-%d %H:%M UTC'), commit \`$commit\`$dirty; the command took $(awk -v s="$TOTAL_S" 'BEGIN { printf "%.0f", s }') s."
    echo "- Machine: $(nproc) cores ($cpu), ${mem_gib} GiB RAM, $(uname -sr), PostgreSQL $pg_version"
    echo "  ($pg_settings), NATS ${nats_version:-(version unknown)} on the same host; Postgres, NATS, the nodes and the load generators"
    echo "  all share the $(nproc) cores. Load average before/after: $LOAD_AVG_BEFORE / $LOAD_AVG_AFTER."
    echo "- Release binaries, default settings (20 Postgres connections per node, \`RUST_LOG=info\`)."
    echo
    echo "| figure | Esqase | physical limit, same run | ratio to the limit |"
    echo "|---|---:|---|---:|"
    echo "| Verified requests/s: \`GET /v1/api-keys/current\`, Active key, $(thousands "$KEYS") keys cached (wrk -c$CONNECTIONS, p50 / p99) | **$CURRENT_RPS/s** ($CURRENT_P50 / $CURRENT_P99 ms) | \`GET /healthz\` of the same process: $HEALTH_RPS/s ($HEALTH_P50 / $HEALTH_P99 ms) | $(pct "$CURRENT_RPS" "$HEALTH_RPS") |"
    echo "| Verified requests/s, the same with a key limited to 1,000,000 requests a second (every request counted against the limit) | **$LIMITED_RPS/s** ($LIMITED_P50 / $LIMITED_P99 ms) | the same \`GET /healthz\`: $HEALTH_RPS/s; the unlimited key: $CURRENT_RPS/s | $(pct "$LIMITED_RPS" "$HEALTH_RPS") |"
    echo "| Key creations/s, $CONCURRENCY concurrent, one firm each (p50 / p99) | **$CREATES/s** ($(ms "$WORK/creates.txt" creates)) | pgbench, one-row \`INSERT\` per transaction, -c $CONCURRENCY: $PGBENCH_TPS/s ($PGBENCH_P50 / $PGBENCH_P99 ms) | $(pct "$CREATES" "$PGBENCH_TPS") |"
    echo "| Key creations/s, $CONCURRENCY concurrent, all in one firm (p50 / p99) | $CREATES_ONE/s ($(ms "$WORK/creates-one.txt" creates)) | the same pgbench run | $(pct "$CREATES_ONE" "$PGBENCH_TPS") |"
    echo "| Projection lag, commit → both nodes verify accordingly, $LAG_RATE commands/s (p50 / p99) | **$(ms "$WORK/lag.txt" lag_both)** | JetStream publish → delivered to an ordered consumer: $(ms "$WORK/nats.txt" js_delivery) | $(times "$(val "$WORK/lag.txt" lag_both_p50_ms)" "$(val "$WORK/nats.txt" js_delivery_p50_ms)") |"
    rebuild_rows
    echo "| Revocation with two nodes, one by one through node A (p50 / p99) | **$(ms "$WORK/revokes.txt" revoke)** | a contact creation (one transaction, no event, no barrier): $(ms "$WORK/revokes.txt" contact_seq); the same revocation with one node: $(ms "$WORK/revokes-one.txt" revoke); a NATS request/reply: $(ms "$WORK/nats.txt" nats_request) | $(times "$(val "$WORK/revokes.txt" revoke_p50_ms)" "$(val "$WORK/revokes.txt" contact_seq_p50_ms)") the contact creation |"
    echo
    echo "Supporting figures from the same run:"
    echo
    echo "- Projection lag by node (p50 / p99): node A $(ms "$WORK/lag.txt" lag_node_a), node B $(ms "$WORK/lag.txt" lag_node_b);"
    echo "  $(val "$WORK/lag.txt" lag_commands) commands (creations and allowed-domain edits, alternating), $(val "$WORK/lag.txt" lag_timeouts) not seen within 5 s,"
    echo "  $(val "$WORK/lag.txt" lag_errors) errors, $(val "$WORK/lag.txt" lag_both_over_100ms) over 100 ms (slowest $(val "$WORK/lag.txt" lag_both_max_ms) ms); each command took $(ms "$WORK/lag.txt" lag_command) to commit (no barrier)."
    echo "  Meanwhile a write transaction open for over 100 ms somewhere in the Postgres cluster (it holds"
    echo "  every feed reader back) was seen in $(val "$WORK/lag.txt" horizon_held_samples) of $(val "$WORK/lag.txt" horizon_samples) samples taken every 20 ms$HORIZON_OLDEST."
    echo "- The same load through node A's HTTP API (the response waits for the barrier): $(ms "$WORK/lag.txt" barrier_command)"
    echo "  per command; node B already answered accordingly right after the response for"
    echo "  $(val "$WORK/lag.txt" barrier_seen_on_b) of $(val "$WORK/lag.txt" barrier_commands) ($(val "$WORK/lag.txt" barrier_errors) errors)."
    echo "- Revocations: node B refused the key right after the response for $(val "$WORK/revokes.txt" revoke_refused_on_b) of $REVOKES;"
    echo "  the slowest revocation took $(val "$WORK/revokes.txt" revoke_max_ms) ms with two nodes, $(val "$WORK/revokes-one.txt" revoke_max_ms) ms with one (the barrier's bound is 2 s)."
    echo "  Key creations one by one (they wait for the barrier too): $(ms "$WORK/revokes.txt" create_seq) with two nodes,"
    echo "  $(ms "$WORK/revokes-one.txt" create_seq) with one; contact creations with one node: $(ms "$WORK/revokes-one.txt" contact_seq)."
    echo "- NATS: JetStream publish → ack $(ms "$WORK/nats.txt" js_publish_ack) (file storage, like the events stream)."
    echo "- Creation errors: $(val "$WORK/creates.txt" creates_errors) and $(val "$WORK/creates-one.txt" creates_errors); verified route: $CURRENT_NON2XX non-2xx, $CURRENT_ERRORS socket errors; with the limited key: $LIMITED_NON2XX non-2xx, $LIMITED_ERRORS socket errors."
    echo "- The rebuild log was seeded in ${REBUILD_SEED_S} s ($EVENTS_MB MiB with its indexes): $((EVENT_COUNT - REBUILD_KEYS * (USED_PER_KEY + 1))) real events"
    echo "  of one seeded firm, then $REBUILD_KEYS keys × (1 \`ApiKeyCreated\` + $USED_PER_KEY \`ApiKeyUsed\`)."
    echo
    echo "### How these are measured"
    echo
    notes
} >"$section"

echo
cat "$section"

if [[ "$OUT" != "-" ]]; then
    mkdir -p "$(dirname "$OUT")"
    [[ -f "$OUT" ]] || printf '# Benchmarks\n\n' >"$OUT"
    # Replace the "## Headline figures" section (up to the next "## " heading), or append it;
    # the rest of the file is copied as it is.
    awk -v section="$section" '
        function emit() { while ((getline line < section) > 0) print line; close(section); done = 1 }
        /^## / { if (skipping) { skipping = 0; print "" } }
        /^## Headline figures[[:space:]]*$/ { emit(); skipping = 1; next }
        !skipping { print; last = $0 }
        END { if (!done) { if (last != "") print ""; emit() } }
    ' "$OUT" >"$WORK/out.md"
    cp "$WORK/out.md" "$OUT"
    log "wrote the Headline figures section of $OUT"
fi
