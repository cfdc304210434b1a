#!/usr/bin/env bash
# The demo fleet: three real agent processes, two tagged env=dev and one
# env=prod, registered through SSM-style activations created with the AWS CLI.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

# The AWS CLI as an operator runs it: the steward profile alone says where and
# who (stack.env's emulator credentials and endpoints must not leak in).
AWS=(env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN
  -u AWS_ENDPOINT_URL -u AWS_ENDPOINT_URL_SSM
  AWS_CONFIG_FILE="$LOCAL/aws/config" AWS_PROFILE=steward "$LOCAL/venv/bin/aws")
NODES=(node1:dev node2:dev node3:prod)

fleet_stamp() { cat "$RUN_DIR/localstack.pid" 2>/dev/null || echo none; }

start_fleet() {
  load_stack_env
  if [[ -f "$RUN_DIR/fleet.stamp" && "$(cat "$RUN_DIR/fleet.stamp")" == "$(fleet_stamp)" ]]; then
    local all=1
    for n in "${NODES[@]}"; do is_running "agent-${n%%:*}" || all=0; done
    if [[ $all == 1 ]]; then say "fleet: three agents already running"; return 0; fi
  fi
  stop_fleet
  # The stack is in memory: identities from an earlier stack mean nothing now.
  rm -rf "$LOCAL/agents"
  declare -A code id
  for env in dev prod; do
    local limit=1; [[ $env == dev ]] && limit=2
    local out
    out="$("${AWS[@]}" ssm create-activation --default-instance-name "demo-$env" --iam-role steward-node \
      --registration-limit "$limit" --tags "Key=env,Value=$env" --output json)" \
      || die "create-activation failed; is the control plane up? see .local/logs/steward-local.log"
    code[$env]="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["ActivationCode"])' <<<"$out")"
    id[$env]="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["ActivationId"])' <<<"$out")"
  done
  for n in "${NODES[@]}"; do
    local name="${n%%:*}" env="${n##*:}" dir="$LOCAL/agents/${n%%:*}"
    mkdir -p "$dir"
    start_bg "agent-$name" "$BIN/steward-agent" --state-dir "$dir" \
      --api-url "http://127.0.0.1:$STEWARD_API_PORT" --sqs-endpoint "$AWS_ENDPOINT_URL" \
      --heartbeat-seconds 5 \
      run --activation-code "${code[$env]}" --activation-id "${id[$env]}"
  done
  fleet_stamp >"$RUN_DIR/fleet.stamp"
  say "fleet: waiting for three nodes to come online"
  for _ in $(seq 1 150); do
    local online
    online="$("${AWS[@]}" ssm describe-instance-information \
      --filters Key=PingStatus,Values=Online --query 'length(InstanceInformationList)' --output text 2>/dev/null || echo 0)"
    [[ "$online" == 3 ]] && { say "fleet: three nodes online"; return 0; }
    for n in "${NODES[@]}"; do
      is_running "agent-${n%%:*}" || { tail -20 "$LOG_DIR/agent-${n%%:*}.log" >&2; die "agent ${n%%:*} exited; see .local/logs/agent-${n%%:*}.log"; }
    done
    sleep 0.2
  done
  die "the agents did not come online within 30s; see .local/logs/agent-*.log"
}

stop_fleet() {
  for n in "${NODES[@]}"; do stop_bg "agent-${n%%:*}"; done
  rm -f "$RUN_DIR/fleet.stamp"
}

case "${1:-}" in
  start) start_fleet ;;
  stop) stop_fleet ;;
  *) die "usage: infra/fleet.sh start|stop" ;;
esac
