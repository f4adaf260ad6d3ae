#!/usr/bin/env bash
# The native stack, no Docker (`make run`): builds the collector, the Todo API and the workload
# generator, then starts in a run directory a PostgreSQL cluster of its own, Prometheus (remote
# write receiver, exemplar storage, the repo's scrape config and alert rules), the collector, the
# Todo API and the workload generator, waits until each is healthy and prints where each listens.
# Ctrl-C (SIGINT) or SIGTERM stops them in reverse order and exits 0.
#
# Environment (defaults in brackets):
#   RUN_DIR [.tmp/stack]        data, generated configs and logs/*.log; the database is kept
#                               between runs (delete the directory to start afresh)
#   BUILD [build]               CMake build directory; SKIP_BUILD=1 uses what is there
#   COLLECTOR_BIN, TODO_API_BIN, TODO_WORKLOAD_BIN   prebuilt binaries (then no build)
#   STACK_HOST [127.0.0.1]      address every component listens on
#   OTLP_GRPC_PORT [4317] OTLP_HTTP_PORT [4318] OTC_METRICS_PORT [8888] OTC_HEALTH_PORT [13133]
#   TODO_API_PORT [8000] PROMETHEUS_PORT [9090] PG_PORT [5432]
#                               a default port that is taken is replaced by a free one (and said
#                               so); a port set explicitly that is taken is an error
#   LOKI_URL                    Loki base URL (http://localhost:3100) or push URL; else logs go
#                               to the debug exporter (LOKI_PUSH_URL is accepted too)
#   TEMPO_ENDPOINT              Tempo OTLP/gRPC host:port (localhost:4317), plaintext; else traces
#                               go to the debug exporter (TEMPO_OTLP_ENDPOINT is accepted too)
#   DEBUG_VERBOSITY [basic]     of the debug exporter
#   PROM_SCRAPE_INTERVAL, PROM_EVAL_INTERVAL   override config/prometheus.yml's intervals
#   OTEL_METRIC_EXPORT_INTERVAL [10000]        the Todo API's metric export period (ms); the
#                               other OTEL_* variables pass through to the Todo API
#   WORKLOAD [1]                0: do not start the workload generator
#   WORKLOAD_RATE [10] WORKLOAD_CONCURRENCY [4] WORKLOAD_DURATION [0 = until stopped]
#   PG_BIN                      PostgreSQL server binaries (default: newest /usr/lib/postgresql/*/bin)
#   PROMETHEUS_BIN [prometheus] the Prometheus server
#   STACK_TIMEOUT [60]          seconds to wait for each component to become healthy
#
# $RUN_DIR/pids lists "name pid" of every process started (the test checks none survives).
set -euo pipefail
# Job control: every background process gets its own process group, so a Ctrl-C at the terminal
# reaches this script only, which then stops the components in order instead of all at once.
set -m

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=${RUN_DIR:-$REPO/.tmp/stack}
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac
STACK_HOST=${STACK_HOST:-127.0.0.1}
STACK_TIMEOUT=${STACK_TIMEOUT:-60}
DEBUG_VERBOSITY=${DEBUG_VERBOSITY:-basic}
PROMETHEUS_BIN=${PROMETHEUS_BIN:-prometheus}
WORKLOAD=${WORKLOAD:-1}

say() { printf 'run-stack: %s\n' "$*"; }
die() {
  printf 'run-stack: error: %s\n' "$*" >&2
  exit 1
}

# Prerequisites, with the Debian package that provides each.
if [ -z "${PG_BIN:-}" ]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
[ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] && [ -x "$PG_BIN/pg_ctl" ] ||
  die "PostgreSQL server binaries not found (initdb, pg_ctl): apt-get install postgresql (or set PG_BIN)"
command -v "$PROMETHEUS_BIN" >/dev/null 2>&1 ||
  die "Prometheus not found ($PROMETHEUS_BIN): apt-get install prometheus (or set PROMETHEUS_BIN)"
command -v curl >/dev/null 2>&1 || die "curl not found: apt-get install curl"

# Build only what the stack runs (unless prebuilt binaries are given).
if [ -z "${COLLECTOR_BIN:-}" ] || [ -z "${TODO_API_BIN:-}" ] || [ -z "${TODO_WORKLOAD_BIN:-}" ]; then
  if [ "${SKIP_BUILD:-0}" != 1 ]; then
    [ -f "$BUILD/CMakeCache.txt" ] || cmake -S "$REPO" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo
    cmake --build "$BUILD" -j "$(nproc)" --target collector todo-api todo-workload
  fi
