#!/usr/bin/env bash
# make bench-scheduler: the scheduler's figures (State Manager associations
# and maintenance windows) against the release control plane
# (bench/release.sh): how late 100 associations due in the same minute start
# (p50/p99), and the AWS requests per scheduler tick when nothing is due, as
# the tables are and with 1,000 associations and 100 windows defined.
# Exits non-zero when a run fails or a count cannot be made.
# `bench/scheduler.sh --idle-only` (or --lateness-only) runs one part.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/lib.sh
source bench/release.sh

bash infra/stack.sh status >/dev/null || die "the stack is not running: make up first"
is_running steward-local || die "the control plane is not running: make up first"
load_stack_env
release_control_plane scheduler
export STEWARD_BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
"$LOCAL/venv/bin/python" bench/scheduler_bench.py "$@"
