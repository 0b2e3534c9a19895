# Shared by the fault drills (sourced, not run): logging, building, starting and stopping
# `esqase serve` nodes, a private nats-server and a private Postgres, and cleaning up on exit.
# Every process a drill starts is recorded here by its pid and ended by that pid only.
# shellcheck shell=bash

DRILL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$DRILL_DIR/../.." && pwd)"
ESQASE="${ESQASE_BIN:-$ROOT/target/release/esqase}" # ESQASE_BIN: try another build
PY="${PYTHON:-python3}"
DRILL_PY="$DRILL_DIR/drill.py"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
WORK="$(mktemp -d -t "esqase-drill-${DRILL_NAME}.XXXXXX")"
chmod 755 "$WORK"
UNIQUE="$(date +%s)_$$_${RANDOM}"
declare -A NODE_PID=() NODE_PORT=()
PIDS_TO_END=()     # other background processes (load generators)
CLEANUP_STEPS=()   # commands run at exit, last registered first
PRIVATE_NATS_PID=""
PRIVATE_PG_DATA=""

log() { printf '[%s %s] %s\n' "$DRILL_NAME" "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

end_pid() { # pid: TERM, then KILL after 10 s
    local pid="$1"
    [[ -n "$pid" ]] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

on_exit() {
    local status=$?
    trap - EXIT
    local pid name i
    for pid in "${PIDS_TO_END[@]+"${PIDS_TO_END[@]}"}"; do end_pid "$pid"; done
    for name in "${!NODE_PID[@]}"; do end_pid "${NODE_PID[$name]}"; done
    for ((i = ${#CLEANUP_STEPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUP_STEPS[$i]}" || log "cleanup step failed: ${CLEANUP_STEPS[$i]}"; done
    if [[ "${DRILL_KEEP:-0}" == 1 || $status -ne 0 ]]; then
        log "logs and results kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

on_cleanup() { CLEANUP_STEPS+=("$*"); }

build() {
    if [[ "${DRILL_SKIP_BUILD:-0}" != 1 && -z "${ESQASE_BIN:-}" ]]; then
        log "building release binaries"
        (cd "$ROOT" && cargo build --release --locked -p api -p bench --bins) >&2
    fi
    [[ -x "$ESQASE" ]] || die "$ESQASE is missing"
}

free_port() { "$PY" "$DRILL_PY" free-port; }

# start_node NAME: starts `esqase serve` on NODE_PORT[NAME] (picked once, kept across restarts)
# with DB_URL, NATS_URL and PREFIX; its log goes to $WORK/NAME.log (appended across restarts).
start_node() {
    local name="$1"
    [[ -n "${NODE_PORT[$name]:-}" ]] || NODE_PORT[$name]="$(free_port)"
    echo "--- start $(date -u +%H:%M:%S.%N)" >>"$WORK/$name.log"
    DATABASE_URL="$DB_URL" NATS_URL="$NATS_URL" ESQASE_NATS_PREFIX="$PREFIX" \
        ESQASE_LISTEN="127.0.0.1:${NODE_PORT[$name]}" ESQASE_USAGE_FLUSH_MS="${ESQASE_USAGE_FLUSH_MS:-1000}" \
        RUST_LOG="${RUST_LOG:-info,async_nats=warn}" "$ESQASE" serve >>"$WORK/$name.log" 2>&1 &
    NODE_PID[$name]=$!
}

base_of() { echo "http://127.0.0.1:${NODE_PORT[$1]}"; }

# wait_ready TIMEOUT NAME...: every named node answers /readyz 200 (prints the seconds it took).
wait_ready() {
    local timeout="$1"; shift
    local bases=() name
    for name in "$@"; do
        kill -0 "${NODE_PID[$name]}" 2>/dev/null || { tail -20 "$WORK/$name.log" >&2; die "node $name exited"; }
        bases+=("$(base_of "$name")")
    done
    local IFS=,
    "$PY" "$DRILL_PY" wait-ready --bases "${bases[*]}" --timeout "$timeout" \
        || { for name in "$@"; do tail -5 "$WORK/$name.log" >&2; done; die "nodes $* not ready within $timeout s"; }
}

stop_node() { end_pid "${NODE_PID[$1]}"; unset 'NODE_PID[$1]'; }

# --- Postgres ---------------------------------------------------------------------------------

# A database of this drill's own on the shared server, dropped at exit.
use_shared_postgres() {
    local server="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
    PG_SERVER="${server%/*}"
    DB_URL="$PG_SERVER/esqase_drill_$UNIQUE"
    on_cleanup "psql '$PG_SERVER/postgres' -qtAX -c 'DROP DATABASE IF EXISTS esqase_drill_$UNIQUE WITH (FORCE)' >/dev/null"
}

# A Postgres cluster of this drill's own (initdb in $WORK, a free port, trust auth), removed at exit.
# initdb refuses root: as root it runs as the `postgres` user.
PG_AS=()
start_private_postgres() {
    [[ -x "$PG_BIN/initdb" ]] || die "no initdb under /usr/lib/postgresql/*/bin"
    if [[ $(id -u) -eq 0 ]]; then PG_AS=(runuser -u postgres --); chown postgres "$WORK"; fi
    PRIVATE_PG_DATA="$WORK/pgdata"
    PRIVATE_PG_PORT="$(free_port)"
    "${PG_AS[@]}" "$PG_BIN/initdb" -D "$PRIVATE_PG_DATA" -A trust -U postgres --no-sync >"$WORK/initdb.log" 2>&1 \
        || { cat "$WORK/initdb.log" >&2; die "initdb failed"; }
    on_cleanup "stop_private_postgres immediate"
    on_cleanup "thaw_private_postgres"
    pg_start
    PG_SERVER="postgres://postgres@127.0.0.1:$PRIVATE_PG_PORT"
    DB_URL="$PG_SERVER/esqase_drill_$UNIQUE"
}

pg_start() {
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PRIVATE_PG_DATA" -l "$WORK/postgres.log" -w -t 60 \
        -o "-p $PRIVATE_PG_PORT -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null \
        || { tail -20 "$WORK/postgres.log" >&2; die "the private Postgres did not start"; }
}

# stop_private_postgres MODE (fast|immediate): stops only this drill's cluster.
stop_private_postgres() {
    [[ -n "$PRIVATE_PG_DATA" && -f "$PRIVATE_PG_DATA/postmaster.pid" ]] || return 0
    "${PG_AS[@]}" "$PG_BIN/pg_ctl" -D "$PRIVATE_PG_DATA" -m "${1:-fast}" -w -t 60 stop >/dev/null
}

# The private cluster's processes (the postmaster and its children), by pid.
private_postgres_pids() {
    local postmaster
    postmaster="$(head -1 "$PRIVATE_PG_DATA/postmaster.pid")"
    echo "$postmaster" $(ps -o pid= --ppid "$postmaster")
}

# freeze_private_postgres / thaw_private_postgres: SIGSTOP / SIGCONT every process of this
# drill's cluster: a server that still holds its sockets open but answers nothing (a hung host
# or a network partition), unlike a stop, which refuses connections at once.
freeze_private_postgres() { local pid; for pid in $(private_postgres_pids); do kill -STOP "$pid"; done; }
thaw_private_postgres() { local pid; for pid in $(private_postgres_pids); do kill -CONT "$pid" 2>/dev/null || true; done; }

# --- NATS -------------------------------------------------------------------------------------

use_shared_nats() {
    NATS_URL="${NATS_URL:-nats://127.0.0.1:4222}"
    PREFIX="drill_$UNIQUE"
    on_cleanup "'$PY' '$DRILL_PY' nats-cleanup --nats '$NATS_URL' --prefix '$PREFIX'"
}

# A nats-server of this drill's own (JetStream, store in $WORK), on a port kept across restarts.
start_private_nats() {
    command -v nats-server >/dev/null || die "nats-server is not installed"
    [[ -n "${PRIVATE_NATS_PORT:-}" ]] || PRIVATE_NATS_PORT="$(free_port)"
    nats-server -js -a 127.0.0.1 -p "$PRIVATE_NATS_PORT" -sd "$WORK/nats" >>"$WORK/nats.log" 2>&1 &
    PRIVATE_NATS_PID=$!
    PIDS_TO_END+=("$PRIVATE_NATS_PID")
    NATS_URL="nats://127.0.0.1:$PRIVATE_NATS_PORT"
    PREFIX="drill_$UNIQUE"
    local deadline=$((SECONDS + 10))
    until (exec 3<>"/dev/tcp/127.0.0.1/$PRIVATE_NATS_PORT") 2>/dev/null; do
        ((SECONDS < deadline)) || die "the private nats-server did not listen"
        sleep 0.05
    done
}

kill_private_nats() { # signal
    kill "-${1:-KILL}" "$PRIVATE_NATS_PID" 2>/dev/null || true
    wait "$PRIVATE_NATS_PID" 2>/dev/null || true
}

machine_line() {
    echo "$(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo) GiB, load $(cut -d' ' -f1-3 /proc/loadavg)"
}

# relay_leader NAME: "true" when the node leads the relay (from /readyz).
relay_leader() { curl -s "$(base_of "$1")/readyz" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["relay"]["leader"])' 2>/dev/null || echo unknown; }

# Starts nodes A and B, waits until both are ready, and sets $A and $B to their base URLs.
start_two_nodes() {
    start_node A
    wait_ready 120 A >/dev/null
    start_node B
    wait_ready 120 A B >/dev/null
    A="$(base_of A)"
    B="$(base_of B)"
    log "node A $A (pid ${NODE_PID[A]}), node B $B (pid ${NODE_PID[B]})"
}
