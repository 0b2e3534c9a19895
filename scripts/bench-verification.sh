#!/usr/bin/env bash
# The verification benchmark (issue 5): throughput and p50/p99 latency of
# `GET /v1/api-keys/current` (a verified key) against `GET /healthz` of the same process, with
# 10k and 1M keys in the node's verification cache; the node's start-up time and memory per
# cached key. Writes its tables under "## Verification" in docs/benchmarks.md (the rest of that
# file is left as it is).
#
#   ./scripts/bench-verification.sh
#
# Needs Postgres and NATS (JetStream) as for ./scripts/test.sh (DATABASE_URL, NATS_URL), and
# `wrk` (installed with apt-get if missing). Every run makes its own database and NATS prefix
# and removes both at the end, even on failure. Requests go to 127.0.0.1 only.
# Knobs: BENCH_SIZES (default "10000 1000000"), BENCH_DURATION (10s per wrk run), BENCH_ROUNDS
# (3: the three routes are loaded in turn, round after round, and each route's median round is
# reported, so a burst of other work on the machine skews one round, not the figure),
# BENCH_THREADS (2), BENCH_CONNECTIONS (32), BENCH_OUT (docs/benchmarks.md; "-" prints only).
set -euo pipefail
cd "$(dirname "$0")/.."

DATABASE_URL="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
SIZES="${BENCH_SIZES:-10000 1000000}"
DURATION="${BENCH_DURATION:-10s}"
ROUNDS="${BENCH_ROUNDS:-3}"
THREADS="${BENCH_THREADS:-2}"
CONNECTIONS="${BENCH_CONNECTIONS:-32}"
OUT="${BENCH_OUT:-docs/benchmarks.md}"
PG_SERVER="${DATABASE_URL%/*}"
WORK="$(mktemp -d -t esqase-bench.XXXXXX)"
SERVER_PID=""
CLEANUPS=() # "database_url prefix" pairs still to remove

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

stop_server() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

cleanup_run() { # database_url prefix
    ./target/release/esqase-bench-seed --cleanup --database-url "$1" --nats-url "$NATS_URL" --nats-prefix "$2" \
        || log "cleanup of $1 / $2 failed"
}

on_exit() {
    local status=$?
    stop_server
    local pair
    for pair in "${CLEANUPS[@]+"${CLEANUPS[@]}"}"; do
        # shellcheck disable=SC2086
        cleanup_run $pair
    done
    rm -rf "$WORK"
    exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# --- tools and binaries ------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    log "installing wrk"
    sudo_cmd=""; [[ $(id -u) -ne 0 ]] && sudo_cmd="sudo"
    $sudo_cmd apt-get install -y wrk >/dev/null || { $sudo_cmd apt-get update >/dev/null && $sudo_cmd apt-get install -y wrk >/dev/null; }
fi
log "building release binaries"
cargo build --release --locked -p api -p bench --bins
ESQASE=./target/release/esqase
SEED=./target/release/esqase-bench-seed

# --- helpers ---------------------------------------------------------------------------------
# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

# A value of /proc/<pid>/status in KiB (VmRSS, VmHWM).
proc_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }


