# shellcheck shell=bash
# Sourced by the benchmarks (after infra/lib.sh): the figures are those of the
# code as it ships, so the debug control plane `make up` started is swapped
# for the release one for the run, and restored on exit, whatever the exit.
# The release one logs every API request (debug level of steward_local::api):
# bench/meter.py counts them as Lambda invocations.

# release_control_plane NAME: swap in the release control plane; its log is
# kept as .local/logs/steward-local-NAME.log after the run.
release_control_plane() {
  local name=$1
  build_release_agent_and_control_plane
  bash infra/control-plane.sh stop
  # shellcheck disable=SC2064 # the name is fixed now
  trap "restore_control_plane $name" EXIT
  # Production's ConnectionLost threshold: the benchmarks' agents heartbeat
  # at production's rate, and with the stack's 30 s every one of them would
  # count as not Online (holding no rate-control slot) after half a minute.
  # The scheduler ticks on the stack's EventBridge rule alone (once a
  # minute, as deployed), not also every 5 s as for the tests.
  export STEWARD_BENCH_CONNECTION_LOST_SECONDS=1200
  STEWARD_SCHEDULER_TICK_SECONDS=0 STEWARD_CONNECTION_LOST_SECONDS=$STEWARD_BENCH_CONNECTION_LOST_SECONDS STEWARD_PROFILE=release \
    RUST_LOG="info,steward_local::api=debug" bash infra/control-plane.sh start
}

# The agent is built alone, as it ships: built with the control plane in one
# cargo invocation it would get their features of shared crates (the SDK's
# default HTTPS client, clap's colours) and be larger than it is.
build_release_agent_and_control_plane() {
  cargo build --release -p steward-local "$@"
  cargo build --release -p steward-agent
}

restore_control_plane() {
  local status=$?
  bash infra/control-plane.sh stop
  cp .local/logs/steward-local.log ".local/logs/steward-local-$1.log" || true
  env -u STEWARD_PROFILE -u RUST_LOG bash infra/control-plane.sh start
  # Another user of the stack may have started one meanwhile (after a build,
  # control-plane.sh restarts an older process): then this start lost the
  # port, and the pid file names a process that is gone.
  sleep 1
  is_running steward-local ||
    say "warning: the control plane just started is gone (another start took the port?); .local/run/steward-local.pid names no running process: check 'bash infra/control-plane.sh status'"
  exit "$status"
}
