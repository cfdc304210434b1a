"""Run Command's rate control end to end: MaxConcurrency and MaxErrors with
ten real agents, through boto3."""

import pytest

from fleet import Fleet, invocations, wait_command_final


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("rate"))
    activation = f.activation("rate", 10)
    names = [f"n{i}" for i in range(10)]
    for n in names:
        f.add(n, activation)
    try:
        f.wait_online(*names, timeout=120)
        yield f
    finally:
        f.stop()


def node_ids(fleet):
    return sorted(a.instance_id() for a in fleet.agents.values())


def most_at_once(intervals):
    """The largest number of [start, end] intervals that overlap."""
    edges = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_max_concurrency_2_never_runs_more_than_2_at_once(fleet):
    ssm = fleet.ssm
    ids = node_ids(fleet)
    cid = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=ids,
        Parameters={"commands": ["date +%s.%N", "sleep 2", "date +%s.%N"]},
        MaxConcurrency="2",
        MaxErrors="0",
    )["Command"]["CommandId"]
    cmd = wait_command_final(ssm, cid, timeout=240)
    assert cmd["Status"] == "Success", cmd
    assert cmd["TargetCount"] == 10 and cmd["CompletedCount"] == 10 and cmd["ErrorCount"] == 0
    invs = invocations(ssm, cid)
    assert sorted(i["InstanceId"] for i in invs) == ids
    # Each node's own clock around its run (all agents share this host's clock).
    intervals = []
    for inv in invs:
        assert inv["Status"] == "Success", inv
        start, end = (float(x) for x in inv["CommandPlugins"][0]["Output"].split())
        intervals.append((start, end))
    assert most_at_once(intervals) <= 2, sorted(intervals)


def test_max_errors_1_stops_after_the_second_failure(fleet):
    ssm = fleet.ssm
    ids = node_ids(fleet)[:6]
    cid = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=ids,
        Parameters={"commands": ["exit 3"]},
        MaxConcurrency="1",
        MaxErrors="1",
    )["Command"]["CommandId"]
    cmd = wait_command_final(ssm, cid, timeout=180)
    assert (cmd["Status"], cmd["StatusDetails"]) == ("Failed", "Failed"), cmd
    assert cmd["ErrorCount"] == 2 and cmd["CompletedCount"] == 6, cmd
    invs = invocations(ssm, cid)
    assert sorted(i["InstanceId"] for i in invs) == ids
    details = sorted(i["StatusDetails"] for i in invs)
    assert details == ["Failed"] * 2 + ["Terminated"] * 4, details
    for inv in invs:
        if inv["StatusDetails"] == "Terminated":
            # Never sent: it never started, and nothing ran.
            assert inv["Status"] == "Failed"
            assert "ExecutionStartDateTime" not in inv or not inv["ExecutionStartDateTime"]
        else:
            assert inv["CommandPlugins"][0]["ResponseCode"] == 3
