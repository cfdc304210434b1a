"""Command output to S3 as a real AWS deploy allows it: only the buckets the
stack may write take output (others are refused at SendCommand, before
anything is stored), and a node running a command can get fresh upload URLs
for its own output (`Steward.GetOutputUploadUrls`, signed with its key)."""

import base64
import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError

from fleet import aws, code, listed, localstack_client, online_fleet, wait_command_final, wait_for


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with online_fleet(tmp_path_factory.mktemp("fleet"), s3out=["node", "other"]) as f:
        yield f


def node_id(fleet, name="node"):
    return fleet.agents[name].instance_id()


def allowed(fleet):
    """The buckets this stack writes output to: its own, then the extra ones."""
    extra = [b.strip() for b in fleet.env.get("STEWARD_OUTPUT_BUCKETS", "").split(",") if b.strip()]
    return [fleet.env["STEWARD_OUTPUT_BUCKET"], *extra]


def commented(ssm, comment):
    return [c for c in listed(ssm, "list_commands", "Commands") if c["Comment"] == comment]


def test_an_unlisted_bucket_is_refused_and_nothing_is_stored(fleet):
    elsewhere = f"not-this-stack-{uuid.uuid4().hex[:12]}"
    comment = f"e2e unlisted bucket {uuid.uuid4().hex}"
    with pytest.raises(ClientError) as e:
        fleet.ssm.send_command(
            DocumentName="AWS-RunShellScript",
            InstanceIds=[node_id(fleet)],
            Parameters={"commands": ["echo never"]},
            OutputS3BucketName=elsewhere,
            Comment=comment,
        )
    assert code(e) == "InvalidOutputFolder"
    message = e.value.response["Error"]["Message"]
    assert elsewhere in message and fleet.env["STEWARD_OUTPUT_BUCKET"] in message
    assert "OutputBuckets" in message
    proc = aws(
        "ssm", "send-command", "--document-name", "AWS-RunShellScript",
        "--instance-ids", node_id(fleet), "--parameters", "commands=true",
        "--output-s3-bucket-name", elsewhere, "--comment", comment, check=False,
    )
    assert proc.returncode != 0 and "(InvalidOutputFolder)" in proc.stderr, proc.stderr
    # Neither refusal stored a command.
    assert commented(fleet.ssm, comment) == []


def test_the_stacks_bucket_takes_the_output_with_the_aws_cli(fleet):
    bucket = allowed(fleet)[0]
    marker = uuid.uuid4().hex
    sent = aws(
        "ssm", "send-command", "--document-name", "AWS-RunShellScript",
        "--instance-ids", node_id(fleet), "--parameters", f"commands=echo {marker}",
        "--output-s3-bucket-name", bucket, "--output-s3-key-prefix", "e2e-out",
    )["Command"]
    cid = sent["CommandId"]
    assert sent["OutputS3BucketName"] == bucket
    assert wait_command_final(fleet.ssm, cid)["Status"] == "Success"
    got = fleet.ssm.get_command_invocation(CommandId=cid, InstanceId=node_id(fleet))
    assert got["StandardOutputUrl"]
    key = f"e2e-out/{cid}/{node_id(fleet)}/awsrunShellScript/0.awsrunShellScript/stdout"
    body = localstack_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == f"{marker}\n".encode()


# --- Steward.GetOutputUploadUrls ------------------------------------------------


def node_key(fleet, name):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    # PKCS#8 v2 (with the public key), which `cryptography` does not read:
    # the seed is the OCTET STRING inside the privateKey OCTET STRING.
    der = (fleet.agents[name].state_dir / "node.key").read_bytes()
    at = der.index(bytes([0x04, 0x22, 0x04, 0x20])) + 4
    return Ed25519PrivateKey.from_private_bytes(der[at:at + 32])


def upload_urls_request(fleet, command_id, step=0, name="node", as_node=None):
    """A GetOutputUploadUrls request signed by agent `name`'s key, naming
    node `as_node` (default: its own)."""
    instance = node_id(fleet, as_node or name)
    now = int(time.time())
    message = "\n".join(["GetOutputUploadUrls", instance, command_id, str(step), str(now)]).encode()
    return {
        "InstanceId": instance,
        "CommandId": command_id,
        "StepIndex": step,
        "Timestamp": now,
        "Signature": base64.b64encode(node_key(fleet, name).sign(message)).decode(),
    }


def node_request(fleet, body):
    """POSTs the agent operation, as the agent does; returns (status, JSON)."""
    req = urllib.request.Request(
        fleet.api_url,
        data=json.dumps(body).encode(),
        headers={"x-amz-target": "Steward.GetOutputUploadUrls", "content-type": "application/x-amz-json-1.1"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def put(url, body):
    req = urllib.request.Request(url, data=body, method="PUT")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status


def running(ssm, cid):
    def probe():
        inv = ssm.list_command_invocations(CommandId=cid)["CommandInvocations"]
        return inv and inv[0]["Status"] == "InProgress"

    wait_for("the command to run", probe)


def test_a_running_node_gets_fresh_urls_for_its_own_output_only(fleet):
    ssm = fleet.ssm
    bucket = allowed(fleet)[0]
    cid = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[node_id(fleet)],
        Parameters={"commands": ["sleep 60"]},
        OutputS3BucketName=bucket,
        OutputS3KeyPrefix="e2e-fresh",
    )["Command"]["CommandId"]
    plain = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[node_id(fleet)],
        Parameters={"commands": ["sleep 60"]},
    )["Command"]["CommandId"]
    try:
        running(ssm, cid)
        status, answer = node_request(fleet, upload_urls_request(fleet, cid))
        assert status == 200, answer
        key = f"e2e-fresh/{cid}/{node_id(fleet)}/awsrunShellScript/0.awsrunShellScript"
        assert f"/{key}/stdout?" in answer["StdoutPutUrl"]
        assert f"/{key}/stderr?" in answer["StderrPutUrl"]
        # They work: the object appears where SSM's layout puts it.
        assert put(answer["StdoutPutUrl"], b"fresh") == 200
        got = localstack_client("s3").get_object(Bucket=bucket, Key=f"{key}/stdout")["Body"].read()
        assert got == b"fresh"

        # Another registered node, signing rightly, was not sent the command.
        status, answer = node_request(fleet, upload_urls_request(fleet, cid, name="other"))
        assert status == 400 and answer["__type"] == "AccessDeniedException", answer
        # Another node's key, claiming to be this node.
        status, answer = node_request(fleet, upload_urls_request(fleet, cid, name="other", as_node="node"))
        assert status == 400 and answer["__type"] == "InvalidSignatureException", answer
        # Signed for one step, asked for another.
        forged = upload_urls_request(fleet, cid)
        forged["StepIndex"] = 1
        status, answer = node_request(fleet, forged)
        assert status == 400 and answer["__type"] == "InvalidSignatureException", answer
        # A step the command does not have.
        status, answer = node_request(fleet, upload_urls_request(fleet, cid, step=1))
        assert status == 400 and answer["__type"] == "ValidationException", answer
        # A command without S3 output.
        running(ssm, plain)
        status, answer = node_request(fleet, upload_urls_request(fleet, plain))
        assert status == 400 and answer["__type"] == "AccessDeniedException", answer
    finally:
        ssm.cancel_command(CommandId=cid)
        ssm.cancel_command(CommandId=plain)
    wait_command_final(ssm, cid)
    wait_command_final(ssm, plain)
