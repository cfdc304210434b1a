"""Run Command end to end: three real agents, the real AWS CLI and boto3."""

import base64
import json
import time
import uuid

import botocore.exceptions
import pytest

from fleet import (
    aws,
    dev_prod_fleet,
    invocations,
    listed,
    localstack_client,
    process_alive,
    ssm_client,
    wait_command_final,
    wait_for,
)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with dev_prod_fleet(tmp_path_factory.mktemp("fleet")) as f:
        yield f


def ids(fleet, *names):
    return sorted(fleet.agents[n].instance_id() for n in names)


def test_aws_cli_send_command_to_tag_targets(fleet):
    targets = f"Key=tag:suite,Values={fleet.suite}", "Key=tag:env,Values=dev"
    sent = aws(
        "ssm", "send-command", "--document-name", "AWS-RunShellScript",
        "--targets", *targets, "--parameters", 'commands=["echo hello from $(hostname)","uname -s"]',
        "--comment", "e2e cli",
    )["Command"]
    assert sent["DocumentName"] == "AWS-RunShellScript"
    assert sent["Status"] in {"Pending", "InProgress"}
    cid = sent["CommandId"]

    cmd = wait_command_final(fleet.ssm, cid)
    assert cmd["Status"] == "Success", cmd
    assert cmd["TargetCount"] == 2 and cmd["CompletedCount"] == 2 and cmd["ErrorCount"] == 0

    listed = aws("ssm", "list-command-invocations", "--command-id", cid, "--details")["CommandInvocations"]
    assert sorted(i["InstanceId"] for i in listed) == ids(fleet, "dev1", "dev2")
    for inv in listed:
        assert inv["Status"] == "Success" and inv["StatusDetails"] == "Success"
        plugin = inv["CommandPlugins"][0]
        assert plugin["Name"] == "aws:runShellScript"
        assert plugin["ResponseCode"] == 0
        assert "hello from" in plugin["Output"] and "Linux" in plugin["Output"]

        one = aws("ssm", "get-command-invocation", "--command-id", cid, "--instance-id", inv["InstanceId"])
        assert one["Status"] == "Success" and one["ResponseCode"] == 0
        assert "hello from" in one["StandardOutputContent"]
        assert one["StandardErrorContent"] == ""

    commands = aws("ssm", "list-commands", "--command-id", cid)["Commands"]
    assert commands[0]["Comment"] == "e2e cli"
    info = aws("ssm", "describe-instance-information")["InstanceInformationList"]
    assert set(ids(fleet, "dev1", "dev2", "prod1")) <= {i["InstanceId"] for i in info}


def test_boto3_send_command_reads_output_per_node(fleet):
    ssm = fleet.ssm
    cmd = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        Targets=fleet.targets("prod"),
        Parameters={"commands": ["echo node=$(cat /proc/sys/kernel/hostname)", "echo to-stderr >&2"]},
    )["Command"]
    final = wait_command_final(ssm, cmd["CommandId"])
    assert final["Status"] == "Success"
    (inv,) = invocations(ssm, cmd["CommandId"])
    assert inv["InstanceId"] == fleet.agents["prod1"].instance_id()
    got = ssm.get_command_invocation(CommandId=cmd["CommandId"], InstanceId=inv["InstanceId"])
    assert got["StandardOutputContent"].startswith("node=")
    assert got["StandardErrorContent"].strip() == "to-stderr"


def test_failing_script_is_failed_with_its_exit_code(fleet):
    ssm = fleet.ssm
    cmd = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=ids(fleet, "dev1"),
        Parameters={"commands": ["echo before", "exit 3"]},
    )["Command"]
    final = wait_command_final(ssm, cmd["CommandId"])
    assert final["Status"] == "Failed" and final["ErrorCount"] == 1
    (inv,) = invocations(ssm, cmd["CommandId"])
    assert inv["Status"] == "Failed" and inv["StatusDetails"] == "Failed"
    assert inv["CommandPlugins"][0]["ResponseCode"] == 3
    got = ssm.get_command_invocation(CommandId=cmd["CommandId"], InstanceId=inv["InstanceId"])
    assert got["ResponseCode"] == 3 and "before" in got["StandardOutputContent"]


