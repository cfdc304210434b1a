#!/usr/bin/env bash
# The scale benchmark: release agents and a release control plane (see
# bench/release.sh). Prints every figure against its target (bench/targets.py)
# and, at the end, one table of them all. In order:
#   1. Lambda start: each function's release binary, process start to first
#      answer, against a Runtime API emulator (bench/lambda_start.py);
#   2. the release agent binary's size;
#   3. the request count checked on one command whose requests are added up
#      by hand (scale_bench.py --verify);
#   4. STEWARD_SCALE_AGENTS (500) agents with the agent's default heartbeat:
#      idle cost per node and per stack (bench/idle_cost.py), the agents'
#      idle RSS, then one command at MaxConcurrency 100% and 10%.
# One part alone:
#   bench/scale.sh --lambda-start   # 1 (needs .local/stack.env, not the stack)
#   bench/scale.sh --agent-binary   # 2
#   bench/scale.sh --verify         # 3
#   bench/scale.sh --idle-cost      # 4 without the commands: idle cost, idle RSS
# (through make: make bench-scale BENCH_ARGS=--idle-cost). Other arguments
# go to scale_bench.py (e.g. --no-idle-cost, --idle-seconds 180).
# STEWARD_LOCAL_CONCURRENCY sets how many batches each local queue poller
# handles at once (default 2; Lambda scales out further).
# A missed target does not fail the benchmark; a failed run does.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/lib.sh
source bench/release.sh
load_stack_env
export STEWARD_BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
export STEWARD_BENCH_TARGETS
STEWARD_BENCH_TARGETS="$(mktemp)"
py="$LOCAL/venv/bin/python"
part="${1:-}"
case "$part" in --lambda-start | --agent-binary | --verify | --idle-cost) shift ;; *) part="" ;; esac

table() {
  "$py" bench/targets.py "$STEWARD_BENCH_TARGETS"
  rm -f "$STEWARD_BENCH_TARGETS"
}

# Every release binary of the benchmark: the functions' for Lambda start,
# steward-local, and the agent alone (bench/release.sh); release_control_plane's
# own build then has nothing left to do.
build_all() {
  say "==> release build (takes several minutes on 2 cores)"
  build_release_agent_and_control_plane -p steward-fn-api -p steward-fn-dispatch \
    -p steward-fn-ingest -p steward-fn-scheduler -p steward-fn-automation \
    -p steward-fn-change-events
}

case "$part" in
  --lambda-start)
    build_all
    "$py" bench/lambda_start.py --bin-dir "$STEWARD_BIN_DIR"
    table
    exit 0
    ;;
  --agent-binary)
    cargo build --release -p steward-agent
    "$py" bench/scale_bench.py --agent-binary
    table
    exit 0
    ;;
  --verify)
    rm -f "$STEWARD_BENCH_TARGETS"
    release_control_plane scale
    "$py" bench/scale_bench.py --verify
    exit 0
    ;;
  --idle-cost)
    release_control_plane scale
    "$py" bench/scale_bench.py --agent-binary
    "$py" bench/scale_bench.py --agents "${STEWARD_SCALE_AGENTS:-500}" --idle-cost "$@"
    table
    exit 0
    ;;
esac

build_all
"$py" bench/lambda_start.py --bin-dir "$STEWARD_BIN_DIR"
"$py" bench/scale_bench.py --agent-binary
release_control_plane scale
"$py" bench/scale_bench.py --verify
"$py" bench/scale_bench.py \
  --agents "${STEWARD_SCALE_AGENTS:-500}" --max-concurrency 100% 10% "$@"
echo
table
