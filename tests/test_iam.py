"""Operator identities through IAM's own API on Steward's endpoint: the real
`aws iam` CLI and boto3's IAM client create users, inline policies and
access keys, and the keys are what the policies say everywhere."""

import json
import os
import subprocess
import uuid

import pytest
from botocore.exceptions import ClientError

from fleet import AWS_CLI, AWS_CONFIG, aws, iam_client, key_client, restricted_key, ssm_client, wait_for

pytestmark = pytest.mark.usefixtures("stack")


def code(e):
    return e.value.response["Error"]["Code"]


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def aws_as(key_id, secret, *args):
    """The AWS CLI with another key (no profile's key), on Steward's endpoint."""
    env = dict(os.environ, AWS_CONFIG_FILE=str(AWS_CONFIG), AWS_PROFILE="steward",
               AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)
    for var in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM"):
        env.pop(var, None)
    return subprocess.run([str(AWS_CLI), *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=120)


READ_DEV = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "arn:aws:ssm:*:*:parameter/app/dev/*"}
    ],
}


def test_a_user_key_does_what_its_policy_says_until_it_is_made_inactive():
    user = unique("dev-reader")
    root = f"/app/dev/{uuid.uuid4().hex[:8]}"
    prod = f"/app/prod/{uuid.uuid4().hex[:8]}"
    admin = ssm_client()
    admin.put_parameter(Name=f"{root}/db", Type="String", Value="dev-db")
    admin.put_parameter(Name=f"{prod}/db", Type="String", Value="prod-db")

    created = aws("iam", "create-user", "--user-name", user)["User"]
    assert created["UserName"] == user and created["Path"] == "/"
    assert created["Arn"].endswith(f":user/{user}") and created["UserId"].startswith("AIDA")
    aws("iam", "put-user-policy", "--user-name", user, "--policy-name", "read-dev",
        "--policy-document", json.dumps(READ_DEV))
    got = aws("iam", "get-user-policy", "--user-name", user, "--policy-name", "read-dev")
    assert got["PolicyDocument"] == READ_DEV  # the CLI decodes IAM's URL-encoded document
    assert aws("iam", "list-user-policies", "--user-name", user)["PolicyNames"] == ["read-dev"]
    key = aws("iam", "create-access-key", "--user-name", user)["AccessKey"]
    assert key["Status"] == "Active" and key["AccessKeyId"].startswith("AKST") and len(key["SecretAccessKey"]) == 40
    listed = aws("iam", "list-access-keys", "--user-name", user)["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in listed] == [key["AccessKeyId"]]
    assert "SecretAccessKey" not in listed[0]

    ssm = key_client("ssm", key["AccessKeyId"], key["SecretAccessKey"])
    assert ssm.get_parameter(Name=f"{root}/db")["Parameter"]["Value"] == "dev-db"
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name=f"{prod}/db")
    assert code(e) == "AccessDeniedException"

    aws("iam", "update-access-key", "--user-name", user, "--access-key-id", key["AccessKeyId"], "--status", "Inactive")
    assert aws("iam", "list-access-keys", "--user-name", user)["AccessKeyMetadata"][0]["Status"] == "Inactive"

    def refused():
        try:
            ssm.get_parameter(Name=f"{root}/db")
        except ClientError as err:
            return err.response["Error"]["Code"] == "UnrecognizedClientException"
        return False

    wait_for("the inactive key to be refused", refused, timeout=90, interval=2)

    # A user with a key or a policy is not deleted.
    proc = aws("iam", "delete-user", "--user-name", user, check=False)
    assert proc.returncode != 0 and "DeleteConflict" in proc.stderr
    assert "must delete access keys first" in proc.stderr
    aws("iam", "delete-access-key", "--user-name", user, "--access-key-id", key["AccessKeyId"])
    proc = aws("iam", "delete-user", "--user-name", user, check=False)
    assert "must delete policies first" in proc.stderr
    aws("iam", "delete-user-policy", "--user-name", user, "--policy-name", "read-dev")
    aws("iam", "delete-user", "--user-name", user)
    proc = aws("iam", "get-user", "--user-name", user, check=False)
    assert "NoSuchEntity" in proc.stderr and f"The user with name {user} cannot be found." in proc.stderr


