#!/usr/bin/env bash
# The collector benchmark (issue "Performance"): items per collector CPU-second, peak RSS and the
# client's export latency, for each pipeline in the scenario table below, side by side with the
# reference OpenTelemetry Collector when .tools/otelcol-ref exists, and with the do-nothing
# transport servers as the floor. Not a test: it asserts no timing, but it fails (exit 1) when what
# the collector accepted did not all arrive at the sink.
#
# usage: tests/bench/run.sh [SCENARIO...]          (default: every scenario; `list` prints them)
# environment (all optional):
#   REPS=3            repetitions of each run; the table shows medians
#   RATE=50000        offered items per second          DURATION=10s   per run
#   SIZES="512 100"   items per request                 WORKERS=8      loadgen workers
#   ATTRS=10          attributes per item               EXPORT_COMPRESSION=none (or gzip)
#   PROCESSORS="memory_limiter, batch"   the pipeline's processors (both collectors)
#   BUILD_DIR=build   where collector and tests/bench/* are (COLLECTOR_BIN, BENCH_BIN_DIR override)
#   REF_BIN=.tools/otelcol-ref   REFERENCE=0 to skip it    OUT_DIR=$BUILD_DIR/bench-results
#   IDLE_WAIT=5       seconds before the idle RSS is read
#   RSS_RATE=100000   offered rate of one extra run per scenario with a target (512 items/request,
#                     ours and the reference) for the "peak RSS at 100k items/s" column; 0 skips it
#
# What is measured: the collector's utime+stime from /proc/PID/stat (so the load generator's and
# the sink's CPU do not count) from just before the load starts until the sink has received
# everything the collector accepted; VmHWM from /proc/PID/status; loadgen's request latency. The
# sink decodes every request, and its count for the scenario must equal loadgen's accepted items.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

