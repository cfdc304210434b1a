"""infra/admin-key.py, the first key of a deployed stack, run against the
local stack through the same code path (emulator endpoints instead of AWS)."""

import configparser
import os
import subprocess
import sys
import uuid

import boto3

from fleet import ROOT, profile, stack_env


def test_admin_key_for_a_deployed_stack_works_and_is_reused(tmp_path):
    env = stack_env()
    config = tmp_path / "steward.config"
    # A user of this run's own: each run adds a key, and a user has at most two.
    user = f"admin-{uuid.uuid4().hex[:8]}"
    argv = [
        sys.executable, str(ROOT / "infra" / "admin-key.py"),
        "--region", env["AWS_REGION"],
        "--table", env["STEWARD_ACCESS_KEYS_TABLE"],
        "--users-table", env["STEWARD_USERS_TABLE"],
        "--user-name", user,
        "--key-id", env["STEWARD_DATA_KEY_ID"],
        "--api-url", profile()["endpoint_url"],
        "--endpoint-url", env["AWS_ENDPOINT_URL"],
        "--dynamodb-endpoint-url", env["AWS_ENDPOINT_URL_DYNAMODB"],
        "--config-file", str(config),
    ]
    run_env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test")
    first = subprocess.run(argv, env=run_env, capture_output=True, text=True, check=True)
    assert "(created)" in first.stdout and user in first.stdout
    assert oct(config.stat().st_mode & 0o777) == "0o600"

    written = configparser.ConfigParser()
    written.read(config)
    p = written["profile steward"]
    ssm = boto3.client(
        "ssm",
        endpoint_url=p["endpoint_url"],
        region_name=p["region"],
        aws_access_key_id=p["aws_access_key_id"],
        aws_secret_access_key=p["aws_secret_access_key"],
    )
    assert "InstanceInformationList" in ssm.describe_instance_information()

    again = subprocess.run(argv, env=run_env, capture_output=True, text=True, check=True)
    assert "(reused)" in again.stdout
    assert first.stdout.split()[3] == again.stdout.split()[3]

    # The key is an IAM user's like any other: its policy is the user's.
    iam = boto3.client(
        "iam",
        endpoint_url=p["endpoint_url"],
        region_name=p["region"],
        aws_access_key_id=p["aws_access_key_id"],
        aws_secret_access_key=p["aws_secret_access_key"],
    )
    keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [p["aws_access_key_id"]]
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == ["steward-admin"]
