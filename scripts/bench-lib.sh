# Helpers shared by scripts/bench.sh and scripts/bench-verification.sh (sourced, not run).
# wrk_load needs WORK (a scratch directory), THREADS and CONNECTIONS set by the caller.

now_ns() { date +%s%N; }

# wrk's latency ("812.00us", "1.23ms", "2.01s") in milliseconds.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
        printf "%.2f", n }'
}

# Runs wrk for `duration` and prints "requests_per_s p50_ms p99_ms non2xx socket_errors"; its
# full output goes to $WORK/wrk-<name>.txt.
wrk_load() { # name duration url [header]
    local out="$WORK/wrk-$1.txt"
    local args=(-t"$THREADS" -c"$CONNECTIONS" -d"$2" --latency)
    [[ $# -ge 4 ]] && args+=(-H "$4")
    wrk "${args[@]}" "$3" >"$out"
    local rps p50 p99 non2xx errors
    rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$out")")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ { print $NF }' "$out")
    errors=$(awk '/Socket errors:/ { gsub(",", ""); print $4 + $6 + $8 + $10 }' "$out")
    echo "$rps $p50 $p99 ${non2xx:-0} ${errors:-0}"
}

# Of lines "requests_per_s p50 p99 non2xx errors", the one with the median requests/s.
median_round() { sort -n -k1,1 | awk '{ round[NR] = $0 } END { print round[int((NR + 1) / 2)] }'; }

# The HTTP status of a GET.
status_of() { # url [header]
    local args=(-s -o /dev/null -w '%{http_code}')
    [[ $# -ge 2 ]] && args+=(-H "$2")
    curl "${args[@]}" "$1"
}
