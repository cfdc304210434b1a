#!/usr/bin/env python3
"""Creates the first (admin) IAM user and access key of a deployed Steward
stack and writes an AWS CLI config file with a `steward` profile for it.

    infra/admin-key.py --stack-name steward --region eu-west-1 [--config-file steward.config]

It reads the stack's outputs (AccessKeysTableName, UsersTableName, DataKeyId,
ApiUrl) with your own AWS credentials, creates the user `admin` with an
inline policy allowing everything (unless it exists), encrypts a new secret
under the stack's DataKey with the access key id as encryption context, and
stores the key for that user, exactly as local provisioning does. Run it
again with the same config file and it reuses the key it wrote. Every other
user and key is then made with `aws iam` against the stack's API.
`--table/--users-table/--key-id/--api-url` name the resources directly
instead (with `--endpoint-url` for an emulator).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
from provision import ProvisionError, ensure_admin_key, write_private  # noqa: E402


def stack_outputs(name: str, region: str) -> dict[str, str]:
    cfn = boto3.client("cloudformation", region_name=region)
    stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stack-name", help="the CloudFormation stack `sam deploy` created")
    ap.add_argument("--region", default=boto3.session.Session().region_name or "us-east-1")
    ap.add_argument("--table", help="access-keys table (instead of --stack-name)")
    ap.add_argument("--users-table", help="users table (instead of --stack-name)")
    ap.add_argument("--user-name", default="admin", help="the IAM user the key is for (default admin)")
    ap.add_argument("--key-id", help="DataKey id (instead of --stack-name)")
    ap.add_argument("--api-url", help="the API's URL (instead of --stack-name)")
    ap.add_argument("--endpoint-url", help="KMS endpoint of an emulator")
    ap.add_argument("--dynamodb-endpoint-url", help="DynamoDB endpoint of an emulator")
    ap.add_argument("--config-file", default="steward.config", help="AWS CLI config file to write (mode 600)")
    args = ap.parse_args()

    try:
        if args.stack_name:
            out = stack_outputs(args.stack_name, args.region)
            table, users, key_id, api_url = (
                out["AccessKeysTableName"], out["UsersTableName"], out["DataKeyId"], out["ApiUrl"]
            )
        elif args.table and args.users_table and args.key_id and args.api_url:
            table, users, key_id, api_url = args.table, args.users_table, args.key_id, args.api_url
        else:
            ap.error("give --stack-name, or all of --table, --users-table, --key-id and --api-url")
        ddb = boto3.client("dynamodb", region_name=args.region, endpoint_url=args.dynamodb_endpoint_url)
        kms = boto3.client("kms", region_name=args.region, endpoint_url=args.endpoint_url)
        config = Path(args.config_file)
        access_key_id, secret, action = ensure_admin_key(
            table, users, key_id, config, ddb=ddb, kms=kms, user_name=args.user_name
        )
    except KeyError as e:
        print(f"admin-key: error: the stack has no output {e}; is it a Steward stack?", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError, ProvisionError) as e:
        print(f"admin-key: error: {e}", file=sys.stderr)
        return 1

    write_private(
        config,
        "\n".join(
            [
                "# Written by infra/admin-key.py: a Steward API and its admin key.",
                "[profile steward]",
                f"region = {args.region}",
                f"endpoint_url = {api_url.rstrip('/')}",
                f"aws_access_key_id = {access_key_id}",
                f"aws_secret_access_key = {secret}",
                "output = json",
                "",
            ]
        ),
    )
    print(f"admin access key {access_key_id} ({action}) of user {args.user_name}; profile 'steward' in {config}")
    print(f"use: AWS_CONFIG_FILE={config} AWS_PROFILE=steward aws ssm describe-instance-information")
    return 0


if __name__ == "__main__":
    sys.exit(main())
