"""DeregisterManagedInstance end to end: real agents, the real AWS CLI, boto3
and the steward CLI. A deregistered node leaves the fleet (listing, targets,
queue, tags, credentials) and keeps its command history; its agent says so
and backs off; a command still waiting on it ends."""

import re
import signal
import time

import pytest

from fleet import (
    FINAL,
    Fleet,
    aws,
    deregister,
    localstack_client,
    refused,
    registered,
    ssm_client,
    wait_command_final,
    wait_for,
)
from schedules import steward


@pytest.fixture
def fleet(stack, tmp_path):
    f = Fleet(tmp_path / "fleet")
    try:
        yield f
    finally:
        f.stop()


def started(fleet, names, env_tag="dereg"):
    activation = fleet.activation(env_tag, len(names))
    for n in names:
        fleet.add(n, activation)
    return fleet.wait_online(*names)


def queue_exists(fleet, instance_id):
    sqs = localstack_client("sqs")
    try:
        sqs.get_queue_url(QueueName=fleet.env["STEWARD_NODE_QUEUE_PREFIX"] + instance_id)
        return True
    except sqs.exceptions.QueueDoesNotExist:
        return False


def suite_nodes(fleet):
    pages = fleet.ssm.get_paginator("describe_instance_information").paginate(
        Filters=[{"Key": "tag:suite", "Values": [fleet.suite]}]
    )
    return {i["InstanceId"] for page in pages for i in page["InstanceInformationList"]}


def retry_delays(log, marker):
    """The `retry_in` of each receive failure whose error contains `marker`."""
    return [
        int(m.group(1))
        for line in log.splitlines()
        if "cannot receive from the node queue" in line and marker in line
        for m in [re.search(r"retry_in=(\d+)", line)]
        if m
    ]


def test_a_deregistered_node_leaves_the_fleet_and_keeps_its_history(fleet):
    gone, kept = started(fleet, ["gone", "kept"])
    ssm = fleet.ssm
    ssm.add_tags_to_resource(ResourceType="ManagedInstance", ResourceId=gone, Tags=[{"Key": "role", "Value": "leaving"}])
    before = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        Targets=[{"Key": "tag:suite", "Values": [fleet.suite]}],
        Parameters={"commands": ["echo before-deregistration"]},
    )["Command"]["CommandId"]
    assert wait_command_final(ssm, before)["Status"] == "Success"
    assert queue_exists(fleet, gone)
    compliance = dict(ResourceIds=[gone], ResourceTypes=["ManagedInstance"])
    ssm.put_compliance_items(
        ResourceId=gone,
        ResourceType="ManagedInstance",
        ComplianceType="Custom:Deregistration",
        ExecutionSummary={"ExecutionTime": time.time()},
        Items=[{"Id": "item-1", "Severity": "HIGH", "Status": "NON_COMPLIANT"}],
    )
    assert len(ssm.list_compliance_items(**compliance)["ComplianceItems"]) == 1

    # The real AWS CLI: an empty answer.
    assert aws("ssm", "deregister-managed-instance", "--instance-id", gone) == {}

    # Out of the listing, by id and by tag, and out of tag targeting.
    assert suite_nodes(fleet) == {kept}
    assert registered(ssm, [gone, kept]) == {kept}
    listed = aws("ssm", "describe-instance-information", "--filters", f"Key=tag:suite,Values={fleet.suite}")
    assert [i["InstanceId"] for i in listed["InstanceInformationList"]] == [kept]
    assert ssm.describe_instance_information(Filters=[{"Key": "tag:role", "Values": ["leaving"]}])["InstanceInformationList"] == []
    # Its queue is deleted and its tags are gone.
    assert not queue_exists(fleet, gone)
    assert queue_exists(fleet, kept)
    refused(ssm.list_tags_for_resource, "InvalidResourceId", ResourceType="ManagedInstance", ResourceId=gone)
    # Its compliance (and inventory and patch state) went with it.
    assert ssm.list_compliance_items(**compliance)["ComplianceItems"] == []

    # Its history stays readable.
    inv = ssm.get_command_invocation(CommandId=before, InstanceId=gone)
    assert inv["Status"] == "Success"
    assert "before-deregistration" in inv["StandardOutputContent"]
    listed = ssm.list_command_invocations(CommandId=before, Details=True)["CommandInvocations"]
    assert {i["InstanceId"]: i["Status"] for i in listed} == {gone: "Success", kept: "Success"}
    assert [c["CommandId"] for c in ssm.list_commands(InstanceId=gone)["Commands"]] == [before]
    cli = aws("ssm", "get-command-invocation", "--command-id", before, "--instance-id", gone)
    assert cli["Status"] == "Success"

    # New commands: refused by id, and tags no longer reach it.
    message = refused(
        ssm.send_command,
        "InvalidInstanceId",
        DocumentName="AWS-RunShellScript",
        InstanceIds=[gone],
        Parameters={"commands": ["echo after"]},
    )
    assert gone in message
    after = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        Targets=[{"Key": "tag:suite", "Values": [fleet.suite]}],
        Parameters={"commands": ["echo after"]},
    )["Command"]
    assert after["TargetCount"] == 1
    assert wait_command_final(ssm, after["CommandId"])["Status"] == "Success"
    assert [i["InstanceId"] for i in ssm.list_command_invocations(CommandId=after["CommandId"])["CommandInvocations"]] == [kept]

    # The agent says why it stops receiving, and backs off instead of
    # spinning: each retry waits longer than the one before, up to the cap.
    agent = fleet.agents["gone"]
    marker = "this node was deregistered"
    delays = wait_for(
        "the agent to report its queue gone, three times",
        lambda: (d := retry_delays(agent.log(), marker)) and len(d) >= 3 and d,
        timeout=90,
    )
    assert delays == sorted(delays) and delays[-1] > delays[0], delays
    assert agent.proc.poll() is None, "the agent keeps running (an operator stops it)"
    # Its heartbeats are dropped: it does not come back.
    assert gone not in suite_nodes(fleet)

    # Started again, it asks for credentials and is told it is not registered.
    agent.stop()
    agent.start()
    wait_for(
        "the restarted agent to say it is no longer registered",
        lambda: "this node is no longer registered" in agent.log() and "InvalidInstanceId" in agent.log(),
        timeout=60,
    )
    assert gone not in suite_nodes(fleet)

    # Once gone, again: InvalidInstanceId, as SSM answers (boto3 this time).
    assert "not a registered managed node" in refused(ssm.deregister_managed_instance, "InvalidInstanceId", InstanceId=gone)
    assert registered(ssm, [kept]) == {kept}


