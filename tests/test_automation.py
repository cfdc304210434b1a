"""Automation end to end, with real agents: runbooks started by EventBridge
rules through the automation start queue (remediation), a runbook pushing a
Parameter Store change to an app's nodes, approval by a second key, the
start dead-letter queue, and the built-in runbooks on real nodes.

Rules are made on the `steward` bus of the local EventBridge, as an operator
would make them: with the real AWS CLI (the README's commands) or boto3.
Runbooks started by a rule run as the stack's events user, made here with
IAM's API on Steward's endpoint as the README says."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError

from fleet import (
    AWS_CLI,
    AWS_CONFIG,
    Fleet,
    aws,
    key_client,
    localstack_client,
    process_alive,
    refused,
    restricted_key,
    stack_env,
    wait_automation_final,
    wait_automation_status,
    wait_command_final,
    wait_for,
)

pytestmark = pytest.mark.usefixtures("stack")

RESTART_RUNBOOK = "Steward-RestartServiceAndVerify"
APPROVAL_RUNBOOK = "Steward-RunCommandAfterApproval"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("automation"))
    f.add("svc", f.activation("svc", 1))
    shop = f.activation("shop", 2)
    f.add("shop1", shop)
    f.add("shop2", shop)
    f.add("appr", f.activation("appr", 1))
    try:
        f.wait_online("svc", "shop1", "shop2", "appr")
        yield f
    finally:
        f.stop()


# --- the events user ----------------------------------------------------------------

# --- the README's remediation, as written -------------------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_blocks(lang):
    """The code blocks of language `lang` in the README's Remediation section:
    the e2e runs them as written (only names, ARNs and commands replaced)."""
    text = README.read_text()
    start = text.index("### Remediation")
    section = text[start:text.index("\n## ", start)]
    return [b for lg, b in re.findall(r"```(\w+)\n(.*?)```", section, re.S) if lg == lang]


def readme_json(containing):
    [block] = [b for b in readme_blocks("json") if containing in b]
    return json.loads(block)


# What the runbooks these rules start do, granted to the events user: the
# README's policy (start runbooks, send their commands, read the /app
# parameters their commands reference).
EVENTS_POLICY = readme_json("ssm:StartAutomationExecution")


@pytest.fixture(scope="module")
def events_user(tmp_path_factory):
    """The user runbooks started by rules run as (the stack's
    STEWARD_AUTOMATION_EVENTS_USER), created if missing and granted
    EVENTS_POLICY with the README's commands. Returns its ARN."""
    env = stack_env()
    name = env.get("STEWARD_AUTOMATION_EVENTS_USER", "steward-events")
    made = aws("iam", "create-user", "--user-name", name, check=False)
    if not isinstance(made, dict):
        assert "EntityAlreadyExists" in made.stderr, made.stderr
    policy = tmp_path_factory.mktemp("events-user") / "events-policy.json"
    policy.write_text(json.dumps(EVENTS_POLICY))
    aws("iam", "put-user-policy", "--user-name", name, "--policy-name", "remediation",
        "--policy-document", f"file://{policy}")
    return f"arn:aws:iam::{env['STEWARD_ACCOUNT_ID']}:user/{name}"


# --- helpers -------------------------------------------------------------------------


def aws_events(*args, check=True):
    """The real AWS CLI's EventBridge commands, sent to the local EventBridge."""
    return aws("events", *args, "--endpoint-url", stack_env()["AWS_ENDPOINT_URL"], check=check)