def test_execution_timeout_kills_the_whole_process_group(fleet, tmp_path):
    ssm = fleet.ssm
    pidfile = tmp_path / "child.pid"
    cmd = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=ids(fleet, "dev2"),
        Parameters={
            "commands": [f"sleep 300 & echo $! > {pidfile}", "sleep 300"],
            "executionTimeout": ["3"],
        },
    )["Command"]
    final = wait_command_final(ssm, cmd["CommandId"])
    assert final["Status"] == "TimedOut", final
    (inv,) = invocations(ssm, cmd["CommandId"])
    assert inv["StatusDetails"] == "Execution Timed Out"
    child = int(pidfile.read_text())
    wait_for(f"background child {child} to be gone", lambda: not process_alive(child), timeout=15)


def test_cancel_stops_a_running_command(fleet, tmp_path):
    ssm = fleet.ssm
    pidfile = tmp_path / "long.pid"
    cmd = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=ids(fleet, "prod1"),
        Parameters={"commands": [f"echo $$ > {pidfile}", "sleep 300"]},
    )["Command"]
    cid = cmd["CommandId"]
    wait_for("the command to start", lambda: pidfile.exists() and pidfile.read_text().strip())
    aws("ssm", "cancel-command", "--command-id", cid)
    final = wait_command_final(ssm, cid)
    assert final["Status"] == "Cancelled", final
    (inv,) = invocations(ssm, cid)
    assert inv["Status"] == "Cancelled"
    shell = int(pidfile.read_text())
    wait_for(f"shell {shell} to be gone", lambda: not process_alive(shell), timeout=15)


def commented(ssm, comment):
    """The stored commands whose comment is `comment`."""
    return [c for c in listed(ssm, "list_commands", "Commands") if c["Comment"] == comment]


def test_unknown_instance_id_is_invalid(fleet):
    unknown = "mi-0123456789abcdef0"
    comment = f"e2e unknown node {uuid.uuid4().hex}"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fleet.ssm.send_command(
            DocumentName="AWS-RunShellScript",
            InstanceIds=[unknown],
            Parameters={"commands": ["true"]},
            Comment=comment,
        )
    assert e.value.response["Error"]["Code"] == "InvalidInstanceId"
    assert e.value.response["Error"]["Message"].startswith(f"Instances [[{unknown}]] not in a valid state for account")
    proc = aws(
        "ssm", "send-command", "--document-name", "AWS-RunShellScript",
        "--instance-ids", unknown, "--parameters", "commands=true", "--comment", comment, check=False,
    )
    assert proc.returncode != 0 and "(InvalidInstanceId)" in proc.stderr
    # Neither refusal stored a command: none in the whole listing carries
    # their comment, and the unknown node has none.
    assert commented(fleet.ssm, comment) == []
    assert listed(fleet.ssm, "list_commands", "Commands", InstanceId=unknown) == []


# SigV4's answer to a signature made with another secret, as AWS words it.
BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


def test_wrong_secret_is_refused_and_creates_nothing(fleet):
    bad = ssm_client(secret="x" * 40)
    comment = f"e2e wrong secret {uuid.uuid4().hex}"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.send_command(
            DocumentName="AWS-RunShellScript",
            Targets=fleet.targets("dev"),
            Parameters={"commands": ["true"]},
            Comment=comment,
        )
    assert e.value.response["Error"] == {"Code": "InvalidSignatureException", "Message": BAD_SIGNATURE}
    name = f"e2e-wrong-secret-{uuid.uuid4().hex[:12]}"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.create_activation(DefaultInstanceName=name, IamRole="steward-node")
    assert e.value.response["Error"] == {"Code": "InvalidSignatureException", "Message": BAD_SIGNATURE}
    assert commented(fleet.ssm, comment) == []
    activations = listed(
        fleet.ssm, "describe_activations", "ActivationList", Filters=[{"FilterKey": "DefaultInstanceName", "FilterValues": [name]}]
    )
    assert activations == []