# --- one run ---------------------------------------------------------------------------------
# Seeds N keys into a fresh database, starts a node, measures start-up and memory, loads it (if
# N > 0), stops it and removes its database and stream. Appends a line to $WORK/results.
run() { # N
    local n="$1" unique db_url prefix
    unique="$(date +%s)_$$_${RANDOM}"
    db_url="$PG_SERVER/esqase_bench_$unique"
    prefix="bench_$unique"
    CLEANUPS+=("$db_url $prefix")

    log "N=$n: seeding $db_url"
    local t0 t1
    t0=$(now_ns)
    "$SEED" --database-url "$db_url" --keys "$n" >"$WORK/seed-$n.txt"
    t1=$(now_ns)
    local seed_s active revoked
    seed_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
    active=$(sed -n 's/^active_secret=//p' "$WORK/seed-$n.txt")
    revoked=$(sed -n 's/^revoked_secret=//p' "$WORK/seed-$n.txt")

    log "N=$n: starting esqase serve (prefix $prefix)"
    local serve_log="$WORK/serve-$n.log"
    t0=$(now_ns)
    DATABASE_URL="$db_url" NATS_URL="$NATS_URL" ESQASE_NATS_PREFIX="$prefix" ESQASE_LISTEN=127.0.0.1:0 \
        "$ESQASE" serve >"$serve_log" 2>&1 &
    SERVER_PID=$!
    local addr="" deadline=$((SECONDS + 180))
    while [[ -z "$addr" ]]; do
        kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$serve_log" >&2; log "esqase exited"; return 1; }
        ((SECONDS < deadline)) || { log "esqase did not listen in time"; return 1; }
        addr=$(grep -m1 -o '"addr":"127\.0\.0\.1:[0-9]*"' "$serve_log" | sed 's/.*"127/127/; s/"$//' || true)
        [[ -n "$addr" ]] || sleep 0.02
    done
    local base="http://$addr"
    until [[ "$(status_of "$base/readyz")" == 200 ]]; do
        kill -0 "$SERVER_PID" 2>/dev/null || { log "esqase exited"; return 1; }
        ((SECONDS < deadline)) || { log "esqase not ready in time"; return 1; }
        sleep 0.02
    done
    t1=$(now_ns)
    local startup_ms
    startup_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) / 1e6 }')
    sleep 1
    local rss_kib hwm_kib key_bytes
    rss_kib=$(proc_kib "$SERVER_PID" VmRSS)
    hwm_kib=$(proc_kib "$SERVER_PID" VmHWM)
    key_bytes=$(curl -s "$base/metrics" | awk '$1 == "esqase_verification_key_bytes" { print $2 }')
    log "N=$n: seeded in ${seed_s}s; ready in ${startup_ms} ms; VmRSS ${rss_kib} KiB, VmHWM ${hwm_kib} KiB, keys' heap ${key_bytes} B"

    local health="- - - 0 0" current="- - - 0 0" revoked_load="- - - 0 0"
    if ((n > 0)); then
        local auth="Authorization: Bearer $active" auth_revoked="Authorization: Bearer $revoked" code
        code=$(status_of "$base/healthz"); [[ "$code" == 200 ]] || { log "/healthz answered $code"; return 1; }
        code=$(status_of "$base/v1/api-keys/current" "$auth")
        [[ "$code" == 200 ]] || { log "/v1/api-keys/current answered $code"; return 1; }
        code=$(status_of "$base/v1/api-keys/current" "$auth_revoked")
        [[ "$code" == 401 ]] || { log "a revoked key answered $code"; return 1; }
        log "N=$n: warm-up"
        wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -H "$auth" "$base/v1/api-keys/current" >/dev/null
        local round
        : >"$WORK/health-$n"; : >"$WORK/current-$n"; : >"$WORK/revoked-$n"
        for round in $(seq "$ROUNDS"); do
            log "N=$n: round $round of $ROUNDS: /healthz, then the Active key, then the revoked key ($DURATION each)"
            wrk_load "health-$n-$round" "$DURATION" "$base/healthz" >>"$WORK/health-$n"
            wrk_load "current-$n-$round" "$DURATION" "$base/v1/api-keys/current" "$auth" >>"$WORK/current-$n"
            wrk_load "revoked-$n-$round" "$DURATION" "$base/v1/api-keys/current" "$auth_revoked" >>"$WORK/revoked-$n"
        done
        health=$(median_round <"$WORK/health-$n")
        current=$(median_round <"$WORK/current-$n")
        revoked_load=$(median_round <"$WORK/revoked-$n")
        log "N=$n: health [$health] current [$current] revoked [$revoked_load]"
    fi
    stop_server
    echo "$n $seed_s $startup_ms $rss_kib $hwm_kib $health $current $revoked_load $key_bytes" >>"$WORK/results"
    cleanup_run "$db_url" "$prefix"
    CLEANUPS=("${CLEANUPS[@]:0:${#CLEANUPS[@]}-1}")
}