def start_queue_arn():
    sqs = localstack_client("sqs")
    url = stack_env()["STEWARD_AUTOMATION_START_QUEUE_URL"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def executions_since(ssm, document, since):
    """The executions of `document` started after `since`, with their
    parameters (GetAutomationExecution's answers), newest first."""
    found = []
    for page in ssm.get_paginator("describe_automation_executions").paginate(
        Filters=[{"Key": "DocumentNamePrefix", "Values": [document]}, {"Key": "StartTimeAfter", "Values": [since]}]
    ):
        for m in page["AutomationExecutionMetadataList"]:
            if m["DocumentName"] == document:
                found.append(
                    ssm.get_automation_execution(AutomationExecutionId=m["AutomationExecutionId"])["AutomationExecution"]
                )
    return found


def aws_as(key_id, secret, *args):
    """The real AWS CLI on the steward profile, signed with another key."""
    env = dict(os.environ, AWS_CONFIG_FILE=str(AWS_CONFIG), AWS_PROFILE="steward",
               AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret)
    for var in ("AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM"):
        env.pop(var, None)
    proc = subprocess.run([str(AWS_CLI), *args, "--output", "json"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def steps(execution):
    return {s["StepName"]: s for s in execution["StepExecutions"]}


# --- 1. a broken service is restarted -------------------------------------------------

# A service as a node runs one: a process that writes its pid, then beats
# while it is enabled (the test disables it at the end).
SERVICE = 'echo $$ > "$1/pid"\nwhile [ -f "$1/enabled" ]; do date +%s%N > "$1/beat"; sleep 0.2; done\n'


def running_pid(service_dir):
    try:
        pid = int((service_dir / "pid").read_text())
    except (OSError, ValueError):
        return None
    return pid if process_alive(pid) else None


def test_a_failed_health_check_restarts_the_service_on_that_node_through_a_rule(fleet, events_user, tmp_path):
    ssm, suite = fleet.ssm, fleet.suite
    node = fleet.agents["svc"].instance_id()
    bus = stack_env()["STEWARD_EVENT_BUS"]
    svc = tmp_path / "svc"
    svc.mkdir()
    (svc / "service.sh").write_text(SERVICE)
    (svc / "enabled").touch()
    start = f"sh {svc}/service.sh {svc} >/dev/null 2>&1 &"
    # Running, not a zombie waiting for its parent to reap it.
    check = f"ps -o stat= -p $(cat {svc}/pid) | grep -qv Z"
    # The health check is a Command document of its own, so the rule matches
    # its failures only (not the runbook's own commands).
    check_doc = f"e2e-check-{suite}"
    ssm.create_document(
        Name=check_doc,
        DocumentType="Command",
        Content=json.dumps({
            "schemaVersion": "2.2",
            "description": "Fails when the service is not running",
            "mainSteps": [{"action": "aws:runShellScript", "name": "check", "inputs": {"runCommand": [check]}}],
        }),
    )
    rule = f"e2e-restart-{suite}"
    try:
        # The service runs, started on the node by Run Command.
        cid = ssm.send_command(DocumentName="AWS-RunShellScript", InstanceIds=[node],
                               Parameters={"commands": [start]})["Command"]["CommandId"]
        assert wait_command_final(ssm, cid)["Status"] == "Success"
        first = wait_for("the service to run", lambda: running_pid(svc), timeout=30)

        # The README's rule, with its commands: a failed check starts the
        # restart runbook on the node the event names. Only the check's
        # document, the queue's ARN and the service's commands differ.
        pattern = readme_json('"detail-type"')
        pattern["detail"]["document-name"] = [check_doc]
        targets = readme_json("InputTransformer")
        transformer = targets[0]["InputTransformer"]
        assert transformer["InputPathsMap"] == {"instance": "$.detail.instance-id"}
        template = json.loads(transformer["InputTemplate"].replace("<instance>", "INSTANCE"))
        assert template["DocumentName"] == RESTART_RUNBOOK and template["Parameters"]["InstanceId"] == "INSTANCE"
        template["Parameters"].update(RestartCommands=[start], CheckCommands=[check], CheckDelay="PT2S")
        transformer["InputTemplate"] = json.dumps(template).replace("INSTANCE", "<instance>")
        targets[0]["Arn"] = start_queue_arn()
        (tmp_path / "pattern.json").write_text(json.dumps(pattern))
        (tmp_path / "targets.json").write_text(json.dumps(targets))
        aws_events("put-rule", "--name", rule, "--event-bus-name", bus,
                   "--event-pattern", f"file://{tmp_path}/pattern.json")
        put = aws_events("put-targets", "--rule", rule, "--event-bus-name", bus,
                         "--targets", f"file://{tmp_path}/targets.json")
        assert put["FailedEntryCount"] == 0, put

        # The service stops; the check fails.
        since = iso(time.time() - 2)
        os.kill(first, signal.SIGKILL)
        wait_for("the service to stop", lambda: not process_alive(first), timeout=10)
        cid = ssm.send_command(DocumentName=check_doc, InstanceIds=[node])["Command"]["CommandId"]
        assert wait_command_final(ssm, cid)["Status"] == "Failed"

        # The rule started the runbook for that very node, and it succeeded.
        started = wait_for(
            "the rule to start the restart runbook",
            lambda: [e for e in executions_since(ssm, RESTART_RUNBOOK, since)
                     if e["Parameters"].get("InstanceId") == [node]],
            timeout=90, interval=1,
        )
        eid = started[0]["AutomationExecutionId"]
        done = wait_automation_final(ssm, eid)
        assert done["AutomationExecutionStatus"] == "Success", json.dumps(done, default=str)
        listed = aws("ssm", "describe-automation-executions",
                     "--filters", f"Key=ExecutionId,Values={eid}")["AutomationExecutionMetadataList"]
        assert [(m["AutomationExecutionId"], m["DocumentName"], m["AutomationExecutionStatus"], m["ExecutedBy"])
                for m in listed] == [(eid, RESTART_RUNBOOK, "Success", events_user)]

        # The process runs again: a new one, beating.
        second = running_pid(svc)
        assert second and second != first
        beat = (svc / "beat").read_text()
        wait_for("the restarted service to beat", lambda: (svc / "beat").read_text() != beat, timeout=10)

        # Restart and verify ran on that node and nowhere else.
        ran = steps(done)
        assert list(ran) == ["restart", "settle", "verify"]
        assert all(s["StepStatus"] == "Success" for s in ran.values())
        for step in ("restart", "verify"):
            command = ran[step]["Outputs"]["CommandId"][0]
            invs = ssm.list_command_invocations(CommandId=command)["CommandInvocations"]
            assert [(i["InstanceId"], i["Status"]) for i in invs] == [(node, "Success")], step
        # One failure, one start: the runbook's own commands match no rule.
        assert [e["AutomationExecutionId"] for e in executions_since(ssm, RESTART_RUNBOOK, since)
                if e["Parameters"].get("InstanceId") == [node]] == [eid]
    finally:
        aws_events("remove-targets", "--rule", rule, "--event-bus-name", bus, "--ids", "restart", check=False)
        aws_events("delete-rule", "--name", rule, "--event-bus-name", bus, check=False)
        (svc / "enabled").unlink(missing_ok=True)
        pid = running_pid(svc)
        if pid:
            os.kill(pid, signal.SIGKILL)
        ssm.delete_document(Name=check_doc)


def test_the_restart_runbook_fails_when_its_check_fails(fleet, tmp_path):
    """The built-in runbook started by hand: its verify step is what decides."""
    ssm = fleet.ssm
    node = fleet.agents["svc"].instance_id()
    marker = tmp_path / "restarted"
    eid = ssm.start_automation_execution(
        DocumentName=RESTART_RUNBOOK,
        Parameters={"InstanceId": [node], "RestartCommands": [f"touch {marker}"],
                    "CheckCommands": ["echo the service is down >&2", "exit 3"], "CheckDelay": ["PT1S"]},
    )["AutomationExecutionId"]
    done = wait_automation_final(ssm, eid)
    assert done["AutomationExecutionStatus"] == "Failed"
    assert marker.exists()
    ran = steps(done)
    assert [(n, s["StepStatus"]) for n, s in ran.items()] == [
        ("restart", "Success"), ("settle", "Success"), ("verify", "Failed")]
    command = ran["verify"]["Outputs"]["CommandId"][0]
    inv = ssm.get_command_invocation(CommandId=command, InstanceId=node)
    assert inv["ResponseCode"] == 3 and "the service is down" in inv["StandardErrorContent"]


# --- 2. a parameter change is pushed ---------------------------------------------------


def test_a_parameter_change_is_pushed_to_every_node_of_the_app(fleet, events_user):
    ssm, suite = fleet.ssm, fleet.suite
    events, bus = localstack_client("events"), stack_env()["STEWARD_EVENT_BUS"]
    name = f"/app/{suite}/color"
    ssm.put_parameter(Name=name, Type="String", Value="blue")
    # A node's command runs in <state dir>/runs/<command>/<step>: each node
    # writes the app's configuration into its own state directory.
    runbook = f"e2e-push-{suite}"
    write = "printf '%s\\n' '{{ssm:" + name + "}}' > ../../../app-color.conf"
    ssm.create_document(
        Name=runbook,
        DocumentType="Automation",
        DocumentFormat="JSON",
        Content=json.dumps({
            "schemaVersion": "0.3",
            "description": "Writes the app's color where the app reads it, on every node of the app",
            "parameters": {"ParameterName": {"type": "String", "allowedPattern": "/app/[A-Za-z0-9/_.-]+"}},
            "mainSteps": [{
                "name": "push",
                "action": "aws:runCommand",
                "inputs": {
                    "DocumentName": "AWS-RunShellScript",
                    "Targets": fleet.targets("shop"),
                    "Parameters": {"commands": [write, "echo pushed {{ ParameterName }}"]},
                },
            }],
        }),
    )
    rule = f"e2e-push-{suite}"
    try:
        events.put_rule(
            Name=rule, EventBusName=bus,
            EventPattern=json.dumps({
                "source": ["steward.ssm"],
                "detail-type": ["Parameter Store Change"],
                "detail": {"name": [{"prefix": f"/app/{suite}/"}], "operation": ["Update"]},
            }),
        )
        put = events.put_targets(Rule=rule, EventBusName=bus, Targets=[{
            "Id": "push",
            "Arn": start_queue_arn(),
            "InputTransformer": {
                "InputPathsMap": {"name": "$.detail.name"},
                "InputTemplate": json.dumps({"DocumentName": runbook, "Parameters": {"ParameterName": "<name>"}}),
            },
        }])
        assert put["FailedEntryCount"] == 0, put
        since = iso(time.time() - 2)
        ssm.put_parameter(Name=name, Value="green", Overwrite=True)

        started = wait_for("the rule to start the push runbook",
                           lambda: executions_since(ssm, runbook, since), timeout=90, interval=1)
        assert len(started) == 1
        done = wait_automation_final(ssm, started[0]["AutomationExecutionId"])
        assert done["AutomationExecutionStatus"] == "Success", json.dumps(done, default=str)
        assert done["ExecutedBy"] == events_user
        assert done["Parameters"] == {"ParameterName": [name]}

        # Every node of the app has the new value; the other nodes nothing.
        for n in ("shop1", "shop2"):
            assert (fleet.agents[n].state_dir / "app-color.conf").read_text() == "green\n", n
        for n in ("svc", "appr"):
            assert not (fleet.agents[n].state_dir / "app-color.conf").exists(), n
        command = steps(done)["push"]["Outputs"]["CommandId"][0]
        invs = ssm.list_command_invocations(CommandId=command, Details=True)["CommandInvocations"]
        shop = {fleet.agents[n].instance_id() for n in ("shop1", "shop2")}
        assert {i["InstanceId"] for i in invs} == shop
        assert all(f"pushed {name}" in i["CommandPlugins"][0]["Output"] for i in invs)
    finally:
        events.remove_targets(Rule=rule, EventBusName=bus, Ids=["push"])
        events.delete_rule(Name=rule, EventBusName=bus)
        ssm.delete_document(Name=runbook)
        ssm.delete_parameter(Name=name)


# --- 3. approval -------------------------------------------------------------------------

SIGNALLER = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["ssm:SendAutomationSignal", "ssm:GetAutomationExecution"],
                   "Resource": "*"}],
}