def test_full_output_goes_to_s3_when_asked(fleet):
    ssm = fleet.ssm
    bucket = fleet.env["STEWARD_OUTPUT_BUCKET"]
    cmd = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=ids(fleet, "dev1"),
        Parameters={"commands": ["head -c 30000 /dev/zero | tr '\\0' 'a'"]},
        OutputS3BucketName=bucket,
        OutputS3KeyPrefix="e2e",
    )["Command"]
    assert wait_command_final(ssm, cmd["CommandId"])["Status"] == "Success"
    got = ssm.get_command_invocation(CommandId=cmd["CommandId"], InstanceId=ids(fleet, "dev1")[0])
    assert len(got["StandardOutputContent"]) == 24000
    assert got["StandardOutputUrl"]
    s3 = localstack_client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"e2e/{cmd['CommandId']}/")["Contents"]]
    stdout_key = next(k for k in keys if k.endswith("stdout"))
    assert len(s3.get_object(Bucket=bucket, Key=stdout_key)["Body"].read()) == 30000


# --- faults ------------------------------------------------------------------


def test_agent_killed_mid_command_does_not_run_it_twice(fleet, tmp_path):
    ssm = fleet.ssm
    solo = fleet.add("restarted", fleet.activation("solo", 1))
    (node,) = fleet.wait_online("restarted")
    marker, pidfile = tmp_path / "runs", tmp_path / "shell.pid"
    cmd = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[node],
        Parameters={"commands": [f"echo $$ > {pidfile}", f"echo run >> {marker}", "sleep 300"]},
    )["Command"]
    wait_for("the command to start", lambda: marker.exists())
    shell = int(pidfile.read_text())
    solo.kill()
    assert process_alive(shell)  # killing the agent alone leaves its command running
    solo.start()
    final = wait_command_final(ssm, cmd["CommandId"])
    assert final["Status"] == "Failed", final
    (inv,) = invocations(ssm, cmd["CommandId"])
    assert "not run again" in inv["CommandPlugins"][0]["Output"]
    # The restarted agent stops what its predecessor left running.
    wait_for(f"orphaned shell {shell} to be gone", lambda: not process_alive(shell), timeout=15)
    assert marker.read_text().count("run") == 1
    # The restarted agent still serves new commands.
    again = ssm.send_command(
        DocumentName="AWS-RunShellScript", InstanceIds=[node], Parameters={"commands": ["echo ok"]}
    )["Command"]
    assert wait_command_final(ssm, again["CommandId"])["Status"] == "Success"
    assert marker.read_text().count("run") == 1


def test_stopped_agent_turns_connection_lost_and_delivery_times_out(fleet):
    ssm = fleet.ssm
    gone = fleet.add("stopped", fleet.activation("gone", 1))
    (node,) = fleet.wait_online("stopped")
    gone.stop()

    def lost():
        info = ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [node]}])
        return info["InstanceInformationList"][0]["PingStatus"] == "ConnectionLost"

    wait_for("PingStatus ConnectionLost", lost, timeout=120)
    cmd = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[node],
        TimeoutSeconds=30,
        Parameters={"commands": ["echo never"]},
    )["Command"]
    final = wait_command_final(ssm, cmd["CommandId"], timeout=150)
    # The node's queue is still there, so the message was sent: it is never
    # received, and the delivery time-out ends it (Undeliverable is for a
    # node with no queue).
    (inv,) = invocations(ssm, cmd["CommandId"])
    assert (inv["Status"], inv["StatusDetails"]) == ("TimedOut", "Delivery Timed Out"), inv
    assert (final["Status"], final["StatusDetails"]) == ("TimedOut", "Delivery Timed Out"), final
    assert (final["DeliveryTimedOutCount"], final["ErrorCount"], final["CompletedCount"]) == (1, 0, 1), final


