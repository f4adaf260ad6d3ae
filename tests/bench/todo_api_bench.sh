#!/usr/bin/env bash
# Benchmark of the Todo API: requests per second and p99 latency of list, get and create, with
# the OpenTelemetry instrumentation on (exporting to the collector) and off (OTEL_SDK_DISABLED),
# and the overhead as a ratio. Not part of the tests.
#
# usage: tests/bench/todo_api_bench.sh [duration per run (default 10s)] [connections (default 16)]
# environment: TODO_API_BIN, COLLECTOR_BIN (default: the newest build*/ of the repo), PG_BIN
# (default: the newest /usr/lib/postgresql/*/bin), WRK_THREADS (default 2), ROUNDS (default 2).
#
# It starts a throwaway PostgreSQL cluster and, when a collector binary exists, a collector
# (OTLP/HTTP receiver → batch → nop exporter), all on free loopback ports, and removes them on
# exit. Everything shares the machine: the figures compare the two modes, they are not absolute.
set -euo pipefail

DURATION=${1:-10s}
CONNECTIONS=${2:-16}
ROUNDS=${ROUNDS:-2}
THREADS=${WRK_THREADS:-2}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

newest() { ls -t "$@" 2>/dev/null | head -n 1 || true; }
BIN=${TODO_API_BIN:-$(newest "$root"/build*/todo-api/todo-api)}
COLLECTOR=${COLLECTOR_BIN:-$(newest "$root"/build*/collector)}
PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$BIN" ] || { echo "todo-api binary not found (build target todo-api or set TODO_API_BIN)" >&2; exit 1; }
[ -x "$PG_BIN/initdb" ] || { echo "PostgreSQL server binaries not found (set PG_BIN)" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
  echo "wrk is not installed: apt-get install wrk" >&2
  exit 1
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

tmp=$(mktemp -d /tmp/todo-bench.XXXXXX)
chmod 755 "$tmp"
api_pid=""
col_pid=""
cleanup() {
  for pid in $api_pid; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true; done
  [ -n "$col_pid" ] && kill "$col_pid" 2>/dev/null && wait "$col_pid" 2>/dev/null || true
  as_pg "$PG_BIN/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# --- PostgreSQL ---
mkdir -p "$tmp/sock"
[ "$(id -u)" = 0 ] && chown postgres "$tmp" "$tmp/sock"
pg_port=$(free_port)
as_pg "$PG_BIN/initdb" -D "$tmp/data" -U postgres -E UTF8 --locale=C --auth=trust >/dev/null
as_pg "$PG_BIN/pg_ctl" -D "$tmp/data" -l "$tmp/pg.log" -w -o \
  "-p $pg_port -k $tmp/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200" \
  start >/dev/null
as_pg "$PG_BIN/psql" -X -q -h "$tmp/sock" -p "$pg_port" -U postgres -d postgres -c 'CREATE DATABASE todos' >/dev/null
export DATABASE_URL="postgresql://postgres@127.0.0.1:$pg_port/todos"
"$BIN" migrate >/dev/null
as_pg "$PG_BIN/psql" -X -q -h "$tmp/sock" -p "$pg_port" -U postgres -d todos -c \
  "INSERT INTO todos (title, completed) SELECT 'seed ' || g, g % 3 = 0 FROM generate_series(1, 1000) g" >/dev/null
as_pg "$PG_BIN/psql" -X -q -h "$tmp/sock" -p "$pg_port" -U postgres -d todos -c 'VACUUM ANALYZE todos' >/dev/null
todo_id=$(as_pg "$PG_BIN/psql" -X -q -A -t -h "$tmp/sock" -p "$pg_port" -U postgres -d todos -c \
  "SELECT id FROM todos ORDER BY created_at DESC, id LIMIT 1 OFFSET 500")

# --- collector ---
otlp_endpoint=""
if [ -n "$COLLECTOR" ] && [ -x "$COLLECTOR" ]; then
  col_port=$(free_port)
  cat >"$tmp/collector.yaml" <<EOF
receivers:
  otlp:
    protocols:
      http:
        endpoint: "127.0.0.1:$col_port"
processors:
  batch:
exporters:
  nop:
service:
  pipelines:
    traces: {receivers: [otlp], processors: [batch], exporters: [nop]}
    metrics: {receivers: [otlp], processors: [batch], exporters: [nop]}
    logs: {receivers: [otlp], processors: [batch], exporters: [nop]}
  telemetry:
    metrics:
      address: "127.0.0.1:0"
EOF
  "$COLLECTOR" --config "$tmp/collector.yaml" >"$tmp/collector.log" 2>&1 &
  col_pid=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null -X POST -H 'Content-Type: application/json' -d '{}' "http://127.0.0.1:$col_port/v1/traces" && break
    sleep 0.1
  done
  otlp_endpoint="http://127.0.0.1:$col_port"
else
  # No collector: exports go to a port where nothing listens and fail fast (and are counted).
  otlp_endpoint="http://127.0.0.1:$(free_port)"
  echo "note: no collector binary; 'on' exports to an absent collector" >&2
fi

# --- runs ---
# Both instances run side by side and the cases alternate between them, round after round, so
# that warm-up, caches and background noise fall on both modes alike; the figures are the means.
declare -A RPS P99 PORT PID
to_ms() { # wrk latency ("812.00us", "5.12ms", "1.02s") to milliseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n *= 1; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'
}

start_api() {
  local mode=$1 disabled=$2 port
  port=$(free_port)
  HOST=127.0.0.1 PORT=$port DB_POOL_SIZE=16 MAX_CONNECTIONS=512 OTEL_SDK_DISABLED=$disabled \
    OTEL_EXPORTER_OTLP_ENDPOINT=$otlp_endpoint OTEL_METRIC_EXPORT_INTERVAL=5000 \
    OTEL_BSP_SCHEDULE_DELAY=1000 "$BIN" serve >/dev/null 2>"$tmp/api-$mode.err" &
  PID[$mode]=$!
  api_pid="${PID[off]:-} ${PID[on]:-}"
  PORT[$mode]=$port
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$port/health" && break
    sleep 0.1
  done
}

run_case() { # mode case round
  local mode=$1 case=$2 base="http://127.0.0.1:${PORT[$1]}/api/v1/todos" out
  case $case in
    list) out=$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency "$base?limit=20") ;;
    get) out=$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency "$base/$todo_id") ;;
    create) out=$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency -s "$here/todo-api/create.lua" "$base") ;;
  esac
  if grep -q "Non-2xx" <<<"$out"; then
    echo "warning: $mode/$case had non-2xx responses: $(grep Non-2xx <<<"$out")" >&2
  fi
  local rps p99
  rps=$(awk '/^Requests\/sec:/ { print $2 }' <<<"$out")
  p99=$(to_ms "$(awk '$1 == "99%" { print $2 }' <<<"$out")")
  RPS[$mode/$case]=$(awk -v a="${RPS[$mode/$case]:-0}" -v b="$rps" 'BEGIN { print a + b }')
  P99[$mode/$case]=$(awk -v a="${P99[$mode/$case]:-0}" -v b="$p99" 'BEGIN { print a + b }')
}

