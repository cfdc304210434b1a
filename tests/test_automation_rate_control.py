"""Rate-controlled automation end to end: one runbook over ten tagged real
nodes with TargetParameterName, MaxConcurrency and MaxErrors, through boto3
and the real AWS CLI. The children run as Run Command's invocations do:
never more than MaxConcurrency at once, and none started once more than
MaxErrors have failed."""

import json
import uuid

import pytest

from fleet import Fleet, aws, wait_automation_final

pytestmark = pytest.mark.usefixtures("stack")

APP = "ratecontrol"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("automation-rate"))
    activation = f.activation(APP, 10)
    names = [f"r{i}" for i in range(10)]
    for n in names:
        f.add(n, activation)
    try:
        f.wait_online(*names, timeout=120)
        yield f
    finally:
        f.stop()


def runbook(ssm, command):
    """A one-step runbook running `command` on the node its Node names;
    the step's own clock is printed around it."""
    name = f"e2e-rate-{uuid.uuid4().hex[:8]}"
    content = {
        "schemaVersion": "0.3",
        "parameters": {"Node": {"type": "String"}},
        "mainSteps": [
            {
                "name": "run",
                "action": "aws:runCommand",
                "inputs": {
                    "DocumentName": "AWS-RunShellScript",
                    "InstanceIds": ["{{ Node }}"],
                    "Parameters": {"commands": ["date +%s.%N", command, "date +%s.%N"]},
                },
            }
        ],
    }
    ssm.create_document(Name=name, Content=json.dumps(content), DocumentType="Automation")
    return name


def children(parent):
    """The parent's children, through the real AWS CLI."""
    listed = aws(
        "ssm",
        "describe-automation-executions",
        "--filters",
        f"Key=ParentExecutionId,Values={parent}",
    )
    return listed["AutomationExecutionMetadataList"]


def most_at_once(intervals):
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def start(ssm, name, max_errors, targets):
    return ssm.start_automation_execution(
        DocumentName=name,
        TargetParameterName="Node",
        Targets=targets,
        MaxConcurrency="2",
        MaxErrors=max_errors,
    )["AutomationExecutionId"]


def test_ten_nodes_two_at_a_time_all_succeed(fleet):
    ssm = fleet.ssm
    name = runbook(ssm, "sleep 1")
    parent = start(ssm, name, "1", fleet.targets(APP))
    done = wait_automation_final(ssm, parent, timeout=300)
    assert done["AutomationExecutionStatus"] == "Success", done
    assert sorted(done["ResolvedTargets"]["ParameterValues"]) == sorted(
        a.instance_id() for a in fleet.agents.values()
    )
    kids = children(parent)
    assert len(kids) == 10
    assert {k["AutomationExecutionStatus"] for k in kids} == {"Success"}
    # Each child's command ran on its own node, and never more than two
    # children's commands ran at once (the nodes share this host's clock).
    intervals = []
    for k in kids:
        e = ssm.get_automation_execution(AutomationExecutionId=k["AutomationExecutionId"])["AutomationExecution"]
        step = e["StepExecutions"][0]
        inv = ssm.get_command_invocation(CommandId=step["Outputs"]["CommandId"][0], InstanceId=e["Target"])
        assert inv["Status"] == "Success", inv
        first, last = (float(x) for x in inv["StandardOutputContent"].split())
        intervals.append((first, last))
    assert most_at_once(intervals) <= 2, sorted(intervals)


def test_errors_past_max_errors_stop_it_as_run_command_does(fleet):
    ssm = fleet.ssm
    name = runbook(ssm, "exit 3")
    parent = start(ssm, name, "1", fleet.targets(APP))
    done = wait_automation_final(ssm, parent, timeout=300)
    assert done["AutomationExecutionStatus"] == "Failed", done
    assert "targets failed, more than MaxErrors (1) allows" in done["FailureMessage"], done
    kids = children(parent)
    # Two at a time: once the second error is in, nothing more starts; the
    # one still running when it came may finish.
    assert 2 <= len(kids) <= 3, kids
    assert {k["AutomationExecutionStatus"] for k in kids} == {"Failed"}, kids