def test_dead_nodes_do_not_hold_up_the_living(fleet):
    """Ten targets, four of them ConnectionLost: the six live ones finish
    while the dead still wait for their delivery time-out, and the command
    ends when those time out. MaxConcurrency 2: dead nodes holding slots
    would stall it for the whole time-out."""
    ssm = fleet.ssm
    mixed = fleet.activation("mixed", 10)
    names = [f"mixed{i}" for i in range(10)]
    for n in names:
        fleet.add(n, mixed)
    fleet.wait_online(*names)
    dead = names[:4]
    for n in dead:
        fleet.agents[n].stop()
    dead_ids = {fleet.agents[n].instance_id() for n in dead}
    live_ids = {fleet.agents[n].instance_id() for n in names[4:]}

    def all_lost():
        info = ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": sorted(dead_ids)}])
        return all(i["PingStatus"] == "ConnectionLost" for i in info["InstanceInformationList"])

    wait_for("the four stopped nodes ConnectionLost", all_lost, timeout=120)
    cmd = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        Targets=fleet.targets("mixed"),
        MaxConcurrency="2",
        TimeoutSeconds=40,
        Parameters={"commands": ["echo alive"]},
    )["Command"]
    cid = cmd["CommandId"]
    assert cmd["TargetCount"] == 10

    def live_done():
        by_node = {i["InstanceId"]: i for i in invocations(ssm, cid)}
        return by_node if all(by_node.get(n, {}).get("Status") == "Success" for n in live_ids) else None

    by_node = wait_for("the six live nodes to succeed", live_done, timeout=35)
    # Before the dead nodes' delivery time-out: they were sent the command and wait.
    assert {by_node[n]["Status"] for n in dead_ids} == {"Pending"}, by_node
    assert ssm.list_commands(CommandId=cid)["Commands"][0]["Status"] == "InProgress"
    final = wait_command_final(ssm, cid, timeout=120)
    details = {i["InstanceId"]: i["StatusDetails"] for i in invocations(ssm, cid)}
    assert {details[n] for n in dead_ids} == {"Delivery Timed Out"}, details
    assert {details[n] for n in live_ids} == {"Success"}, details
    assert (final["CompletedCount"], final["DeliveryTimedOutCount"], final["ErrorCount"]) == (10, 4, 0), final
    assert (final["Status"], final["StatusDetails"]) == ("Failed", "Incomplete"), final


@pytest.fixture
def rejections(fleet):
    """A queue receiving the bus's 'Steward Agent Message Rejected' events."""
    sqs, events = localstack_client("sqs"), localstack_client("events")
    name = f"e2e-rejections-{fleet.suite}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = fleet.env.get("STEWARD_EVENT_BUS", "steward")
    events.put_rule(
        Name=name, EventBusName=bus,
        EventPattern=json.dumps({"detail-type": ["Steward Agent Message Rejected"]}),
    )
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    yield sqs, url
    events.remove_targets(Rule=name, EventBusName=bus, Ids=["q"])
    events.delete_rule(Name=name, EventBusName=bus)
    sqs.delete_queue(QueueUrl=url)


def test_unsigned_or_altered_messages_are_refused_and_reported(fleet, rejections, tmp_path):
    sqs_events, events_url = rejections
    node = ids(fleet, "dev1")[0]
    sqs = localstack_client("sqs")
    queue_url = sqs.get_queue_url(QueueName=f"{fleet.env.get('STEWARD_NODE_QUEUE_PREFIX', 'steward-node-')}{node}")["QueueUrl"]
    marker = tmp_path / "must-not-exist"
    now = time.time()
    payload = {
        "v": 1, "msg_id": str(uuid.uuid4()), "node_id": node, "issued_at": now, "expires_at": now + 600,
        "kind": "RunCommand",
        "body": {
            "command_id": str(uuid.uuid4()), "document_name": "AWS-RunShellScript", "document_version": "1",
            "steps": [{"name": "aws:runShellScript", "action": "aws:runShellScript",
                       "run_command": [f"touch {marker}"], "working_directory": "", "timeout_seconds": 60}],
            "uploads": [],
        },
    }
    raw = base64.b64encode(json.dumps(payload).encode()).decode()
    unsigned = {"v": 1, "payload": raw, "sig": "", "key": ""}
    # A signature that is well-formed but over other bytes: what an altered message carries.
    altered = {"v": 1, "payload": raw, "sig": base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode(), "key": "k"}
    sent = set()
    for body in (unsigned, altered):
        sent.add(sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))["MessageId"])

    reported = set()

    def probe():
        for m in sqs_events.receive_message(QueueUrl=events_url, WaitTimeSeconds=2, MaxNumberOfMessages=10).get("Messages", []):
            detail = json.loads(m["Body"])["detail"]
            if detail.get("instance-id") == node:
                reported.add(detail.get("queue-message-id"))
        return sent <= reported

    wait_for("both refusals reported on the bus", probe, timeout=60)
    assert not marker.exists()
