"""{{ssm:…}} and {{ssm-secure:…}} references in Run Command, end to end: a
real agent, boto3 and the AWS CLI. The secret is checked absent from every
record, listing, output object, table and file the run leaves behind."""

import base64
import hashlib
import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from fleet import (
    aws,
    code,
    LOCAL,
    localstack_client,
    online_fleet,
    restricted_client,
    stack_env,
    wait_command_final,
    wait_for,
)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with online_fleet(tmp_path_factory.mktemp("references"), refs=["node"]) as f:
        yield f


@pytest.fixture
def root():
    return f"/e2e-refs-{uuid.uuid4().hex[:10]}"


def node_id(fleet):
    return fleet.agents["node"].instance_id()


def shell(fleet, *commands, **extra):
    return dict(
        InstanceIds=[node_id(fleet)],
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": list(commands)},
        **extra,
    )


def scan_all_tables(needle):
    """Every item of every DynamoDB table that holds `needle`."""
    ddb = localstack_client("dynamodb")
    hits = []
    for table in ddb.list_tables()["TableNames"]:
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                if needle in json.dumps(item, default=str):
                    hits.append((table, item))
    return hits


def files_holding(directory, needle):
    return [p for p in directory.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def assert_shows_nowhere(fleet, cid, secret, bucket, prefix):
    """Asserts `secret` is in no view of the command, no output object, no
    table item, no file of the agent (its log included) and not in the
    control plane's log. Returns (views, {key: body}) for further checks."""
    ssm, node = fleet.ssm, node_id(fleet)
    views = [
        json.dumps(ssm.list_commands(CommandId=cid), default=str),
        json.dumps(aws("ssm", "list-commands", "--command-id", cid)),
        json.dumps(aws("ssm", "list-command-invocations", "--command-id", cid, "--details")),
        json.dumps(aws("ssm", "get-command-invocation", "--command-id", cid, "--instance-id", node)),
        json.dumps(ssm.list_command_invocations(CommandId=cid, Details=True), default=str),
        json.dumps(ssm.get_command_invocation(CommandId=cid, InstanceId=node), default=str),
    ]
    for view in views:
        assert secret not in view, view

    s3 = localstack_client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    bodies = {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode() for key in keys}
    for key, body in bodies.items():
        assert secret not in body, key

    assert scan_all_tables(secret) == []
    assert files_holding(fleet.agents["node"].state_dir, secret) == []
    control_plane_log = LOCAL / "logs" / "steward-local.log"
    if control_plane_log.exists():
        assert secret.encode() not in control_plane_log.read_bytes()
    return views, bodies


def test_references_resolve_and_the_secret_shows_nowhere(fleet, root):
    ssm = fleet.ssm
    plain = f"plain-{uuid.uuid4().hex}"
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    ssm.put_parameter(Name=f"{root}/x", Type="String", Value=plain)
    ssm.put_parameter(Name=f"{root}/s", Type="SecureString", Value=secret)
    bucket = stack_env()["STEWARD_OUTPUT_BUCKET"]
    prefix = f"refs-{uuid.uuid4().hex[:8]}"
    commands = [
        f"echo {{{{ssm:{root}/x}}}}",
        f'echo "secret is {{{{ ssm-secure:{root}/s }}}}"',
        f"printf %s '{{{{ssm-secure:{root}/s:1}}}}' | sha256sum",
    ]
    sent = ssm.send_command(**shell(fleet, *commands, OutputS3BucketName=bucket, OutputS3KeyPrefix=prefix))["Command"]
    cid = sent["CommandId"]
    assert sent["Parameters"]["commands"] == commands

    final = wait_command_final(ssm, cid)
    assert final["Status"] == "Success", final
    inv = ssm.get_command_invocation(CommandId=cid, InstanceId=node_id(fleet))
    out = inv["StandardOutputContent"]
    assert plain in out
    assert "secret is ****" in out
    assert hashlib.sha256(secret.encode()).hexdigest() in out
    assert secret not in out

    # What operators read keeps the references, never a value.
    views, bodies = assert_shows_nowhere(fleet, cid, secret, bucket, prefix)
    assert plain not in views[0] and f"{{{{ssm:{root}/x}}}}" in views[0]
    assert any(k.endswith("/stdout") for k in bodies), list(bodies)
    for key, body in bodies.items():
        if key.endswith("/stdout"):
            assert "secret is ****" in body and plain in body


def test_a_refused_working_directory_shows_no_secure_value(fleet, root):
    """The agent's own refusal quotes the working directory it was given
    with the value written in: it is masked like the step's output."""
    ssm = fleet.ssm
    secret = f"S3cr3t-MARKER-{uuid.uuid4().hex}"
    ssm.put_parameter(Name=f"{root}/db/password", Type="SecureString", Value=secret)
    bucket = stack_env()["STEWARD_OUTPUT_BUCKET"]
    prefix = f"refs-nodir-{uuid.uuid4().hex[:8]}"
    request = shell(fleet, "pwd", OutputS3BucketName=bucket, OutputS3KeyPrefix=prefix)
    request["Parameters"]["workingDirectory"] = [f"/tmp/nodir-{{{{ssm-secure:{root}/db/password}}}}"]
    cid = ssm.send_command(**request)["Command"]["CommandId"]

    assert wait_command_final(ssm, cid)["Status"] == "Failed"
    inv = ssm.get_command_invocation(CommandId=cid, InstanceId=node_id(fleet))
    assert inv["Status"] == "Failed"
    err = inv["StandardErrorContent"]
    assert "working directory /tmp/nodir-**** does not exist" in err, err
    assert inv["StandardOutputContent"] == ""

    _, bodies = assert_shows_nowhere(fleet, cid, secret, bucket, prefix)
    stderr = [body for key, body in bodies.items() if key.endswith("/stderr")]
    assert stderr and "/tmp/nodir-****" in stderr[0], list(bodies)


def test_a_missing_secure_reference_is_refused_and_sends_nothing(fleet, root):
    comment = f"refs-missing-{uuid.uuid4().hex[:8]}"
    with pytest.raises(ClientError) as e:
        fleet.ssm.send_command(**shell(fleet, f"echo {{{{ssm-secure:{root}/nope}}}}", Comment=comment))
    assert code(e) == "InvalidParameters"
    assert f"{root}/nope" in e.value.response["Error"]["Message"]
    assert scan_all_tables(comment) == []


def test_a_secure_string_referenced_as_plain_is_refused(fleet, root):
    fleet.ssm.put_parameter(Name=f"{root}/s", Type="SecureString", Value="v-" + uuid.uuid4().hex)
    with pytest.raises(ClientError) as e:
        fleet.ssm.send_command(**shell(fleet, f"echo {{{{ssm:{root}/s}}}}"))
    assert code(e) == "InvalidParameters"
    assert "ssm-secure" in e.value.response["Error"]["Message"]


def test_a_key_without_kms_decrypt_cannot_reference_a_secure_string(fleet, root):
    fleet.ssm.put_parameter(Name=f"{root}/x", Type="String", Value="ok")
    fleet.ssm.put_parameter(Name=f"{root}/s", Type="SecureString", Value="v-" + uuid.uuid4().hex)
    restricted = restricted_client(
        {"Statement": [{"Effect": "Allow", "Action": ["ssm:*"], "Resource": "*"}]}, user_name="no-kms"
    )
    with pytest.raises(ClientError) as e:
        restricted.send_command(**shell(fleet, f"echo {{{{ssm-secure:{root}/s}}}}"))
    assert code(e) == "AccessDeniedException"
    assert "kms:Decrypt" in e.value.response["Error"]["Message"]
    # The same key may reference what it can read.
    cid = restricted.send_command(**shell(fleet, f"echo {{{{ssm:{root}/x}}}}"))["Command"]["CommandId"]
    assert wait_command_final(fleet.ssm, cid)["Status"] == "Success"


def node_request(fleet, body):
    """POSTs an agent operation, as the agent does; returns (status, JSON)."""
    req = urllib.request.Request(
        fleet.api_url,
        data=json.dumps(body).encode(),
        headers={"x-amz-target": "Steward.GetNodeParameters", "content-type": "application/x-amz-json-1.1"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def signed(fleet, command_id, names):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    # PKCS#8 v2 (with the public key), which `cryptography` does not read:
    # the seed is the OCTET STRING inside the privateKey OCTET STRING.
    der = (fleet.agents["node"].state_dir / "node.key").read_bytes()
    at = der.index(bytes([0x04, 0x22, 0x04, 0x20])) + 4
    key = Ed25519PrivateKey.from_private_bytes(der[at:at + 32])
    now = int(time.time())
    message = "\n".join(["GetNodeParameters", node_id(fleet), command_id, str(now), *names]).encode()
    return {
        "InstanceId": node_id(fleet),
        "CommandId": command_id,
        "Names": names,
        "Timestamp": now,
        "Signature": base64.b64encode(key.sign(message)).decode(),
    }


def test_the_node_gets_values_only_for_a_running_command_it_was_sent(fleet, root):
    ssm = fleet.ssm
    secret = "v-" + uuid.uuid4().hex
    ssm.put_parameter(Name=f"{root}/s", Type="SecureString", Value=secret)
    ssm.put_parameter(Name=f"{root}/other", Type="SecureString", Value="o-" + uuid.uuid4().hex)
    sent = ssm.send_command(**shell(fleet, f"true {{{{ssm-secure:{root}/s}}}}", "sleep 60"))["Command"]
    cid = sent["CommandId"]
    try:
        # While it runs: its own reference is answered, another is not.
        def running():
            inv = ssm.list_command_invocations(CommandId=cid)["CommandInvocations"]
            return inv and inv[0]["Status"] == "InProgress"

        wait_for("the command to run", running)
        status, answer = node_request(fleet, signed(fleet, cid, [f"{root}/s"]))
        assert status == 200 and answer["Parameters"] == [{"Name": f"{root}/s", "Value": secret}]
        status, answer = node_request(fleet, signed(fleet, cid, [f"{root}/other"]))
        assert status == 400 and answer["__type"] == "AccessDeniedException"
        forged = signed(fleet, cid, [f"{root}/s"])
        forged["Names"] = [f"{root}/other"]
        status, answer = node_request(fleet, forged)
        assert status == 400 and answer["__type"] == "InvalidSignatureException"
    finally:
        ssm.cancel_command(CommandId=cid)
    wait_command_final(ssm, cid)
    # Once it is over, nothing more is answered.
    status, answer = node_request(fleet, signed(fleet, cid, [f"{root}/s"]))
    assert status == 400 and answer["__type"] == "AccessDeniedException"
