#!/usr/bin/env bash
# make test: every test — unit, adapter (against the local stack) and
# end-to-end (real agents, the real AWS CLI and boto3). Starts the local stack
# and control plane when none runs, and stops what it started.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

# --faults (make test-faults): the fault suite alone, tests/test_faults*.py.
FAULTS_ONLY=no
case "${1:-}" in
  --faults) FAULTS_ONLY=yes ;;
  "") ;;
  *) die "usage: infra/test.sh [--faults]" ;;
esac

# Time limits in seconds, each overridable by its variable. Well above what
# the suites take (the cargo tests 1-2 min once built, the end-to-end suite
# 26-28 min on two cores), so that only a hang reaches them; the end-to-end
# limit still ends a hung run within the CI's 90 minutes.
# The per-test limit is above the end-to-end tests' own waits (the longest
# adds up to 6 min, in test_rate_control), so those fail first, with their
# own message; it includes the fleet's start-up in the first test.
: "${STEWARD_CARGO_TESTS_LIMIT:=900}"
: "${STEWARD_E2E_LIMIT:=3600}"
: "${STEWARD_E2E_TEST_LIMIT:=600}"
for var in STEWARD_CARGO_TESTS_LIMIT STEWARD_E2E_LIMIT STEWARD_E2E_TEST_LIMIT; do
  [[ "${!var}" =~ ^[1-9][0-9]*$ ]] || die "$var must be a whole number of seconds, not '${!var}'"
done

# run_suite NAME LIMIT_VAR CMD...: runs one suite; fails naming it when it is
# not done within $LIMIT_VAR seconds. Past the limit the suite gets SIGINT
# (pytest still tears its fleet down), and SIGKILL a minute later. timeout
# runs it in a process group of its own, which a Ctrl-C at the terminal does
# not reach: the trap passes the interrupt on (timeout hands it to the suite).
run_suite() {
  local name=$1 var=$2 limit=${!2} started=$SECONDS pid rc=0
  shift 2
  timeout --signal=INT --kill-after=60 "$limit" "$@" &
  pid=$!
  trap 'kill -INT "$pid" 2>/dev/null || true' INT TERM
  # A trapped signal cuts a wait short: wait again until the suite is gone.
  while kill -0 "$pid" 2>/dev/null; do wait "$pid" || true; done
  wait "$pid" || rc=$?
  trap - INT TERM
  # 124: timed out; 137: killed, after the limit when it was timeout's kill.
  if (( rc == 124 || (rc == 137 && SECONDS - started >= limit) )); then
    die "$name did not finish within ${limit}s (a test hangs?); $var sets the limit"
  fi
  return "$rc"
}

bash infra/install.sh
say "==> building"
# The api function embeds the console's build (functions/api/build.rs).
bash infra/console.sh build
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

if [[ "$FAULTS_ONLY" == yes ]]; then
  say "==> the fault suite"
  run_suite "the fault suite (pytest tests/test_faults*.py)" STEWARD_E2E_LIMIT \
    "$LOCAL/venv/bin/python" -m pytest tests/test_faults*.py -q -p no:cacheprovider \
    --timeout="$STEWARD_E2E_TEST_LIMIT"
  exit 0
fi

say "==> the console's unit tests (vitest)"
(cd console && npx --no-install vitest run --reporter=dot)
say "==> unit and adapter tests"
run_suite "the unit and adapter tests (cargo test)" STEWARD_CARGO_TESTS_LIMIT \
  cargo test --workspace -- --include-ignored
say "==> Debian test node root (infra/debian-root.sh; built once, then cached)"
bash infra/debian-root.sh ensure
say "==> end-to-end tests"
# pytest-timeout fails a test that overruns, by name, and the run goes on.
run_suite "the end-to-end tests (pytest tests)" STEWARD_E2E_LIMIT \
  "$LOCAL/venv/bin/python" -m pytest tests -q -p no:cacheprovider \
  --timeout="$STEWARD_E2E_TEST_LIMIT"