def test_a_runbook_waits_for_an_approver_and_a_rejection_runs_nothing(fleet, tmp_path):
    ssm = fleet.ssm
    node = fleet.agents["appr"].instance_id()
    approver, key_id, secret = restricted_key(SIGNALLER, "approver")
    approver_ssm = key_client("ssm", key_id, secret)
    _, other_id, other_secret = restricted_key(SIGNALLER, "bystander")
    bystander = key_client("ssm", other_id, other_secret)

    def start(marker):
        params = {"Approvers": [approver], "InstanceIds": [node],
                  "Commands": [f"echo approved > {marker}"], "Message": ["Write the marker?"]}
        return aws("ssm", "start-automation-execution", "--document-name", APPROVAL_RUNBOOK,
                   "--parameters", json.dumps(params))["AutomationExecutionId"]

    approved_marker, rejected_marker = tmp_path / "approved", tmp_path / "rejected"
    approved, rejected = start(approved_marker), start(rejected_marker)
    for eid in (approved, rejected):
        waiting = wait_automation_status(ssm, eid, "Waiting")
        assert waiting["CurrentStepName"] == "approve" and waiting["CurrentAction"] == "aws:approve"

    # A key whose user is not an approver is refused, and changes nothing.
    message = refused(bystander.send_automation_signal, "InvalidAutomationSignalException",
                      AutomationExecutionId=approved, SignalType="Approve")
    assert approver in message
    assert ssm.get_automation_execution(AutomationExecutionId=approved)["AutomationExecution"][
        "AutomationExecutionStatus"] == "Waiting"
    assert not approved_marker.exists()

    # The approver's Approve lets it go on: the command runs on the node.
    aws_as(key_id, secret, "ssm", "send-automation-signal", "--automation-execution-id", approved,
           "--signal-type", "Approve", "--payload", "Comment=go")
    done = wait_automation_final(ssm, approved)
    assert done["AutomationExecutionStatus"] == "Success", json.dumps(done, default=str)
    assert approved_marker.read_text() == "approved\n"
    ran = steps(done)
    assert ran["approve"]["Outputs"]["ApprovalStatus"] == ["Approved"]
    assert ran["run"]["StepStatus"] == "Success"
    command = ran["run"]["Outputs"]["CommandId"][0]
    assert ssm.get_command_invocation(CommandId=command, InstanceId=node)["Status"] == "Success"

    # The other, rejected, ends Failed and runs nothing.
    approver_ssm.send_automation_signal(AutomationExecutionId=rejected, SignalType="Reject",
                                        Payload={"Comment": ["not today"]})
    done = wait_automation_final(ssm, rejected)
    assert done["AutomationExecutionStatus"] == "Failed"
    assert list(steps(done)) == ["approve"]
    assert steps(done)["approve"]["StepStatus"] == "Failed"
    assert not rejected_marker.exists()
    # A decided step takes no more signals.
    with pytest.raises(ClientError) as e:
        approver_ssm.send_automation_signal(AutomationExecutionId=rejected, SignalType="Approve")
    assert e.value.response["Error"]["Code"] == "InvalidAutomationSignalException"