start_api off true
start_api on false
for mode in off on; do
  base="http://127.0.0.1:${PORT[$mode]}/api/v1/todos"
  wrk -t "$THREADS" -c "$CONNECTIONS" -d 3s "$base?limit=20" >/dev/null
  wrk -t "$THREADS" -c "$CONNECTIONS" -d 2s "$base/$todo_id" >/dev/null
done
for round in $(seq "$ROUNDS"); do
  for case in list get create; do
    if [ $((round % 2)) = 1 ]; then order="off on"; else order="on off"; fi
    for mode in $order; do
      run_case "$mode" "$case"
    done
  done
done
curl -s "http://127.0.0.1:${PORT[on]}/metrics" | grep '^todo_telemetry' >"$tmp/telemetry-counters" || true

echo
echo "Todo API benchmark: wrk -t$THREADS -c$CONNECTIONS -d$DURATION, mean of $ROUNDS rounds, $(nproc) CPUs shared by wrk, the API, PostgreSQL and the collector"
printf '%-8s %12s %12s %12s %12s %12s %12s\n' case "req/s off" "req/s on" "p99 ms off" "p99 ms on" "req/s on/off" "p99 on/off"
for case in list get create; do
  off_r=$(awk -v a="${RPS[off/$case]}" -v n="$ROUNDS" 'BEGIN { printf "%.0f", a / n }')
  on_r=$(awk -v a="${RPS[on/$case]}" -v n="$ROUNDS" 'BEGIN { printf "%.0f", a / n }')
  off_p=$(awk -v a="${P99[off/$case]}" -v n="$ROUNDS" 'BEGIN { printf "%.2f", a / n }')
  on_p=$(awk -v a="${P99[on/$case]}" -v n="$ROUNDS" 'BEGIN { printf "%.2f", a / n }')
  printf '%-8s %12s %12s %12s %12s %12s %12s\n' "$case" "$off_r" "$on_r" "$off_p" "$on_p" \
    "$(awk -v a="$on_r" -v b="$off_r" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')" \
    "$(awk -v a="$on_p" -v b="$off_p" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
done
echo
echo "telemetry counters after the 'on' run:"
sed 's/^/  /' "$tmp/telemetry-counters"
