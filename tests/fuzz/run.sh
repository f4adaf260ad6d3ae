#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in their own build directory, runs each for a bounded
# time from its committed seed corpus (new inputs go to a scratch directory, never into the
# repository), then replays every input kept under regressions/<target>/. Prints the executions
# per target and fails if any target crashes, leaks, trips a sanitizer or breaks an invariant.
#
#   FUZZ_SECONDS   seconds per target (default 20)
#   FUZZ_BUILD     build directory (default build-fuzz at the top of the repository)
#   FUZZ_TARGETS   targets to run (default: all six)
#   FUZZ_JOBS      build parallelism (default 2)
#   FUZZ_NO_BUILD  1: run the targets already built
# A crashing input is left in $FUZZ_BUILD/artifacts/<target>/; copy it to regressions/<target>/
# once the bug is fixed.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECONDS_PER_TARGET=${FUZZ_SECONDS:-20}
BUILD=${FUZZ_BUILD:-$ROOT/build-fuzz}
JOBS=${FUZZ_JOBS:-2}
TARGETS=${FUZZ_TARGETS:-"fuzz_otlp_proto fuzz_otlp_json fuzz_config fuzz_loki fuzz_prw fuzz_todo_request"}
SAN_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

command -v clang >/dev/null || { echo "fuzz: clang is required (Debian: clang libclang-rt-14-dev)" >&2; exit 1; }
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  CC=clang cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS="$SAN_FLAGS" >/dev/null
fi
if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  # shellcheck disable=SC2086
  cmake --build "$BUILD" -j "$JOBS" --target $TARGETS
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
SCRATCH=$(mktemp -d)
trap 'rm -rf "$SCRATCH"' EXIT

failed=()
summary=()
for t in $TARGETS; do
  bin=$BUILD/tests/fuzz/$t
  corpus=$HERE/corpus/$t
  artifacts=$BUILD/artifacts/$t
  mkdir -p "$SCRATCH/$t" "$artifacts"
  args=(-max_total_time="$SECONDS_PER_TARGET" -max_len=16384 -timeout=10 -rss_limit_mb=2048
        -print_final_stats=1 -artifact_prefix="$artifacts/")
  [ -f "$HERE/$t.dict" ] && args+=(-dict="$HERE/$t.dict")
  echo "::: $t: fuzzing for ${SECONDS_PER_TARGET}s from $(find "$corpus" -type f | wc -l) seeds"
  log=$SCRATCH/$t.log
  status=0
  "$bin" "${args[@]}" "$SCRATCH/$t" "$corpus" >"$log" 2>&1 || status=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$({ grep -Eo 'cov: [0-9]+' "$log" || true; } | tail -1 | awk '{print $2}')
  if [ "$status" -ne 0 ]; then
    tail -60 "$log"
    failed+=("$t (fuzzing, exit $status)")
  fi
  replayed=0
  if [ -d "$HERE/regressions/$t" ] && [ -n "$(ls -A "$HERE/regressions/$t")" ]; then
    replayed=$(find "$HERE/regressions/$t" -type f | wc -l)
    if ! "$bin" -runs=1 "$HERE/regressions/$t"/* >"$SCRATCH/$t.replay.log" 2>&1; then
      tail -60 "$SCRATCH/$t.replay.log"
      failed+=("$t (regressions)")
    fi
  fi
  summary+=("$(printf '%-20s %10s executions  %6s edges  %3s regressions replayed' "$t" \
    "${execs:-?}" "${cov:-?}" "$replayed")")
done

echo "::: fuzz summary (${SECONDS_PER_TARGET}s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "::: fuzz FAILED: ${failed[*]} (inputs in $BUILD/artifacts/)" >&2
  exit 1
fi
echo "::: fuzz passed"
