#!/usr/bin/env bash
# The local emulators: LocalStack (SQS, S3, KMS, EventBridge, Scheduler, STS,
# IAM, Resource Groups, EC2) and DynamoDB Local, run in the background from
# what infra/install.sh put under .local/.
#
#   infra/stack.sh start    start both (no-op if already up) and wait until ready
#   infra/stack.sh stop     stop both
#   infra/stack.sh status   print their state; exit 0 only if both are ready
#
# Both emulators keep their state in memory: after a start, run
# infra/provision.py to create the resources of template.yaml again.
#
# LocalStack logs service-to-service requests too (EventBridge delivering to
# its SQS targets): the benchmarks count them (bench/meter.py).
#
# Environment: STEWARD_LOCALSTACK_PORT (4566), STEWARD_DYNAMODB_PORT (8000),
# STEWARD_STACK_TIMEOUT (seconds to wait for readiness, 120).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL="$ROOT/.local"
RUN="$LOCAL/run"
LOGS="$LOCAL/logs"
PY="$LOCAL/venv/bin/python"

LS_PORT=${STEWARD_LOCALSTACK_PORT:-4566}
DDB_PORT=${STEWARD_DYNAMODB_PORT:-8000}
TIMEOUT=${STEWARD_STACK_TIMEOUT:-120}
LS_SERVICES=sqs,s3,kms,events,scheduler,sts,iam,resource-groups,ec2

LS_PID="$RUN/localstack.pid"
DDB_PID="$RUN/dynamodb.pid"
LS_LOG="$LOGS/localstack.log"
DDB_LOG="$LOGS/dynamodb.log"

say() { printf 'stack: %s\n' "$*"; }
die() { printf 'stack: error: %s\n' "$*" >&2; exit 1; }
rel() { printf '%s' "${1#"$ROOT"/}"; }

# --- checks -------------------------------------------------------------------

# pid named by a pid file, if that process is alive and is what we started
# (guards against a reused pid). $1 pid file, $2 a string its command line holds.
live_pid() {
  local f=$1 marker=$2 pid cmdline
  [ -f "$f" ] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  cmdline=$(tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ "$cmdline" == *"$marker"* ]] || return 1
  printf '%s' "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# LocalStack is ready when /_localstack/health lists every service we asked
# for as "available" or "running".
ls_ready() {
  local body
  body=$(curl -fsS --max-time 3 "http://127.0.0.1:$LS_PORT/_localstack/health" 2>/dev/null) || return 1
  SERVICES_WANTED=$LS_SERVICES "$PY" -c '
import json, os, sys
services = json.loads(sys.stdin.read()).get("services", {})
wanted = os.environ["SERVICES_WANTED"].split(",")
sys.exit(0 if all(services.get(s) in ("available", "running") for s in wanted) else 1)
' <<<"$body" 2>/dev/null
}

# The services we ask for that a running LocalStack reports as disabled: it
# was started with fewer (by an older version of this script) and will never
# serve them. Empty when it cannot tell.
ls_disabled() {
  local body
  body=$(curl -fsS --max-time 3 "http://127.0.0.1:$LS_PORT/_localstack/health" 2>/dev/null) || return 0
  SERVICES_WANTED=$LS_SERVICES "$PY" -c '
import json, os, sys
services = json.loads(sys.stdin.read()).get("services", {})
print(",".join(s for s in os.environ["SERVICES_WANTED"].split(",") if services.get(s) == "disabled"))
' <<<"$body" 2>/dev/null || true
}

# DynamoDB Local is ready when it answers a ListTables.
ddb_ready() {
  curl -fsS --max-time 3 -o /dev/null \
    -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
    -d '{}' "http://127.0.0.1:$DDB_PORT/" 2>/dev/null
}

# --- start ----------------------------------------------------------------------

jar_dir() {
  local stamp="$LOCAL/dynamodb/.steward-installed" dir
  [ -f "$stamp" ] || die "DynamoDB Local is not installed: run infra/install.sh"
  dir="$ROOT/$(sed -n 2p "$stamp")"
  [ -f "$dir/DynamoDBLocal.jar" ] || die "DynamoDBLocal.jar missing in $(rel "$dir"): run infra/install.sh"
  printf '%s' "$dir"
}

# Starts a detached process (own session, so it outlives this shell and can be
# stopped as a group) and records its pid. $1 pid file, $2 log, $3 cwd, rest: command.
spawn() {
  local pidfile=$1 log=$2 cwd=$3; shift 3
  : > "$log"
  # A non-interactive shell starts no job groups, so setsid runs the command
  # in place (no fork) and $! is its pid, which is also its process group id.
  (cd "$cwd" && exec setsid nohup "$@" >>"$log" 2>&1 </dev/null) &
  echo $! > "$pidfile"
}

