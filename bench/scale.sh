#!/usr/bin/env bash
# The scale benchmark: release agents and a release control plane (the
# debug one `make up` starts is swapped out for the run and back after), so
# the figures are those of the code as it ships, not of debug builds.
# STEWARD_LOCAL_CONCURRENCY sets how many batches each local queue poller
# handles at once (default 2; Lambda scales out further).
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/lib.sh
load_stack_env
cargo build --release -p steward-agent -p steward-local
bash infra/control-plane.sh stop
# The release control plane's log is kept for reading after the run.
restore() {
  bash infra/control-plane.sh stop
  cp .local/logs/steward-local.log .local/logs/steward-local-scale.log || true
  bash infra/control-plane.sh start
}
trap restore EXIT
STEWARD_PROFILE=release bash infra/control-plane.sh start
STEWARD_BIN_DIR="${CARGO_TARGET_DIR:-target}/release" .local/venv/bin/python bench/scale_bench.py \
  --agents "${STEWARD_SCALE_AGENTS:-500}" --max-concurrency 100% 10%
