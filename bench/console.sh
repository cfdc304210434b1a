#!/usr/bin/env bash
# make bench-console: the web console's figures on the local stack (the time
# to a usable fleet page with 500 registered nodes, what the browser downloads
# on first load): bench/console_bench.py. Uses the running control plane and
# the console built into it (make up); BENCH_ARGS: --nodes N, --runs N.
set -euo pipefail
cd "$(dirname "$0")/.."
source infra/lib.sh

bash infra/stack.sh status >/dev/null || die "the stack is not running: make up first"
is_running steward-local || die "the control plane is not running: make up first"
load_stack_env
"$LOCAL/venv/bin/python" bench/console_bench.py "$@"