start_localstack() {
  if pid=$(live_pid "$LS_PID" localstack.runtime.main); then
    LS_STATE=running; return
  fi
  rm -f "$LS_PID"
  port_open "$LS_PORT" && die "port $LS_PORT is already in use by another process (set STEWARD_LOCALSTACK_PORT)"
  [ -x "$PY" ] || die "the venv is missing: run infra/install.sh"
  mkdir -p "$LOCAL/localstack"
  say "starting LocalStack on 127.0.0.1:$LS_PORT (log $(rel "$LS_LOG"))"
  spawn "$LS_PID" "$LS_LOG" "$ROOT" env \
    GATEWAY_LISTEN="127.0.0.1:$LS_PORT" \
    LOCALSTACK_HOST="127.0.0.1:$LS_PORT" \
    DNS_ADDRESS=0 \
    SERVICES="$LS_SERVICES" \
    LOCALSTACK_VOLUME_DIR="$LOCAL/localstack" \
    SQS_ENDPOINT_STRATEGY=off \
    SKIP_SSL_CERT_DOWNLOAD=1 \
    DISABLE_EVENTS=1 \
    LOG_LEVEL_OVERRIDES=localstack.request.internal=INFO \
    "$PY" -m localstack.runtime.main
  LS_STATE=started
}

start_dynamodb() {
  if pid=$(live_pid "$DDB_PID" DynamoDBLocal.jar); then
    DDB_STATE=running; return
  fi
  rm -f "$DDB_PID"
  port_open "$DDB_PORT" && die "port $DDB_PORT is already in use by another process (set STEWARD_DYNAMODB_PORT)"
  command -v java >/dev/null 2>&1 || die "java is missing: run infra/install.sh"
  local dir; dir=$(jar_dir)
  say "starting DynamoDB Local on 127.0.0.1:$DDB_PORT (log $(rel "$DDB_LOG"))"
  # -sharedDb: one database whatever the caller's access key and region
  # (without it DynamoDB Local keeps a separate database per key and region,
  # and a client with other credentials silently sees no tables).
  spawn "$DDB_PID" "$DDB_LOG" "$dir" \
    java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
    -inMemory -sharedDb -port "$DDB_PORT"
  DDB_STATE=started
}

# $1 name, $2 readiness function, $3 pid file, $4 marker, $5 log
wait_ready() {
  local name=$1 check=$2 pidfile=$3 marker=$4 log=$5 deadline=$((SECONDS + TIMEOUT))
  until "$check"; do
    if ! live_pid "$pidfile" "$marker" >/dev/null; then
      tail -n 20 "$log" >&2 || true
      die "$name exited during start; see $(rel "$log")"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 20 "$log" >&2 || true
      die "$name not ready after ${TIMEOUT}s; see $(rel "$log") (infra/stack.sh stop to clean up)"
    fi
    sleep 0.5
  done
}

cmd_start() {
  mkdir -p "$RUN" "$LOGS"
  local t0=$SECONDS
  start_localstack
  if [ "$LS_STATE" = running ]; then
    local disabled; disabled=$(ls_disabled)
    [ -z "$disabled" ] || die "the running LocalStack serves no $disabled (it was started with fewer services): infra/stack.sh restart, then infra/provision.py (a restart empties both emulators)"
  fi
  start_dynamodb
  wait_ready "DynamoDB Local" ddb_ready "$DDB_PID" DynamoDBLocal.jar "$DDB_LOG"
  wait_ready LocalStack ls_ready "$LS_PID" localstack.runtime.main "$LS_LOG"
  if [ "$LS_STATE" = running ] && [ "$DDB_STATE" = running ]; then
    say "already running and ready (LocalStack :$LS_PORT, DynamoDB Local :$DDB_PORT)"
  else
    say "ready in $((SECONDS - t0))s (LocalStack :$LS_PORT, DynamoDB Local :$DDB_PORT); state is empty: run infra/provision.py"
  fi
}

# --- stop -----------------------------------------------------------------------

# $1 name, $2 pid file, $3 marker
stop_one() {
  local name=$1 pidfile=$2 marker=$3 pid i
  if ! pid=$(live_pid "$pidfile" "$marker"); then
    [ -f "$pidfile" ] && say "$name was not running (stale pid file removed)"
    rm -f "$pidfile"
    return
  fi
  say "stopping $name (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 60); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.25
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name did not stop in 15s; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  # the rest of its process group, if any outlived it
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

cmd_stop() {
  stop_one LocalStack "$LS_PID" localstack.runtime.main
  stop_one "DynamoDB Local" "$DDB_PID" DynamoDBLocal.jar
  say "stopped"
}

# --- status ---------------------------------------------------------------------

cmd_status() {
  local ok=0 pid
  if pid=$(live_pid "$LS_PID" localstack.runtime.main); then
    if ls_ready; then say "LocalStack: ready (pid $pid, http://127.0.0.1:$LS_PORT)"
    else say "LocalStack: running but not ready (pid $pid; see $(rel "$LS_LOG"))"; ok=1; fi
  else
    say "LocalStack: stopped"; ok=1
  fi
  if pid=$(live_pid "$DDB_PID" DynamoDBLocal.jar); then
    if ddb_ready; then say "DynamoDB Local: ready (pid $pid, http://127.0.0.1:$DDB_PORT)"
    else say "DynamoDB Local: running but not ready (pid $pid; see $(rel "$DDB_LOG"))"; ok=1; fi
  else
    say "DynamoDB Local: stopped"; ok=1
  fi
  return "$ok"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  restart) cmd_stop; cmd_start ;;
  *) echo "usage: infra/stack.sh start|stop|status|restart" >&2; exit 2 ;;
esac
