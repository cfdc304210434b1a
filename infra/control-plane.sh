#!/usr/bin/env bash
# Start or stop the control plane locally: steward-local serves the api
# function on a port and runs one poller per queue over the same handlers.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

case "${1:-}" in
  start)
    # The stack's ConnectionLost threshold suits the tests' 2 s heartbeats;
    # a caller's own value wins (the scale benchmark runs agents with
    # production's 900 s heartbeat and so production's 1,200 s threshold).
    lost="${STEWARD_CONNECTION_LOST_SECONDS:-}"
    load_stack_env
    if [[ -n "$lost" ]]; then export STEWARD_CONNECTION_LOST_SECONDS="$lost"; fi
    if is_running steward-local; then
      # A control plane older than its binary would test yesterday's code.
      if [[ "$BIN/steward-local" -nt "$RUN_DIR/steward-local.started" ]]; then
        say "control plane: the binary is newer than the running process; restarting"
        stop_bg steward-local
        date +%s >"$RUN_DIR/steward-local.stopped"
      else
        say "control plane: already running on port $STEWARD_API_PORT"; exit 0
      fi
    fi
    [[ -x "$BIN/steward-local" ]] || die "steward-local is not built: run 'cargo build -p steward-local'"
    # A stopped process's long polls (20 s) stay open in the emulator and
    # would take the next messages with them; let them run out first.
    stopped_at="$(cat "$RUN_DIR/steward-local.stopped" 2>/dev/null || echo 0)"
    wait_s=$(( stopped_at + 21 - $(date +%s) ))
    if (( wait_s > 0 )); then
      say "control plane: waiting ${wait_s}s for the stopped process's queue polls to end"
      sleep "$wait_s"
    fi
    # The local stack is a test bench: the scheduler also ticks every 5 s
    # (deployed: once a minute), and a maintenance window's hour lasts 60 s
    # so that a test reaches a cutoff (deployed: 3600). Set either before
    # starting to change it.
    export STEWARD_SCHEDULER_TICK_SECONDS="${STEWARD_SCHEDULER_TICK_SECONDS:-5}"
    export STEWARD_WINDOW_HOUR_SECONDS="${STEWARD_WINDOW_HOUR_SECONDS:-60}"
    # Where the stream pollers keep their place in the tables' streams, so
    # that a restart (or a kill) hands on what was not yet published.
    export STEWARD_LOCAL_STREAM_CHECKPOINTS="$RUN_DIR/stream-checkpoints.json"
    start_bg steward-local "$BIN/steward-local"
    touch "$RUN_DIR/steward-local.started"
    wait_for_log steward-local "steward-local: api on" 60
    say "control plane: api on http://127.0.0.1:$STEWARD_API_PORT (log .local/logs/steward-local.log)"
    ;;
  stop)
    if is_running steward-local; then
      stop_bg steward-local
      date +%s >"$RUN_DIR/steward-local.stopped"
    fi
    ;;
  status) is_running steward-local && echo running || { echo stopped; exit 1; } ;;
  *) die "usage: infra/control-plane.sh start|stop|status" ;;
esac
