"""`steward automation` against the running control plane: the CLI a
person uses, on the steward profile as a user's shell has it."""

import json
import os
import subprocess
import uuid

import pytest

from fleet import AWS_CONFIG, BIN, ssm_client, wait_for

pytestmark = pytest.mark.usefixtures("stack")


def steward(*args, check=True):
    env = dict(os.environ, AWS_CONFIG_FILE=str(AWS_CONFIG), AWS_PROFILE="steward")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        env.pop(var, None)
    proc = subprocess.run([str(BIN / "steward"), *args], env=env, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"steward {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
    return proc


def paused_runbook():
    """Puts a parameter, pauses, then reads it back as the runbook's output."""
    name = f"e2e-cli-{uuid.uuid4().hex[:8]}"
    content = {
        "schemaVersion": "0.3",
        "parameters": {"Value": {"type": "String"}},
        "mainSteps": [
            {
                "name": "write",
                "action": "aws:executeAwsApi",
                "inputs": {"Service": "ssm", "Api": "PutParameter", "Name": f"/e2e/{name}", "Value": "{{ Value }}",
                           "Type": "String"},
            },
            {"name": "hold", "action": "aws:pause", "inputs": {}},
            {
                "name": "read",
                "action": "aws:executeAwsApi",
                "inputs": {"Service": "ssm", "Api": "GetParameter", "Name": f"/e2e/{name}"},
                "outputs": [{"Name": "Value", "Selector": "$.Parameter.Value", "Type": "String"}],
            },
        ],
        "outputs": ["read.Value"],
    }
    ssm_client().create_document(Name=name, Content=json.dumps(content), DocumentType="Automation")
    return name


def test_start_show_resume_and_list_through_the_cli():
    name = paused_runbook()
    started = steward("automation", "start", name, "--param", "Value=blue, green")
    execution = started.stdout.strip()
    assert len(execution) == 36, started.stdout

    # It stops at the pause; show without waiting says so, in SSM's shape.
    def waiting():
        shown = json.loads(steward("automation", "show", execution, "--no-wait", "-o", "json").stdout)
        shown = shown["AutomationExecution"]
        return shown if shown["AutomationExecutionStatus"] == "Waiting" else None

    shown = wait_for("the execution to wait at its pause", waiting, timeout=60, interval=1)
    assert [s["StepName"] for s in shown["StepExecutions"]] == ["write", "hold"]
    steward("automation", "resume", execution)
    final = json.loads(steward("automation", "show", execution, "--timeout", "120", "-o", "json").stdout)
    final = final["AutomationExecution"]
    assert final["AutomationExecutionStatus"] == "Success", final
    assert final["Outputs"]["read.Value"] == ["blue, green"]
    listed = json.loads(steward("automation", "list", "--document", name, "-o", "json").stdout)
    ids = [e["AutomationExecutionId"] for e in listed["AutomationExecutionMetadataList"]]
    assert ids == [execution], listed


def test_a_bad_start_exits_non_zero_and_says_why():
    refused = steward("automation", "start", f"no-such-runbook-{uuid.uuid4().hex[:6]}", check=False)
    assert refused.returncode != 0
    assert "AutomationDefinitionNotFoundException" in refused.stderr, refused.stderr
    assert refused.stdout == ""
