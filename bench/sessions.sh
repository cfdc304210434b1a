#!/usr/bin/env bash
# make bench-sessions: Session Manager's figures on the local stack: keystroke
# to echo latency (p50/p99), port-forwarding throughput, AWS requests per
# minute of an idle and of a busy session, the fixed requests of one session,
# and the cost per session-hour at AWS prices (bench/sessions_bench.py).
#
# Release binaries are used where target/release holds one newer than its
# sources (this script builds none: `cargo build --release -p steward-agent
# -p steward-cli -p steward-local` does); otherwise the debug one, and the
# script says which. The control plane is restarted for the run with every
# API request logged (bench/meter.py counts them as Lambda invocations) and
# the scheduler on the stack's once-a-minute rule alone, and restored on exit
# (bench/release.sh). Exits non-zero when a run fails or a count cannot be made.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/lib.sh
source bench/release.sh

bash infra/stack.sh status >/dev/null || die "the stack is not running: make up first"
is_running steward-local || die "the control plane is not running: make up first"
load_stack_env

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"

# newest_source DIR...: the newest modification time (epoch s) of the Rust
# sources and manifests under DIRs, and of the workspace's lock file.
newest_source() {
  find "$@" Cargo.toml Cargo.lock -type f \( -name '*.rs' -o -name 'Cargo.toml' -o -name 'Cargo.lock' \) \
    -printf '%T@\n' 2>/dev/null | sort -n | tail -1 | cut -d. -f1
}

# pick BINARY DIR...: the release binary when it is newer than its sources,
# else the debug one; says which.
pick() {
  local bin=$1 release debug built newest
  shift
  release="$TARGET/release/$bin" debug="$TARGET/debug/$bin"
  newest=$(newest_source "$@")
  if [[ -x "$release" ]]; then
    built=$(stat -c %Y "$release")
    if (( built >= newest )); then
      say "sessions bench: $bin: release ($release)"
      echo release
      return
    fi
    say "sessions bench: $bin: the release binary is older than its sources; using the debug one ($debug)"
  else
    say "sessions bench: $bin: no release binary; using the debug one ($debug)"
  fi
  [[ -x "$debug" ]] || die "$debug is not built (cargo build)"
  echo debug
}

agent_profile=$(pick steward-agent core agent)
cli_profile=$(pick steward cli core)
local_profile=$(pick steward-local core aws functions)
export STEWARD_BENCH_AGENT_BIN="$TARGET/$agent_profile/steward-agent"
export STEWARD_BENCH_CLI_BIN="$TARGET/$cli_profile/steward"
export STEWARD_BENCH_BINARIES="steward-agent $agent_profile, steward $cli_profile, steward-local $local_profile"

# As release_control_plane (bench/release.sh), without building.
bash infra/control-plane.sh stop
trap "restore_control_plane sessions" EXIT
export STEWARD_BENCH_CONNECTION_LOST_SECONDS=1200
STEWARD_SCHEDULER_TICK_SECONDS=0 STEWARD_CONNECTION_LOST_SECONDS=$STEWARD_BENCH_CONNECTION_LOST_SECONDS \
  STEWARD_PROFILE=$local_profile RUST_LOG="info,steward_local::api=debug" bash infra/control-plane.sh start
"$LOCAL/venv/bin/python" bench/sessions_bench.py "$@"
