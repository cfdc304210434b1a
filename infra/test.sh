#!/usr/bin/env bash
# make test: every test — unit, adapter (against the local stack) and
# end-to-end (real agents, the real AWS CLI and boto3). Starts the local stack
# and control plane when none runs, and stops what it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

bash infra/install.sh
say "==> building"
cargo build --workspace --all-targets

started=()
cleanup() {
  local rc=$?
  for ((i=${#started[@]}-1; i>=0; i--)); do
    case "${started[$i]}" in
      stack) bash infra/stack.sh stop || true ;;
      control-plane) bash infra/control-plane.sh stop || true ;;
    esac
  done
  exit $rc
}
trap cleanup EXIT

if ! bash infra/stack.sh status >/dev/null 2>&1; then
  bash infra/stack.sh start
  started+=(stack)
fi
"$LOCAL/venv/bin/python" infra/provision.py >/dev/null
load_stack_env
# Starts one, or restarts a running one older than the build just made.
was_running=$(is_running steward-local && echo yes || echo no)
bash infra/control-plane.sh start
[[ "$was_running" == yes ]] || started+=(control-plane)

say "==> unit and adapter tests"
cargo test --workspace -- --include-ignored
say "==> end-to-end tests"
"$LOCAL/venv/bin/python" -m pytest tests -q -p no:cacheprovider
