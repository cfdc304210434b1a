# Shared helpers for the infra scripts: background processes with pid files.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$ROOT/.local"
RUN_DIR="$LOCAL/run"
LOG_DIR="$LOCAL/logs"
mkdir -p "$RUN_DIR" "$LOG_DIR"

say() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# is_running NAME: the process named by .local/run/NAME.pid is alive.
is_running() {
  local pidfile="$RUN_DIR/$1.pid"
  [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# start_bg NAME CMD...: start CMD detached in its own session, log to .local/logs/NAME.log.
start_bg() {
  local name="$1"; shift
  setsid nohup "$@" >"$LOG_DIR/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

# stop_bg NAME: stop the process group the pid file names, wait for it, remove the pid file.
stop_bg() {
  local name="$1" pidfile="$RUN_DIR/$1.pid" pid
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# wait_for_log NAME PATTERN SECONDS: wait until the log shows PATTERN or the process dies.
wait_for_log() {
  local name="$1" pattern="$2" secs="$3"
  for _ in $(seq 1 $((secs * 5))); do
    grep -q -- "$pattern" "$LOG_DIR/$name.log" 2>/dev/null && return 0
    is_running "$name" || { tail -20 "$LOG_DIR/$name.log" >&2; die "$name exited; see .local/logs/$name.log"; }
    sleep 0.2
  done
  tail -20 "$LOG_DIR/$name.log" >&2
  die "$name did not get ready within ${secs}s; see .local/logs/$name.log"
}

load_stack_env() {
  [[ -f "$LOCAL/stack.env" ]] || die "no .local/stack.env: run 'make up' (or 'make stack') first"
  # shellcheck disable=SC1091
  source "$LOCAL/stack.env"
}

# STEWARD_PROFILE=release runs the release binaries (the scale benchmark).
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/${STEWARD_PROFILE:-debug}"