def test_only_managed_instance_ids_can_be_deregistered(stack):
    ssm = ssm_client(validate=False)
    # An EC2 instance id: SSM's own pattern refuses it before anything is read.
    message = refused(ssm.deregister_managed_instance, "ValidationException", InstanceId="i-0123456789abcdef0")
    assert "at 'instanceId' failed to satisfy constraint" in message
    assert "(^mi-[0-9a-f]{17}$)" in message
    refused(ssm.deregister_managed_instance, "ValidationException", InstanceId="mi-0123456789ABCDEF0")
    refused(ssm.deregister_managed_instance, "ValidationException")
    # Well formed, never registered.
    refused(ssm.deregister_managed_instance, "InvalidInstanceId", InstanceId="mi-00000000000000000")
    # The AWS CLI checks the length itself; a well-formed unknown id reaches the API.
    proc = aws("ssm", "deregister-managed-instance", "--instance-id", "mi-00000000000000000", check=False)
    assert proc.returncode != 0 and "InvalidInstanceId" in proc.stderr


def test_a_command_waiting_on_a_deregistered_node_ends(fleet):
    """The agent is gone before it takes the command: the invocation waits
    in the node's queue, the queue goes with the node, and the command ends
    at its delivery time-out instead of waiting for ever."""
    (node,) = started(fleet, ["silent"])
    agent = fleet.agents["silent"]
    agent.kill(signal.SIGKILL)
    ssm = ssm_client()
    command = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[node],
        TimeoutSeconds=30,
        Parameters={"commands": ["echo never"]},
    )["Command"]["CommandId"]
    wait_for(
        "the invocation to be sent",
        lambda: ssm.list_command_invocations(CommandId=command)["CommandInvocations"],
        timeout=30,
    )
    assert deregister(ssm, node)
    final = wait_command_final(ssm, command, timeout=150)
    assert final["Status"] in FINAL - {"Success"}
    inv = ssm.get_command_invocation(CommandId=command, InstanceId=node)
    assert inv["StatusDetails"] in {"DeliveryTimedOut", "Delivery Timed Out", "Undeliverable"}, inv
    assert not queue_exists(fleet, node)


def test_steward_nodes_deregister(fleet):
    one, two = started(fleet, ["one", "two"])
    proc = steward("nodes", "deregister", one)
    assert proc.stdout.startswith(f"Node {one} deregistered."), proc.stdout
    proc = steward("-o", "json", "nodes", "deregister", two)
    assert proc.stdout.strip() == "{}"
    assert registered(fleet.ssm, [one, two]) == set()
    again = steward("nodes", "deregister", one, check=False)
    assert again.returncode != 0
    assert "InvalidInstanceId" in again.stderr
    assert again.stdout == ""
