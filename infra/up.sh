#!/usr/bin/env bash
# make up: everything a new user needs to see a fleet being managed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

say "==> installing what is missing (LocalStack, DynamoDB Local, Java, AWS CLI) into .local/"
bash infra/install.sh
say "==> building"
bash infra/console.sh build
cargo build -p steward-local -p steward-agent -p steward-cli
say "==> starting LocalStack and DynamoDB Local"
bash infra/stack.sh start
say "==> provisioning the resources template.yaml declares"
"$LOCAL/venv/bin/python" infra/provision.py
say "==> starting the control plane"
bash infra/control-plane.sh start
say "==> starting three agents"
bash infra/fleet.sh start

export AWS_CONFIG_FILE="$LOCAL/aws/config" AWS_PROFILE=steward
API_URL=$(sed -n 's/^export AWS_ENDPOINT_URL_SSM=//p' "$LOCAL/stack.env")
say "==> running 'uname -a' on the env=dev nodes"
"$BIN/steward" run --targets tag:env=dev -- uname -a

cat <<MSG

Steward is running locally.
  AWS CLI:  export AWS_CONFIG_FILE=$LOCAL/aws/config AWS_PROFILE=steward
            $LOCAL/venv/bin/aws ssm send-command --document-name AWS-RunShellScript \\
              --targets Key=tag:env,Values=dev --parameters commands='uname -a'
  steward:  $BIN/steward nodes
            $BIN/steward run --targets tag:env=prod -- df -h
  console:  $API_URL/console/
            sign in with the admin key: aws_access_key_id and aws_secret_access_key in $LOCAL/aws/config
  logs:     .local/logs/
  stop:     make down
MSG