def test_builtin_runbooks_are_listed_as_automation_documents(fleet):
    listed = {
        d["Name"]: d
        for page in fleet.ssm.get_paginator("list_documents").paginate(
            Filters=[{"Key": "DocumentType", "Values": ["Automation"]}, {"Key": "Owner", "Values": ["Amazon"]}]
        )
        for d in page["DocumentIdentifiers"]
    }
    assert set(listed) == {RESTART_RUNBOOK, APPROVAL_RUNBOOK}
    for d in listed.values():
        assert d["DocumentType"] == "Automation" and d["SchemaVersion"] == "0.3" and d["Owner"] == "Amazon"
    described = aws("ssm", "describe-document", "--name", RESTART_RUNBOOK)["Document"]
    assert [p["Name"] for p in described["Parameters"]] == [
        "InstanceId", "RestartCommands", "CheckCommands", "CheckDelay"]
    # A runbook is not a command: SendCommand does not run it.
    message = refused(fleet.ssm.send_command, "InvalidDocument", DocumentName=RESTART_RUNBOOK,
                      InstanceIds=[fleet.agents["svc"].instance_id()])
    assert "StartAutomationExecution" in message


def test_the_readmes_sam_rule_is_the_rule_the_cli_made(tmp_path):
    """The README's SAM snippet is a valid template whose rule is the one
    the AWS CLI commands make (and the e2e above runs)."""
    [snippet] = readme_blocks("yaml")
    template = tmp_path / "remediation.yaml"
    template.write_text("AWSTemplateFormatVersion: '2010-09-09'\n" + snippet)
    lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(lint) if lint.exists() else "cfn-lint", str(template)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!Ref", lambda loader, node: {"Ref": loader.construct_scalar(node)})
    rule = yaml.load(template.read_text(), Loader=Loader)["Resources"]["RestartWebOnFailedCheck"]["Properties"]
    assert rule["EventBusName"] == "steward"
    assert rule["EventPattern"] == readme_json('"detail-type"')
    [target] = rule["Targets"]
    [cli] = readme_json("InputTransformer")
    assert target["Id"] == cli["Id"] and target["Arn"] == {"Ref": "StewardStartQueueArn"}
    sam, made = target["InputTransformer"], cli["InputTransformer"]
    assert sam["InputPathsMap"] == made["InputPathsMap"]
    assert json.loads(sam["InputTemplate"]) == json.loads(made["InputTemplate"])