LOAD_AVG_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$WORK/results"
run 0
for n in $SIZES; do run "$n"; done
LOAD_AVG_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report ----------------------------------------------------------------------------------
fmt_n() { awk -v n="$1" 'BEGIN { if (n >= 1000000 && n % 1000000 == 0) printf "%dM", n / 1000000;
    else if (n >= 1000 && n % 1000 == 0) printf "%dk", n / 1000; else printf "%d", n }'; }

base_rss=$(awk '$1 == 0 { print $4 }' "$WORK/results")

throughput_table() {
    echo "| keys cached | route | requests/s | p50 | p99 | vs /healthz |"
    echo "|---:|---|---:|---:|---:|---:|"
    awk '$1 > 0 {
        n = $1; h = $6; c = $11; r = $16
        bad_c = ($14 + $15 > 0) ? sprintf(" (%d non-2xx, %d socket errors)", $14, $15) : ""
        printf "| %s | `GET /healthz` | %s | %s ms | %s ms | 100%% |\n", n, $6, $7, $8
        printf "| %s | `GET /v1/api-keys/current` (Active key: 200) | %s%s | %s ms | %s ms | **%.0f%%** |\n", n, c, bad_c, $12, $13, 100 * c / h
        printf "| %s | `GET /v1/api-keys/current` (revoked key: 401 from memory) | %s | %s ms | %s ms | %.0f%% |\n", n, r, $17, $18, 100 * r / h
    }' "$WORK/results" | while IFS= read -r line; do
        n=$(sed 's/^| \([0-9]*\) |.*/\1/' <<<"$line"); echo "${line/| $n |/| $(fmt_n "$n") |}"
    done
}

# Memory per key measured from RSS, and from the node's own count of the heap its keys take
# (`esqase_verification_key_bytes` on /metrics: records, both tables, names and previews).
memory_table() {
    echo "| keys cached | seed time | start-up to \`/readyz\` 200 | RSS after start-up | peak RSS (VmHWM) | RSS per cached key (vs 0 keys) | keys' heap per key (/metrics) |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    awk -v base="$base_rss" '{
        n = $1; keys = n + 2
        est = (n > 0) ? sprintf("%.0f B", $NF / keys) : "-"
        per = (n > 0) ? sprintf("%.0f B", ($4 - base) * 1024 / n) : "(baseline)"
        printf "%s| %s s | %s ms | %.1f MiB | %.1f MiB | %s | %s |\n", n, $2, $3, $4 / 1024, $5 / 1024, per, est
    }' "$WORK/results" | while IFS='|' read -r n rest; do
        echo "| $(fmt_n "$n") + 2 |$rest"
    done
}

verdicts() {
    awk -v base="$base_rss" '$1 > 0 {
        ratio = 100 * $11 / $6; per = ($4 - base) * 1024 / $1
        printf "%d %.0f %s %.0f %s\n", $1, ratio, (ratio >= 80 ? "met" : "missed"), per, (per <= 300 ? "met" : "missed")
    }' "$WORK/results" | while read -r n ratio ratio_ok per per_ok; do
        echo "- $(fmt_n "$n") keys: verified/health throughput **$ratio%** (target ≥ 80%: $ratio_ok); memory per cached key **$per B** from RSS (target ≤ 300 B: $per_ok)."
    done
}

pg_version=$(psql "$PG_SERVER/postgres" -tAc 'SHOW server_version' 2>/dev/null || echo unknown)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$([[ -n "$(git status --porcelain 2>/dev/null)" ]] && echo " (uncommitted changes in the tree)" || true)

