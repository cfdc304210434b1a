#!/usr/bin/env bash
# make down: stop the agents, the control plane and the local stack.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
bash "$ROOT/infra/fleet.sh" stop
bash "$ROOT/infra/control-plane.sh" stop
bash "$ROOT/infra/stack.sh" stop
say "stopped: agents, control plane, LocalStack, DynamoDB Local"
