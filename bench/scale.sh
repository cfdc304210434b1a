#!/usr/bin/env bash
# The scale benchmark: release agents and a release control plane (see
# bench/release.sh). First checks the request count on one command whose
# requests are added up by hand (scale_bench.py --verify), then runs
# STEWARD_SCALE_AGENTS (500) agents. `bench/scale.sh --verify` runs the check alone.
# STEWARD_LOCAL_CONCURRENCY sets how many batches each local queue poller
# handles at once (default 2; Lambda scales out further).
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/lib.sh
source bench/release.sh
load_stack_env
release_control_plane scale
export STEWARD_BIN_DIR="${CARGO_TARGET_DIR:-target}/release"
"$LOCAL/venv/bin/python" bench/scale_bench.py --verify
if [[ "${1:-}" == --verify ]]; then exit 0; fi
"$LOCAL/venv/bin/python" bench/scale_bench.py \
  --agents "${STEWARD_SCALE_AGENTS:-500}" --max-concurrency 100% 10% "$@"