# --- the start queue's dead letters ------------------------------------------------------


def test_a_start_that_cannot_start_anything_ends_in_the_start_dead_letter_queue_with_why(events_user):
    env = stack_env()
    sqs = localstack_client("sqs")
    url = env["STEWARD_AUTOMATION_START_QUEUE_URL"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])["Attributes"]
    redrive = json.loads(attrs["RedrivePolicy"])
    dlq_url = sqs.get_queue_url(QueueName=redrive["deadLetterTargetArn"].rsplit(":", 1)[1])["QueueUrl"]
    assert dlq_url.endswith("AutomationStartDeadLetterQueue")
    assert dlq_url == env["STEWARD_AUTOMATION_START_DLQ_URL"]
    marker = uuid.uuid4().hex
    # Each is moved there at once (not after the queue's redrive limit),
    # with SSM's code of the refusal and its words.
    expected = {
        f"not json {marker}": "SerializationException",
        json.dumps({"DocumentName": f"e2e-missing-{marker}", "Parameters": {"InstanceId": "mi-0"}}):
            "AutomationDefinitionNotFoundException",
        json.dumps({"DocumentName": RESTART_RUNBOOK, "Parameters": {"InstanceId": "x"}, "Tags": marker}):
            "InvalidAutomationExecutionParametersException",
    }
    for body in expected:
        sqs.send_message(QueueUrl=url, MessageBody=body)
    dead = {}

    def arrived():
        # Read as the README says, with the AWS CLI.
        got = aws("sqs", "receive-message", "--queue-url", dlq_url, "--max-number-of-messages", "10",
                  "--message-attribute-names", "All", "--wait-time-seconds", "1",
                  "--endpoint-url", env["AWS_ENDPOINT_URL"])
        for m in got.get("Messages", []):
            if m["Body"] in expected:
                attributes = m.get("MessageAttributes", {})
                dead[m["Body"]] = (attributes["Error"]["StringValue"], attributes["Reason"]["StringValue"])
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=m["ReceiptHandle"])
        return set(dead) == set(expected)

    # Well within the start queue's visibility timeout: nothing was retried.
    wait_for("the malformed starts in the start dead-letter queue", arrived, timeout=60, interval=0.5)
    for body, code in expected.items():
        assert dead[body][0] == code, (body, dead[body])
        assert dead[body][1], body
