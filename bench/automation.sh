#!/usr/bin/env bash
# make bench-automation: Automation's figures (issue 11) against the release
# control plane (bench/release.sh): the request count of one 20-step
# execution checked against the requests added up by hand, AWS requests per
# step, step-to-step latency, and a rate-controlled execution over 100 real
# agents (MaxConcurrency 10). Exits non-zero when the count differs or an
# execution fails. `bench/automation.sh --verify` runs the check alone.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/lib.sh
source bench/release.sh

bash infra/stack.sh status >/dev/null || die "the stack is not running: make up first"
is_running steward-local || die "the control plane is not running: make up first"
load_stack_env
release_control_plane automation
export STEWARD_BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
"$LOCAL/venv/bin/python" bench/automation_bench.py "$@"