fi
COLLECTOR_BIN=${COLLECTOR_BIN:-$BUILD/collector}
TODO_API_BIN=${TODO_API_BIN:-$BUILD/todo-api/todo-api}
TODO_WORKLOAD_BIN=${TODO_WORKLOAD_BIN:-$BUILD/todo-api/todo-workload}
for b in "$COLLECTOR_BIN" "$TODO_API_BIN" "$TODO_WORKLOAD_BIN"; do
  [ -x "$b" ] || die "$b is missing: build it (cmake --build $BUILD --target collector todo-api todo-workload)"
done

# True when something accepts connections on the port.
port_busy() { (exec 3<>"/dev/tcp/$STACK_HOST/$1") 2>/dev/null; }

# A free port other than the ones already chosen.
CHOSEN_PORTS=" "
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    case $CHOSEN_PORTS in *" $p "*) continue ;; esac
    port_busy "$p" || {
      echo "$p"
      return 0
    }
  done
  die "no free port found"
}

# Sets the variable named $1 to its port: the value given, or the default $2 unless that is
# taken, then a free one.
pick_port() {
  local var=$1 def=$2 given=${!1:-} p
  if [ -n "$given" ]; then
    port_busy "$given" && die "$var=$given: the port is in use"
    p=$given
  elif port_busy "$def"; then
    p=$(free_port)
    say "port $def ($var) is taken: using $p"
  else
    p=$def
  fi
  CHOSEN_PORTS="$CHOSEN_PORTS$p "
  printf -v "$var" '%s' "$p"
}
pick_port OTLP_GRPC_PORT 4317
pick_port OTLP_HTTP_PORT 4318
pick_port OTC_METRICS_PORT 8888
pick_port OTC_HEALTH_PORT 13133
pick_port TODO_API_PORT 8000
pick_port PROMETHEUS_PORT 9090
pick_port PG_PORT 5432

mkdir -p "$RUN_DIR/logs" "$RUN_DIR/prometheus"
RUN_DIR=$(cd "$RUN_DIR" && pwd)
LOGS=$RUN_DIR/logs
PIDS_FILE=$RUN_DIR/pids
: >"$PIDS_FILE"
rm -f "$RUN_DIR/ready"

# ---- process bookkeeping and shutdown ----------------------------------------------------------

NAMES=()
PIDS=()
PG_RUNNING=0
PG_PID=
STOPPING=0
TICK_PID=

# Runs a component in the background, its output in logs/<name>.log. Where setpriv is there, the
# component also gets SIGTERM if this script dies without cleaning up (kill -9), so that nothing
# is left behind even then.
start_bg() {
  local name=$1
  shift
  local wrap=()
  if setpriv --help 2>/dev/null | grep -q pdeathsig; then wrap=(setpriv --pdeathsig TERM --); fi
  (cd "$RUN_DIR" && exec "${wrap[@]}" "$@") </dev/null >"$LOGS/$name.log" 2>&1 &
  local pid=$!
  NAMES+=("$name")
  PIDS+=("$pid")
  echo "$name $pid" >>"$PIDS_FILE"
}