REPS=${REPS:-3}
RATE=${RATE:-50000}
DURATION=${DURATION:-10s}
SIZES=${SIZES:-"512 100"}
WORKERS=${WORKERS:-8}
ATTRS=${ATTRS:-10}
EXPORT_COMPRESSION=${EXPORT_COMPRESSION:-none}
PROCESSORS=${PROCESSORS:-"memory_limiter, batch"}
IDLE_WAIT=${IDLE_WAIT:-5}
RSS_RATE=${RSS_RATE:-100000}
DRAIN_TIMEOUT=${DRAIN_TIMEOUT:-60}
BUILD_DIR=${BUILD_DIR:-$root/build}
case $BUILD_DIR in /*) ;; *) BUILD_DIR=$root/$BUILD_DIR ;; esac
COLLECTOR_BIN=${COLLECTOR_BIN:-$BUILD_DIR/collector}
BENCH_BIN_DIR=${BENCH_BIN_DIR:-$BUILD_DIR/tests/bench}
REF_BIN=${REF_BIN:-$root/.tools/otelcol-ref}
REFERENCE=${REFERENCE:-1}
OUT_DIR=${OUT_DIR:-$BUILD_DIR/bench-results}
CLK_TCK=$(getconf CLK_TCK)

LOADGEN=$BENCH_BIN_DIR/loadgen
SINK=$BENCH_BIN_DIR/sink
NOOP_GRPC=$BENCH_BIN_DIR/noop_grpc_server
NOOP_HTTP=$BENCH_BIN_DIR/noop_http_server

# --- the scenario table ---
# name | loadgen protocol | signal | exporter (canonical type; "-" = none) | sink count to check |
# target items per collector CPU-second at 512 items/request ("-" = none; "floor" = the do-nothing
# gRPC server's figure / 1.3)
SCENARIOS_TABLE="
grpc-traces-otlp     | grpc      | traces  | otlp_grpc               | spans        | 1500000
http-traces-otlphttp | http      | traces  | otlp_http               | spans        | 1500000
grpc-logs-loki       | grpc      | logs    | loki                    | loki_entries | 1000000
grpc-metrics-prw     | grpc      | metrics | prometheus_remote_write | prw_points   | 800000
httpjson-traces-otlp | http-json | traces  | otlp_grpc               | spans        | 400000
grpc-logs-otlp       | grpc      | logs    | otlp_grpc               | log_records  | -
grpc-traces-nop      | grpc      | traces  | nop                     | -            | floor
floor-grpc           | grpc      | traces  | -                       | -            | -
floor-http           | http      | traces  | -                       | -            | -
idle                 | -         | -       | -                       | -            | -
"

die() {
  echo "run.sh: $*" >&2
  exit 2
}

scenario_names() { awk -F'|' 'NF > 1 { gsub(/ /, "", $1); print $1 }' <<<"$SCENARIOS_TABLE"; }
# Prints the fields of one scenario, space-separated.
scenario_row() {
  awk -F'|' -v n="$1" 'NF > 1 { r = ""; for (i = 1; i <= NF; i++) { gsub(/ /, "", $i); r = r $i " " }
    split(r, f, " "); if (f[1] == n) print r }' <<<"$SCENARIOS_TABLE"
}

if [ "${1:-}" = list ]; then
  scenario_names
  exit 0
fi
SELECTED=("$@")
[ ${#SELECTED[@]} -eq 0 ] && mapfile -t SELECTED < <(scenario_names)
for s in "${SELECTED[@]}"; do
  [ -n "$(scenario_row "$s")" ] || die "unknown scenario '$s' (run.sh list)"
done

for b in "$LOADGEN" "$SINK" "$NOOP_GRPC" "$NOOP_HTTP"; do
  [ -x "$b" ] || die "$b not found: cmake --build $BUILD_DIR --target bench_tools"
done
[ -x "$COLLECTOR_BIN" ] || die "$COLLECTOR_BIN not found: build the collector (or set COLLECTOR_BIN)"
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
command -v ss >/dev/null || die "ss is needed (iproute2)"
command -v curl >/dev/null || die "curl is needed"
HAVE_REF=0
if [ "$REFERENCE" = 1 ] && [ -x "$REF_BIN" ]; then HAVE_REF=1; fi

mkdir -p "$OUT_DIR"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/otc-bench.XXXXXX")
RESULTS=$OUT_DIR/runs.jsonl
: >"$RESULTS"

# --- process bookkeeping: everything started here is stopped on any exit ---
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A copy, so that a rebuild during the run cannot change what is measured half-way.
cp "$COLLECTOR_BIN" "$WORK/collector"
COLLECTOR_SRC=$COLLECTOR_BIN
COLLECTOR_BIN=$WORK/collector

forget_pid() {
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]+"${keep[@]}"}")
}

# Stops one process: TERM, then KILL after $2 seconds (default 15).
stop_proc() {
  local pid=$1 limit=$((${2:-15} * 10))
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 "$limit"); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "run.sh: pid $pid did not stop within ${2:-15} s, killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

# A loopback TCP port nobody listens on and that this run has not handed out (gRPC servers bind
# with SO_REUSEPORT, so a collision would not even fail: it has to be avoided).
USED_PORTS=" "
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 30000))
    case $USED_PORTS in *" $p "*) continue ;; esac
    if [ -z "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]; then
      USED_PORTS="$USED_PORTS$p "
      echo "$p"
      return
    fi
  done
}

# Waits until 127.0.0.1:$1 accepts connections while process $2 lives (at most $3 s, default 20).
wait_port() {
  local port=$1 pid=$2 limit=$((${3:-20} * 10))
  for _ in $(seq 1 "$limit"); do
    kill -0 "$pid" 2>/dev/null || return 1
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

# utime + stime of a process, in clock ticks.
cpu_ticks() {
  local rest
  rest=$(sed 's/^.*) //' "/proc/$1/stat")
  awk '{ print $12 + $13 }' <<<"$rest"
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# The type name a collector binary knows for a canonical exporter type ("" if it has none).
declare -A EXPORTER_NAMES=()
exporter_name() {
  local bin=$1 canon=$2 key="$1|$2" list alias n
  if [ -z "${EXPORTER_NAMES[$key]+x}" ]; then
    list=$("$bin" components 2>/dev/null || true)
    case $canon in
      otlp_grpc) alias=otlp ;; otlp_http) alias=otlphttp ;;
      prometheus_remote_write) alias=prometheusremotewrite ;; *) alias=$canon ;;
    esac
    EXPORTER_NAMES[$key]=""
    for n in "$canon" "$alias"; do
      # Ours lists "  - name", the reference "  - name: name" in its exporters section.
      if awk -v n="$n" '/^exporters:/ { on = 1; next } /^[a-z]/ { on = 0 }
          on && ($2 == n || $3 == n) { found = 1 } END { exit !found }' <<<"$list"; then
        EXPORTER_NAMES[$key]=$n
        break
      fi
    done
  fi
  echo "${EXPORTER_NAMES[$key]}"
}

# --- configs ---
# $1 impl (ours|ref), $2 signal, $3 exporter type as the binary names it, $4 canonical type,
# $5 receiver gRPC port, $6 receiver HTTP port, $7 self-metrics port, $8 sink gRPC, $9 sink HTTP.
write_config() {
  local impl=$1 signal=$2 ename=$3 canon=$4 rgrpc=$5 rhttp=$6 mport=$7 sgrpc=$8 shttp=$9
  cat <<EOF
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$rgrpc
      http:
        endpoint: 127.0.0.1:$rhttp
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 512
    spike_limit_mib: 128
  batch:
exporters:
EOF
  case $canon in
    otlp_grpc)
      printf '  %s:\n    endpoint: 127.0.0.1:%s\n    tls:\n      insecure: true\n    compression: %s\n' \
        "$ename" "$sgrpc" "$EXPORT_COMPRESSION" ;;
    otlp_http)
      printf '  %s:\n    endpoint: http://127.0.0.1:%s\n    compression: %s\n' \
        "$ename" "$shttp" "$EXPORT_COMPRESSION" ;;
    loki)
      printf '  %s:\n    endpoint: http://127.0.0.1:%s/loki/api/v1/push\n' "$ename" "$shttp" ;;
    prometheus_remote_write)
      printf '  %s:\n    endpoint: http://127.0.0.1:%s/api/v1/write\n' "$ename" "$shttp" ;;
    debug)
      printf '  %s:\n    verbosity: basic\n' "$ename" ;;
    *)
      printf '  %s:\n' "$ename" ;;
  esac
  echo "service:"
  echo "  telemetry:"
  echo "    metrics:"
  if [ "$impl" = ref ]; then
    # v0.162 refuses `address`; its form is a pull reader.
    printf '      readers:\n        - pull:\n            exporter:\n              prometheus:\n'
    printf '                host: 127.0.0.1\n                port: %s\n' "$mport"
  else
    printf '      address: 127.0.0.1:%s\n' "$mport"
  fi
  printf '  pipelines:\n    %s:\n      receivers: [otlp]\n      processors: [%s]\n' "$signal" "$PROCESSORS"
  printf '      exporters: [%s]\n' "$ename"
}

sink_stat() { curl -sf --max-time 2 "http://127.0.0.1:$1/stats" | jq -r ".$2"; }

# Sum of one self-metric family on a Prometheus text endpoint ("" when absent).
self_metric() {
  curl -sf --max-time 2 "http://127.0.0.1:$1/metrics" 2>/dev/null |
    awk -v m="$2" '$1 ~ "^" m "(_total)?({|$)" { s += $NF; f = 1 } END { if (f) printf "%.0f\n", s }'
}

FAILURES=()
fail() {
  echo "run.sh: FAIL: $*" >&2
  FAILURES+=("$*")
}

# Runs one measurement and appends one JSON line to $RESULTS.
# $1 scenario, $2 impl (ours|ref|floor), $3 items per request, $4 repetition.
run_one() {
  local scen=$1 impl=$2 size=$3 rep=$4
  local row proto signal canon check
  row=$(scenario_row "$scen")
  read -r _ proto signal canon check _ <<<"$row"
  local tag="$scen.$impl.$size.$rep" bin ename="" pid sink_pid="" rgrpc rhttp mport sgrpc shttp
  local log=$WORK/$tag.log cfg=$WORK/$tag.yaml endpoint
  rgrpc=$(free_port)
  rhttp=$(free_port)
  mport=$(free_port)
  sgrpc=$(free_port)
  shttp=$(free_port)

  if [ "$impl" = floor ]; then
    if [ "$proto" = grpc ]; then
      "$NOOP_GRPC" "127.0.0.1:$rgrpc" 2>"$log" &
      endpoint=127.0.0.1:$rgrpc
    else
      "$NOOP_HTTP" "$rhttp" 2>"$log" &
      endpoint=127.0.0.1:$rhttp
    fi
    pid=$!
    PIDS+=("$pid")
    wait_port "${endpoint##*:}" "$pid" || { fail "$tag: the do-nothing server did not start"; return; }
  else
    bin=$COLLECTOR_BIN
    [ "$impl" = ref ] && bin=$REF_BIN
    ename=$(exporter_name "$bin" "$canon")
    if [ "$check" != - ]; then
      # On a shared machine another process may take a port between the check and the bind: the
      # sink gets two more tries on fresh ports.
      local try
      for try in 1 2 3; do
        "$SINK" --grpc "127.0.0.1:$sgrpc" --http "$shttp" 2>"$WORK/$tag.sink.log" &
        sink_pid=$!
        PIDS+=("$sink_pid")
        if wait_port "$shttp" "$sink_pid" && wait_port "$sgrpc" "$sink_pid"; then break; fi
        kill -0 "$sink_pid" 2>/dev/null && stop_proc "$sink_pid" 5
        forget_pid "$sink_pid"
        sink_pid=""
        sgrpc=$(free_port)
        shttp=$(free_port)
      done
      if [ -z "$sink_pid" ]; then
        cp "$WORK/$tag.sink.log" "$OUT_DIR/" 2>/dev/null || true
        fail "$tag: the sink did not start (log: $OUT_DIR/$tag.sink.log)"
        return
      fi
    fi
    write_config "$impl" "$signal" "$ename" "$canon" "$rgrpc" "$rhttp" "$mport" "$sgrpc" "$shttp" >"$cfg"
    "$bin" --config "$cfg" >"$log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    if ! wait_port "$rgrpc" "$pid" 30 || ! wait_port "$rhttp" "$pid" 10; then
      fail "$tag: the collector did not start (log: $log)"
      tail -n 20 "$log" >&2 || true
      cp "$log" "$cfg" "$OUT_DIR/" 2>/dev/null || true
      [ -n "$sink_pid" ] && stop_proc "$sink_pid" 5
      kill -0 "$pid" 2>/dev/null && stop_proc "$pid" 5
      forget_pid "$pid"
      return
    fi
    if [ "$proto" = grpc ]; then endpoint=127.0.0.1:$rgrpc; else endpoint=127.0.0.1:$rhttp; fi
  fi
  sleep 1 # let start-up work (and the first self-metrics scrape) settle out of the window

  local cpu0 cpu1 out accepted got="" expect drained=0 t0 t1
  cpu0=$(cpu_ticks "$pid")
  t0=$(date +%s.%N)
  out=$("$LOADGEN" --protocol "$proto" --signal "$signal" --endpoint "$endpoint" \
    --items-per-request "$size" --rate "$RUN_RATE" --duration "$DURATION" --workers "$WORKERS" \
    --attributes "$ATTRS" 2>>"$WORK/$tag.loadgen.log") || { fail "$tag: loadgen failed"; }
  accepted=$(jq -r '.items_accepted // 0' <<<"$out")
  accepted=${accepted:-0}
  # Wait until everything accepted has been delivered (the batch timeout, the queue, the export):
  # counted by the sink, or without a sink (nop) by the collector's own exporter counter.
  local sent_metric
  sent_metric=otelcol_exporter_sent_$(case $signal in traces) echo spans ;;
    metrics) echo metric_points ;; *) echo log_records ;; esac)
  if [ "$impl" != floor ]; then
    for _ in $(seq 1 $((DRAIN_TIMEOUT * 10))); do
      if [ -n "$sink_pid" ]; then
        got=$(sink_stat "$shttp" "$check" || echo "")
      else
        got=$(self_metric "$mport" "$sent_metric" || echo "")
      fi
      if [ -n "$got" ] && [ "$got" -ge "$accepted" ]; then
        drained=1
        break
      fi
      sleep 0.1
    done
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    fail "$tag: the process under test exited during the run (log: $OUT_DIR/$tag.log)"
    cp "$log" "$OUT_DIR/$tag.log" 2>/dev/null || true
    [ -f "$cfg" ] && cp "$cfg" "$OUT_DIR/$tag.yaml"
    [ -n "$sink_pid" ] && stop_proc "$sink_pid" 5
    stop_proc "$pid" 1
    return
  fi
  cpu1=$(cpu_ticks "$pid")
  t1=$(date +%s.%N)
  local hwm rss status="ok" note=""
  hwm=$(status_kb "$pid" VmHWM)
  rss=$(status_kb "$pid" VmRSS)
  if [ -n "$sink_pid" ]; then
    sleep 0.3 # anything arriving now would be a duplicate
    got=$(sink_stat "$shttp" "$check" || echo "")
    if [ "$drained" != 1 ] || [ "$got" != "$accepted" ]; then
      status="MISMATCH"
      fail "$tag: the collector accepted $accepted items but the sink decoded ${got:-nothing} ($check)"
    fi
    note="sink $check=$got"
  elif [ "$impl" != floor ]; then
    # No sink (nop): the collector's own count of what its exporter consumed is the check.
    expect=$(self_metric "$mport" "$sent_metric" || echo "")
    if [ "$drained" != 1 ] || [ "$expect" != "$accepted" ]; then
      status="MISMATCH"
      fail "$tag: loadgen saw $accepted items accepted, the exporter counted ${expect:-nothing} sent ($sent_metric)"
    fi
    note="$sent_metric=${expect:-unread}"
  fi
  if [ "$accepted" = 0 ]; then
    status="NOTHING"
    fail "$tag: no item was accepted ($(jq -r .last_error <<<"$out"))"
  fi
  [ -n "$sink_pid" ] && stop_proc "$sink_pid" 5
  stop_proc "$pid" 20
  if [ "$status" != ok ]; then
    cp "$log" "$OUT_DIR/$tag.log" 2>/dev/null || true
    [ -f "$cfg" ] && cp "$cfg" "$OUT_DIR/$tag.yaml"
  fi
  jq -c --arg scen "$scen" --arg impl "$impl" --argjson size "$size" --argjson rep "$rep" \
    --argjson rate "$RUN_RATE" \
    --argjson cpu "$(awk -v a="$cpu0" -v b="$cpu1" -v t="$CLK_TCK" 'BEGIN { print (b - a) / t }')" \
    --argjson wall "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" \
    --argjson hwm "${hwm:-0}" --argjson rss "${rss:-0}" --arg status "$status" --arg note "$note" \
    --arg exporter "${ename:--}" \
    '{scenario: $scen, impl: $impl, size: $size, rep: $rep, rate: $rate, status: $status,
      exporter: $exporter,
      cpu_s: $cpu, window_s: $wall, peak_rss_kb: $hwm, rss_kb: $rss, note: $note,
      items_sent: .items_sent, items_accepted: .items_accepted,
      items_per_s: .items_per_s, p50_us: .latency_us.p50, p99_us: .latency_us.p99,
      refused: .requests_refused, failed: .requests_failed,
      items_per_cpu_s: (if $cpu > 0 then .items_accepted / $cpu else null end)}' \
    <<<"$out" >>"$RESULTS"
  tail -n 1 "$RESULTS" | jq -r '"  \(.scenario) \(.impl) \(.size)/req @\(.rate)/s #\(.rep): \(.items_per_s | floor) items/s, cpu \(.cpu_s) s, \(if .items_per_cpu_s then (.items_per_cpu_s | floor) else "-" end) items/CPU-s, peak RSS \(.peak_rss_kb / 1024 | . * 10 | floor / 10) MiB, p50 \(.p50_us) us, p99 \(.p99_us) us [\(.status)] \(.note)"'
}

# Idle RSS with the default config (ours) or its equivalent (reference).
run_idle() {
  local impl=$1 rep=$2 bin pid log=$WORK/idle.$1.$2.log g h m hc cfg=$WORK/idle.$1.yaml
  g=$(free_port)
  h=$(free_port)
  m=$(free_port)
  hc=$(free_port)
  if [ "$impl" = ours ]; then
    bin=$COLLECTOR_BIN
    OTC_GRPC_ENDPOINT=127.0.0.1:$g OTC_HTTP_ENDPOINT=127.0.0.1:$h OTC_METRICS_ENDPOINT=127.0.0.1:$m \
      OTC_HEALTH_ENDPOINT=127.0.0.1:$hc "$bin" >"$log" 2>&1 &
  else
    bin=$REF_BIN
    {
      write_config ref traces debug debug "$g" "$h" "$m" 0 0 | sed '/^service:/,$d'
      printf 'extensions:\n  health_check:\n    endpoint: 127.0.0.1:%s\n' "$hc"
      printf 'service:\n  extensions: [health_check]\n  telemetry:\n    metrics:\n      readers:\n'
      printf '        - pull:\n            exporter:\n              prometheus:\n'
      printf '                host: 127.0.0.1\n                port: %s\n  pipelines:\n' "$m"
      for s in traces metrics logs; do
        printf '    %s:\n      receivers: [otlp]\n      processors: [%s]\n      exporters: [debug]\n' \
          "$s" "$PROCESSORS"
      done
    } >"$cfg"
    "$bin" --config "$cfg" >"$log" 2>&1 &
  fi
  pid=$!
  PIDS+=("$pid")
  if ! wait_port "$g" "$pid" 30; then
    fail "idle.$impl: the collector did not start (log: $log)"
    tail -n 20 "$log" >&2 || true
    stop_proc "$pid" 5
    return
  fi
  sleep "$IDLE_WAIT"
  local rss hwm
  rss=$(status_kb "$pid" VmRSS)
  hwm=$(status_kb "$pid" VmHWM)
  stop_proc "$pid" 10
  jq -nc --arg impl "$impl" --argjson rep "$rep" --argjson rss "$rss" --argjson hwm "$hwm" \
    '{scenario: "idle", impl: $impl, size: 0, rep: $rep, status: "ok", rss_kb: $rss,
      peak_rss_kb: $hwm}' >>"$RESULTS"
  echo "  idle $impl #$rep: RSS $((rss / 1024)) MiB (peak $((hwm / 1024)) MiB)"
}

# --- the runs ---
echo "collector: $COLLECTOR_SRC ($(stat -c %y "$COLLECTOR_SRC" | cut -d. -f1))"
if [ "$HAVE_REF" = 1 ]; then
  echo "reference: $REF_BIN ($("$REF_BIN" --version 2>/dev/null | head -n 1))"
else
  echo "reference: not found at $REF_BIN (tests/reference/build.sh builds it): ours only"
fi
echo "offered $RATE items/s for $DURATION, sizes: $SIZES, $WORKERS loadgen workers, $ATTRS attributes/item, $REPS repetitions, processors: [$PROCESSORS], export compression: $EXPORT_COMPRESSION"
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

NOTES=()
RUN_RATE=$RATE
RSS_RUNS=()
for scen in "${SELECTED[@]}"; do
  read -r _ proto signal canon check target <<<"$(scenario_row "$scen")"
  if [ "$scen" = idle ]; then
    echo "== idle"
    for rep in $(seq 1 "$REPS"); do
      run_idle ours "$rep"
      [ "$HAVE_REF" = 1 ] && run_idle ref "$rep"
    done
    continue
  fi
  impls=()
  if [ "$canon" = - ]; then
    impls=(floor)
  else
    if [ -n "$(exporter_name "$COLLECTOR_BIN" "$canon")" ]; then
      impls+=(ours)
    else
      NOTES+=("$scen: skipped for ours: the collector has no $canon exporter yet")
    fi
    if [ "$HAVE_REF" = 1 ]; then
      if [ -n "$(exporter_name "$REF_BIN" "$canon")" ]; then
        impls+=(ref)
      else
        NOTES+=("$scen: the reference has no $canon exporter")
      fi
    fi
  fi
  [ ${#impls[@]} -eq 0 ] && { echo "== $scen: skipped"; continue; }
  if [ "$target" != - ] && [ "$target" != floor ] && [ "$RSS_RATE" != 0 ]; then
    for impl in "${impls[@]}"; do RSS_RUNS+=("$scen $impl"); done
  fi
  for size in $SIZES; do
    echo "== $scen, $size items/request"
    # Repetitions interleave the implementations, so that both see the same machine.
    for rep in $(seq 1 "$REPS"); do
      for impl in "${impls[@]}"; do
        run_one "$scen" "$impl" "$size" "$rep"
      done
    done
  done
done

# Peak RSS at the higher rate the targets are stated for: one run each, 512 items/request.
if [ ${#RSS_RUNS[@]} -gt 0 ]; then
  echo "== peak RSS at $RSS_RATE items/s offered, 512 items/request"
  RUN_RATE=$RSS_RATE
  for r in "${RSS_RUNS[@]}"; do
    read -r scen impl <<<"$r"
    run_one "$scen" "$impl" 512 1
  done
  RUN_RATE=$RATE
fi

# --- the table: medians over the repetitions ---
SUMMARY=$OUT_DIR/summary.md
jq -s -r --argjson targets "$(
  awk -F'|' 'NF > 1 { gsub(/ /, "", $1); gsub(/ /, "", $6); printf "%s\"%s\":\"%s\"", (n++ ? "," : "{"), $1, $6 }
    END { print "}" }' <<<"$SCENARIOS_TABLE"
)" --argjson rate "$RATE" --argjson rssrate "$RSS_RATE" --arg dur "$DURATION" '
  def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def fmt: if . == null then "-" elif . >= 1000000 then "\(. / 10000 | round / 100)M"
    elif . >= 1000 then "\(. / 100 | round / 10)k" else "\(. | round)" end;
  def mib: if . == null then "-" else "\(. / 1024 | . * 10 | round / 10)" end;
  def ratio($a; $b): if $a == null or $b == null or $b == 0 then "-" else "\($a / $b | . * 100 | round / 100)x" end;
  (map(select(.scenario != "idle" and (.rate // $rate) == $rssrate and $rssrate != $rate))
    | map({key: "\(.scenario)|\(.impl)", value: .peak_rss_kb}) | from_entries) as $rss100
  | map(select(.scenario == "idle" or (.rate // $rate) == $rate))
  | group_by([.scenario, .size, .impl]) | map({
      scenario: .[0].scenario, size: .[0].size, impl: .[0].impl, n: length,
      bad: (map(select(.status != "ok")) | length),
      ips: (map(.items_per_s // empty) | median), ipc: (map(.items_per_cpu_s // empty) | median),
      hwm: (map(.peak_rss_kb) | median), rss: (map(.rss_kb) | median),
      p50: (map(.p50_us // empty) | median), p99: (map(.p99_us // empty) | median)}) as $rows
  | ($rows | map(select(.scenario == "floor-grpc" and .size == 512)) | .[0].ipc) as $floor512
  | "| scenario | items/req | impl | items/s | items per CPU-s | peak RSS MiB | peak RSS MiB @\($rssrate / 1000)k/s | p50 µs | p99 µs | vs reference | vs target | runs |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ($rows[] | . as $r
      | ($rows | map(select(.scenario == $r.scenario and .size == $r.size and .impl == "ref")) | .[0]) as $ref
      | ($targets[$r.scenario]) as $t
      | (if $r.size != 512 or $r.impl != "ours" then null
         elif $t == "floor" then (if $floor512 then $floor512 / 1.3 else null end)
         elif $t == "-" or $t == null then null else ($t | tonumber) end) as $tv
      | if $r.scenario == "idle" then
          "| idle (default config) | - | \($r.impl) | - | - | \($r.rss | mib) (RSS) | - | - | - | \(if $r.impl == "ours" and $ref then ratio($r.rss; $ref.rss) else "-" end) | \(if $r.impl == "ours" then "≤ 8 MiB" else "-" end) | \($r.n) |"
        else
          ($rss100["\($r.scenario)|\($r.impl)"]) as $h100
          | "| \($r.scenario) | \($r.size) | \($r.impl) | \($r.ips | fmt) | \($r.ipc | fmt) | \($r.hwm | mib) | \(if $r.size == 512 then ($h100 | mib) else "-" end) | \($r.p50 | fmt) | \($r.p99 | fmt) | \(if $r.impl == "ours" and $ref then ratio($r.ipc; $ref.ipc) else "-" end) | \(if $tv then "\(ratio($r.ipc; $tv)) of \($tv | fmt)\(if $t != "floor" then (($h100 // $r.hwm) as $h | if $h <= 32768 then ", RSS ≤ 32 ok" else ", RSS > 32" end) else "" end)" else "-" end) | \($r.n)\(if $r.bad > 0 then " (\($r.bad) FAILED)" else "" end) |"
        end)
' "$RESULTS" >"$SUMMARY"

echo
echo "Medians of $REPS runs; offered $RATE items/s for $DURATION; items per CPU-s = items accepted / collector (or do-nothing server) utime+stime; the @$RSS_RATE column is one run at that offered rate."
cat "$SUMMARY"
for n in "${NOTES[@]+"${NOTES[@]}"}"; do echo "note: $n"; done
echo "raw runs: $RESULTS; table: $SUMMARY"
if [ ${#FAILURES[@]} -gt 0 ]; then
  echo
  echo "FAILED (${#FAILURES[@]}):"
  printf '  %s\n' "${FAILURES[@]}"
  exit 1
fi
