#!/usr/bin/env bash
# make bench-patching: Patch Manager's figures (issue 12) with the release
# agent and control plane (bench/release.sh): on a Debian test node
# (tests/debian_node.py), the agent's peak RSS and the wall time of Scan and
# Install, the node's package count, and `apt-get -s upgrade` on the same
# root for comparison. Exits non-zero when an operation fails.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/lib.sh
source bench/release.sh

bash infra/stack.sh status >/dev/null || die "the stack is not running: make up first"
is_running steward-local || die "the control plane is not running: make up first"
load_stack_env
bash infra/debian-root.sh ensure
release_control_plane patching
export STEWARD_BIN_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/release"
"$LOCAL/venv/bin/python" bench/patching_bench.py "$@"