# Stops one process: SIGTERM (SIGINT for the workload, which then prints its summary), then
# SIGKILL after a grace period; reaps it.
stop_pid() {
  local name=$1 pid=$2 sig=${3:-TERM} grace=${4:-15}
  kill -0 "$pid" 2>/dev/null || {
    wait "$pid" 2>/dev/null || true
    return 0
  }
  kill -s "$sig" "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + grace))
  while [ "$SECONDS" -lt "$deadline" ]; do
    # A zombie still answers kill -0; its state in /proc tells it has exited.
    if ! kill -0 "$pid" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; then
      break
    fi
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then
    say "$name did not stop within ${grace}s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

IS_ROOT=0
[ "$(id -u)" = 0 ] && IS_ROOT=1
# PostgreSQL refuses to run as root: its tools then run as the postgres user.
as_pg() {
  if [ "$IS_ROOT" = 1 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

PG_DATA=$RUN_DIR/postgres/data
PG_SOCK=$RUN_DIR/postgres/sock

cleanup() {
  local status=${1:-0}
  [ "$STOPPING" = 1 ] && return
  STOPPING=1
  trap '' INT TERM
  trap - ERR
  set +e
  rm -f "$RUN_DIR/ready"
  if [ -n "$TICK_PID" ]; then
    kill "$TICK_PID" 2>/dev/null
    wait "$TICK_PID" 2>/dev/null
  fi
  say "stopping"
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    local sig=TERM
    [ "${NAMES[$i]}" = workload ] && sig=INT
    stop_pid "${NAMES[$i]}" "${PIDS[$i]}" "$sig"
    say "  ${NAMES[$i]} stopped"
    if [ "${NAMES[$i]}" = workload ] && grep -q 'todo-workload summary' "$LOGS/workload.log" 2>/dev/null; then
      sed -n '/todo-workload summary/,$p' "$LOGS/workload.log"
    fi
  done
  if [ "$PG_RUNNING" = 1 ]; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      say "pg_ctl stop failed: see $LOGS/postgres.log"
    # pg_ctl returns once the pid file is gone, a moment before the postmaster has exited.
    for ((i = 0; i < 50; i++)); do
      kill -0 "$PG_PID" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$PG_PID/stat" 2>/dev/null)" != Z ] ||
        break
      sleep 0.1
    done
    PG_RUNNING=0
    say "  postgres stopped"
  fi
  say "stopped (logs in $LOGS)"
  exit "$status"
}
trap 'cleanup 0' INT TERM
trap 'cleanup 1' ERR

fail() {
  printf 'run-stack: error: %s\n' "$*" >&2
  cleanup 1
}

# Polls a URL until it answers 200, or fails naming the component and showing its log's tail.
wait_http() {
  local name=$1 url=$2 pid=${3:-} deadline=$((SECONDS + STACK_TIMEOUT))
  while :; do
    if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then return 0; fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$LOGS/$name.log" >&2 || true
      fail "$name exited during start-up (log: $LOGS/$name.log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$LOGS/$name.log" >&2 || true
      fail "$name not healthy at $url after ${STACK_TIMEOUT}s (log: $LOGS/$name.log)"
    fi
    sleep 0.2
  done
}

# ---- PostgreSQL ----------------------------------------------------------------------------------

mkdir -p "$RUN_DIR/postgres"
if [ "$IS_ROOT" = 1 ]; then
  chown postgres: "$RUN_DIR/postgres"
  runuser -u postgres -- test -x "$RUN_DIR/postgres" ||
    die "the postgres user cannot reach $RUN_DIR: set RUN_DIR to a directory it can traverse (e.g. under /tmp)"
fi
as_pg mkdir -p "$PG_SOCK"
if [ ! -f "$PG_DATA/PG_VERSION" ]; then
  say "creating the PostgreSQL cluster in $PG_DATA"
  as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C --auth-local=trust \
    --auth-host=trust >"$LOGS/initdb.log" 2>&1 || {
    tail -n 20 "$LOGS/initdb.log" >&2
    die "initdb failed (log: $LOGS/initdb.log)"
  }
fi
# A run killed with SIGKILL cannot stop the cluster (pg_ctl detaches it): stop that one first.
if [ -f "$PG_DATA/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
  say "stopping the PostgreSQL left running by an earlier run"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null
fi
touch "$LOGS/postgres.log"
[ "$IS_ROOT" = 1 ] && chown postgres: "$LOGS/postgres.log"
as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$LOGS/postgres.log" -w -t 30 \
  -o "-p $PG_PORT -k $PG_SOCK -c listen_addresses=$STACK_HOST" start >/dev/null ||
  fail "PostgreSQL did not start (log: $LOGS/postgres.log)"
PG_RUNNING=1
PG_PID=$(head -n 1 "$PG_DATA/postmaster.pid")
echo "postgres $PG_PID" >>"$PIDS_FILE"
if [ "$(as_pg "$PG_BIN/psql" -X -A -t -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres \
  -c "SELECT 1 FROM pg_database WHERE datname = 'todos'")" != 1 ]; then
  as_pg "$PG_BIN/psql" -X -q -h "$PG_SOCK" -p "$PG_PORT" -U postgres -d postgres \
    -c 'CREATE DATABASE todos' || fail "cannot create the todos database"
fi

# ---- Prometheus ----------------------------------------------------------------------------------

# The repo's config with the compose targets rewritten to the local ports (the stack contract keeps
# them in the literal host:port form for this), and its alert rules next to it.
PROM_CONF=$RUN_DIR/prometheus/prometheus.yml
if [ -f "$REPO/config/prometheus.yml" ]; then
  sed -e "s/collector:8888/$STACK_HOST:$OTC_METRICS_PORT/g" \
    -e "s/todo-api:8000/$STACK_HOST:$TODO_API_PORT/g" "$REPO/config/prometheus.yml" >"$PROM_CONF"
  if [ -f "$REPO/config/alerts.yml" ]; then
    cp "$REPO/config/alerts.yml" "$RUN_DIR/prometheus/alerts.yml"
  else
    : >"$RUN_DIR/prometheus/alerts.yml"
  fi
else
  say "config/prometheus.yml not found: scraping the collector and the Todo API with defaults"
  cat >"$PROM_CONF" <<EOF
global:
  scrape_interval: 10s
  evaluation_interval: 10s
scrape_configs:
  - job_name: otelc
    static_configs:
      - targets: ['$STACK_HOST:$OTC_METRICS_PORT']
  - job_name: todo-api-scrape
    static_configs:
      - targets: ['$STACK_HOST:$TODO_API_PORT']
EOF
fi
if [ -n "${PROM_SCRAPE_INTERVAL:-}" ]; then
  # The timeout may not exceed the interval, so a shorter interval shortens it too.
  sed -i -e "s/^\([[:space:]]*\)scrape_interval:.*/\1scrape_interval: $PROM_SCRAPE_INTERVAL/" \
    -e "s/^\([[:space:]]*\)scrape_timeout:.*/\1scrape_timeout: $PROM_SCRAPE_INTERVAL/" "$PROM_CONF"
fi
if [ -n "${PROM_EVAL_INTERVAL:-}" ]; then
  sed -i -e "s/^\([[:space:]]*\)evaluation_interval:.*/\1evaluation_interval: $PROM_EVAL_INTERVAL/" \
    "$PROM_CONF"
fi
start_bg prometheus "$PROMETHEUS_BIN" --config.file="$PROM_CONF" \
  --storage.tsdb.path="$RUN_DIR/prometheus/data" \
  --web.listen-address="$STACK_HOST:$PROMETHEUS_PORT" \
  --web.enable-remote-write-receiver --enable-feature=exemplar-storage
PROM_PID=${PIDS[-1]}

# ---- the collector -------------------------------------------------------------------------------

LOKI_URL=${LOKI_URL:-${LOKI_PUSH_URL:-}}
TEMPO_ENDPOINT=${TEMPO_ENDPOINT:-${TEMPO_OTLP_ENDPOINT:-}}
if [ -n "$LOKI_URL" ]; then
  case $LOKI_URL in */loki/api/v1/push) ;; *) LOKI_URL=${LOKI_URL%/}/loki/api/v1/push ;; esac
fi
COL_CONF=$RUN_DIR/collector.yaml
{
  cat <<EOF
# Generated by scripts/run-stack.sh for the native run; edit the script, not this file.
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: $STACK_HOST:$OTLP_GRPC_PORT
      http:
        endpoint: $STACK_HOST:$OTLP_HTTP_PORT
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 256
    spike_limit_mib: 64
  batch:
    timeout: 200ms
exporters:
  prometheus_remote_write:
    endpoint: http://$STACK_HOST:$PROMETHEUS_PORT/api/v1/write
EOF
  if [ -z "$LOKI_URL" ] || [ -z "$TEMPO_ENDPOINT" ]; then
    printf '  debug:\n    verbosity: %s\n' "$DEBUG_VERBOSITY"
  fi
  [ -n "$TEMPO_ENDPOINT" ] &&
    printf '  otlp/tempo:\n    endpoint: %s\n    tls:\n      insecure: true\n' "$TEMPO_ENDPOINT"
  [ -n "$LOKI_URL" ] && printf '  loki:\n    endpoint: %s\n' "$LOKI_URL"
  cat <<EOF
extensions:
  health_check:
    endpoint: $STACK_HOST:$OTC_HEALTH_PORT
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: $STACK_HOST:$OTC_METRICS_PORT
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [$([ -n "$TEMPO_ENDPOINT" ] && echo otlp/tempo || echo debug)]
    metrics:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [prometheus_remote_write]
    logs:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [$([ -n "$LOKI_URL" ] && echo loki || echo debug)]
EOF
} >"$COL_CONF"
"$COLLECTOR_BIN" validate --config "$COL_CONF" >"$LOGS/collector-validate.log" 2>&1 || {
  cat "$LOGS/collector-validate.log" >&2
  fail "the generated collector config $COL_CONF is invalid"
}
start_bg collector "$COLLECTOR_BIN" --config "$COL_CONF"
COL_PID=${PIDS[-1]}

wait_http prometheus "http://$STACK_HOST:$PROMETHEUS_PORT/-/ready" "$PROM_PID"
wait_http collector "http://$STACK_HOST:$OTC_HEALTH_PORT/" "$COL_PID"

# ---- the Todo API --------------------------------------------------------------------------------

export OTEL_METRIC_EXPORT_INTERVAL=${OTEL_METRIC_EXPORT_INTERVAL:-10000}
HOST=$STACK_HOST PORT=$TODO_API_PORT \
  DATABASE_URL="postgresql://postgres@$STACK_HOST:$PG_PORT/todos" \
  OTEL_EXPORTER_OTLP_ENDPOINT="http://$STACK_HOST:$OTLP_HTTP_PORT" \
  start_bg todo-api "$TODO_API_BIN" serve
API_PID=${PIDS[-1]}
wait_http todo-api "http://$STACK_HOST:$TODO_API_PORT/health" "$API_PID"

# ---- the workload --------------------------------------------------------------------------------

if [ "$WORKLOAD" != 0 ]; then
  TODO_API_URL="http://$STACK_HOST:$TODO_API_PORT" start_bg workload "$TODO_WORKLOAD_BIN"
fi

cat <<EOF
run-stack: the stack is up (run dir $RUN_DIR)
  Todo API         http://$STACK_HOST:$TODO_API_PORT/api/v1/todos   (health /health, metrics /metrics)
  OTLP gRPC        $STACK_HOST:$OTLP_GRPC_PORT
  OTLP HTTP        http://$STACK_HOST:$OTLP_HTTP_PORT
  collector health http://$STACK_HOST:$OTC_HEALTH_PORT/
  collector metrics http://$STACK_HOST:$OTC_METRICS_PORT/metrics
  Prometheus       http://$STACK_HOST:$PROMETHEUS_PORT   (remote write /api/v1/write)
  PostgreSQL       postgresql://postgres@$STACK_HOST:$PG_PORT/todos   (socket $PG_SOCK)
  traces           $([ -n "$TEMPO_ENDPOINT" ] && echo "Tempo at $TEMPO_ENDPOINT" || echo "debug exporter ($LOGS/collector.log)")
  logs             $([ -n "$LOKI_URL" ] && echo "Loki at $LOKI_URL" || echo "debug exporter ($LOGS/collector.log)")
  workload         $([ "$WORKLOAD" != 0 ] && echo "${WORKLOAD_RATE:-10} req/s ($LOGS/workload.log)" || echo "not started (WORKLOAD=0)")
  logs             $LOGS/*.log
Press Ctrl-C to stop.
EOF
echo ready >"$RUN_DIR/ready"

# Watch the components: one that dies takes the stack down (the workload may end by itself when
# WORKLOAD_DURATION is set).
while :; do
  sleep 1 &
  TICK_PID=$!
  wait "$TICK_PID" || true
  TICK_PID=
  for i in "${!PIDS[@]}"; do
    if ! kill -0 "${PIDS[$i]}" 2>/dev/null || [ "$(awk '{print $3}' "/proc/${PIDS[$i]}/stat" 2>/dev/null)" = Z ]; then
      if [ "${NAMES[$i]}" = workload ]; then
        wait "${PIDS[$i]}" 2>/dev/null && rc=0 || rc=$?
        say "the workload generator finished (exit $rc)"
        sed -n '/todo-workload summary/,$p' "$LOGS/workload.log"
        unset 'NAMES[i]' 'PIDS[i]'
        NAMES=("${NAMES[@]}")
        PIDS=("${PIDS[@]}")
        break
      fi
      tail -n 20 "$LOGS/${NAMES[$i]}.log" >&2 || true
      fail "${NAMES[$i]} exited unexpectedly (log: $LOGS/${NAMES[$i]}.log)"
    fi
  done
done
