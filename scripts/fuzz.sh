#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ one after another, each for FUZZ_SECONDS (default 600),
# as a single in-process libFuzzer (no -jobs/-workers/-fork: one fuzzing process at a time).
# Each run starts from the committed corpus (fuzz/corpus/<target>, where new inputs are added)
# and the hand-written seeds (fuzz/seeds/<target>), with the target's dictionary.
# Prints, per target: runs executed, corpus size, crashes; exits 1 if any target crashed.
#
# Usage: scripts/fuzz.sh [target ...]        (default: all three targets)
# Knobs: FUZZ_SECONDS=600   seconds per target
#        FUZZ_CMIN=1        minimise each corpus after its run (cargo fuzz cmin, edges only) and
#                           drop inputs holding key/token-shaped strings (secret scanners)
#        FUZZ_ARGS="..."    extra libFuzzer flags, e.g. FUZZ_ARGS="-seed=1"
# Needs: a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
# Logs: fuzz/target/fuzz-logs/<target>.log; crash inputs: fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${FUZZ_SECONDS:-600}"
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  targets=(key_parser domain_list_parser origin_matcher)
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "cargo-fuzz or the nightly toolchain is missing: cargo install cargo-fuzz --locked" >&2
  exit 2
fi

mkdir -p target/fuzz-logs
echo "== building fuzz targets"
cargo +nightly fuzz build

# Inputs libFuzzer saves when a run fails (panic, timeout, out-of-memory, leak).
count_crashes() {
  find "artifacts/$1" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) 2>/dev/null |
    wc -l
}

failed=0
summary=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "seeds/$target" "artifacts/$target"
  log="target/fuzz-logs/$target.log"
  before=$(count_crashes "$target")
  dict=()
  if [ -f "dicts/$target.dict" ]; then
    dict=("-dict=dicts/$target.dict")
  fi
  echo "== fuzzing $target for ${seconds}s (log: fuzz/$log)"
  status=0
  # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
  cargo +nightly fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    "${dict[@]}" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    ${FUZZ_ARGS:-} >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  crashes=$(($(count_crashes "$target") - before))
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
    crashes=1 # failed without saving an input (e.g. a build error): count it anyway
  fi
  if [ "${FUZZ_CMIN:-0}" = 1 ] && [ "$crashes" -eq 0 ]; then
    echo "== minimising corpus/$target"
    # Edge coverage only (no hit counters), which keeps the committed corpus to a few hundred files.
    cargo +nightly fuzz cmin "$target" "corpus/$target" -- -use_counters=0 >>"$log" 2>&1
    # Secret scanners flag key- and token-shaped strings, so such inputs are not kept (the key
    # target builds a well-formed key from every input anyway).
    { LC_ALL=C grep -rlaE '(esq[si]?|ESQ[SI]?)_[0-9A-Za-z]{12}' "corpus/$target" || true; } | xargs -r rm -f
  fi
  corpus=$(find "corpus/$target" -type f | wc -l)
  line=$(printf '%-20s seconds=%-6s runs=%-10s corpus=%-6s crashes=%s' "$target" "$seconds" "${runs:-?}" "$corpus" "$crashes")
  summary+=("$line")
  echo "$line"
  if [ "$crashes" -ne 0 ]; then
    failed=1
    echo "-- $target failed (exit $status); end of its log:" >&2
    tail -n 40 "$log" >&2
  fi
done

echo "== summary ($(date -u +%Y-%m-%dT%H:%MZ))"
printf '%s\n' "${summary[@]}"
exit "$failed"