section="$WORK/section.md"
{
    echo "## Verification"
    echo
    echo "Generated by \`./scripts/bench-verification.sh\` (rerun it to refresh this section; it does not"
    echo "touch the rest of the file)."
    echo
    echo "- Run: $(date -u '+%Y-%m-%d %H:%M UTC'), commit \`$commit\`$dirty."
    echo "- Machine: $(nproc) cores ($cpu), ${mem_gib} GiB RAM, $(uname -sr), PostgreSQL $pg_version;"
    echo "  Postgres, NATS, the node and wrk all on this one machine. Load average before/after:"
    echo "  $LOAD_AVG_BEFORE / $LOAD_AVG_AFTER."
    echo "- Load: \`wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency\` from a second process over loopback, after a 3 s"
    echo "  warm-up; $ROUNDS rounds of the three routes in turn, each route's median round shown (requests/s"
    echo "  and the latencies of that round); one release \`esqase serve\` per size, default settings"
    echo "  (20 Postgres connections, \`RUST_LOG=info\`)."
    echo
    echo "### Throughput and latency"
    echo
    throughput_table
    echo
    echo "### Start-up and memory"
    echo
    memory_table
    echo
    verdicts
    echo
    echo "### How to read these figures"
    echo
    echo "- **What is measured.** \`/v1/api-keys/current\` with an Active key verifies the key from the"
    echo "  node's memory (parse, checksum, SHA-256, one hash-table lookup, the creator's permissions)"
    echo "  and builds its body from the same memory (the key's name, preview and latest use, its"
    echo "  creator's and firm's names are held there): no Postgres query, no Postgres write. The"
    echo "  revoked-key row is the same route and lookup, refused \`api_key_revoked\` with a problem body."
    echo "- **Seeding.** Each size gets a fresh database: one firm and its owner, one Active and one"
    echo "  revoked key made through the commands layer (real events), then N more rows inserted straight"
    echo "  into the \`api_keys\` read model in \`INSERT … SELECT FROM unnest(…)\` batches of 10k (real"
    echo "  generated secrets' SHA-256 and previews, created by the owner, scopes \`contacts:read\`,"
    echo "  \`matters:read\`, no allowed domains). Those rows have **no events**: a node loads its"
    echo "  verification state from the read models at start-up, so they are all a load test needs (a"
    echo "  \`projections rebuild\` would drop them). Sizes are written \"N + 2\" for the two real keys."
    echo "- **Start-up** is from spawning \`esqase serve\` to the first \`/readyz\` 200 (polled every 20 ms):"
    echo "  connect, migrations (none pending), load of firms, grids, members and every key in one"
    echo "  repeatable-read snapshot, NATS, the relay and the runner catching up."
    echo "- **Memory per cached key** is (VmRSS with N keys − VmRSS with 0 extra keys) / N, both read 1 s"
    echo "  after \`/readyz\` first answered 200, before any load; it includes whatever the allocator kept"
    echo "  from the start-up load (rows are streamed into the state, never collected first; see the"
    echo "  peak RSS column). With few keys the difference is within the allocator's granularity"
    echo "  (mimalloc keeps pages freed after the start-up load, such as row buffers, in its thread"
    echo "  heaps for reuse), so the RSS figure means something at 1M keys, not at 10k."
    echo "  The last column is the node's own count (\`esqase_verification_key_bytes\`):"
    echo "  one 104-byte record per key in one vector, two hash tables of 4-byte slots (by the secret's"
    echo "  hash, by id; hashbrown's bucket count is the next power of two ≥ 8/7 of the entries, so"
    echo "  they are 48% to 95% full), names and previews in one text arena; allowed-domain lists sit"
    echo "  in a side map for the keys that have them (the seeded keys have none)."
    echo "- **Noise.** On this 2-core machine Postgres, NATS, the node and wrk share both cores, and"
    echo "  other engineers' test suites were running during the run (see the load average): absolute"
    echo "  figures vary by tens of percent from run to run; the ratios within one size, measured"
    echo "  back to back, are the more stable figures."
} >"$section"

echo
cat "$section"

if [[ "$OUT" != "-" ]]; then
    mkdir -p "$(dirname "$OUT")"
    [[ -f "$OUT" ]] || printf '# Benchmarks\n\n' >"$OUT"
    # Replace the "## Verification" section (up to the next "## " heading), or append it; the
    # rest of the file is copied as it is.
    awk -v section="$section" '
        function emit() { while ((getline line < section) > 0) print line; close(section); done = 1 }
        /^## / { if (skipping) { skipping = 0; print "" } }
        /^## Verification[[:space:]]*$/ { emit(); skipping = 1; next }
        !skipping { print; last = $0 }
        END { if (!done) { if (last != "") print ""; emit() } }
    ' "$OUT" >"$WORK/out.md"
    cp "$WORK/out.md" "$OUT"
    log "wrote the Verification section of $OUT"
fi