def test_a_deleted_key_is_refused():
    owner, key_id, secret = restricted_key(
        {"Statement": [{"Effect": "Allow", "Action": "ssm:DescribeInstanceInformation", "Resource": "*"}]}
    )
    ssm = key_client("ssm", key_id, secret)
    ssm.describe_instance_information()
    iam = iam_client()
    iam.delete_access_key(UserName=owner, AccessKeyId=key_id)

    def refused():
        try:
            ssm.describe_instance_information()
        except ClientError as err:
            return err.response["Error"]["Code"] == "UnrecognizedClientException"
        return False

    wait_for("the deleted key to be refused", refused, timeout=90, interval=2)


def test_a_key_without_iam_rights_gets_access_denied_in_iams_shape():
    _, key_id, secret = restricted_key(READ_DEV)
    proc = aws_as(key_id, secret, "iam", "list-users")
    assert proc.returncode != 0
    assert "AccessDenied" in proc.stderr and "iam:ListUsers" in proc.stderr
    with pytest.raises(ClientError) as e:
        key_client("iam", key_id, secret).create_user(UserName=unique("nope"))
    assert code(e) == "AccessDenied"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    # A wrong secret is IAM's SignatureDoesNotMatch, an unknown key InvalidClientTokenId.
    with pytest.raises(ClientError) as e:
        key_client("iam", key_id, "x" * 40).list_users()
    assert code(e) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as e:
        key_client("iam", "AKSTNOSUCHKEY0000000", "x" * 40).list_users()
    assert code(e) == "InvalidClientTokenId"


@pytest.mark.parametrize(
    "document",
    [
        "not json",
        json.dumps({"Statement": [{"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*",
                                   "Condition": {"StringEquals": {"aws:username": "x"}}}]}),
    ],
)
def test_a_malformed_policy_is_refused_and_changes_nothing(document):
    iam = iam_client()
    user = unique("malformed")
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="kept", PolicyDocument=json.dumps(READ_DEV))
    with pytest.raises(ClientError) as e:
        iam.put_user_policy(UserName=user, PolicyName="kept", PolicyDocument=document)
    assert code(e) == "MalformedPolicyDocument"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        iam.put_user_policy(UserName=user, PolicyName="other", PolicyDocument=document)
    assert code(e) == "MalformedPolicyDocument"
    assert iam.list_user_policies(UserName=user)["PolicyNames"] == ["kept"]
    assert iam.get_user_policy(UserName=user, PolicyName="kept")["PolicyDocument"] == READ_DEV


def test_iams_refusals_quota_and_paging_through_boto3():
    iam = iam_client()
    user = unique("quota")
    iam.create_user(UserName=user)
    with pytest.raises(ClientError) as e:
        iam.create_user(UserName=user.upper())
    assert code(e) == "EntityAlreadyExists"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    with pytest.raises(ClientError) as e:
        iam.create_user(UserName="no spaces allowed")
    assert code(e) == "ValidationError"
    with pytest.raises(ClientError) as e:
        iam.get_user(UserName=unique("ghost"))
    assert code(e) == "NoSuchEntity"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404

    iam.create_access_key(UserName=user)
    iam.create_access_key(UserName=user)
    with pytest.raises(ClientError) as e:
        iam.create_access_key(UserName=user)
    assert code(e) == "LimitExceeded"
    assert e.value.response["Error"]["Message"] == "Cannot exceed quota for AccessKeysPerUser: 2"
    assert len(iam.list_access_keys(UserName=user)["AccessKeyMetadata"]) == 2

    for n in range(3):
        iam.put_user_policy(UserName=user, PolicyName=f"p{n}", PolicyDocument=json.dumps(READ_DEV))
    first = iam.list_user_policies(UserName=user, MaxItems=2)
    assert first["PolicyNames"] == ["p0", "p1"] and first["IsTruncated"] is True
    rest = iam.list_user_policies(UserName=user, MaxItems=2, Marker=first["Marker"])
    assert rest["PolicyNames"] == ["p2"] and rest["IsTruncated"] is False

    # Paging users with the CLI's own paginator, a page of one at a time.
    names = [u["UserName"] for u in aws("iam", "list-users", "--page-size", "1")["Users"]]
    assert user in names and names == sorted(names, key=str.lower)
    page = iam.list_users(MaxItems=1)
    assert len(page["Users"]) == 1 and page["IsTruncated"] is True
