#!/usr/bin/env bash
# make bench: release binary sizes, agent memory, fan-out time for 3/20/100
# agents, Parameter Store latencies and AWS requests per operation, against
# the release control plane (bench/release.sh). Exits non-zero when a run
# fails (an invocation not Success, or a time-out).
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/lib.sh
source bench/release.sh

bash infra/stack.sh status >/dev/null || die "the stack is not running: make up first"
is_running steward-local || die "the control plane is not running: make up first"
load_stack_env

say "==> release build (takes a while on 2 cores)"
cargo build --release -p steward-fn-api -p steward-fn-dispatch -p steward-fn-ingest -p steward-fn-scheduler -p steward-fn-automation -p steward-fn-change-events
# The agent alone, as it ships (see build_release_agent_and_control_plane).
cargo build --release -p steward-agent
rel="${CARGO_TARGET_DIR:-$ROOT/target}/release"
for b in steward-agent steward-api steward-dispatch steward-ingest steward-scheduler steward-automation steward-change-events; do
  awk -v n="$b" -v s="$(stat -c %s "$rel/$b")" 'BEGIN { printf "%-22s %6.2f MB (%d bytes)\n", n, s / 1e6, s }'
done

release_control_plane bench
export STEWARD_BIN_DIR="$rel"
"$LOCAL/venv/bin/python" bench/fleet_bench.py "$@"
"$LOCAL/venv/bin/python" bench/parameters_bench.py
