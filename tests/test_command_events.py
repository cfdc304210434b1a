"""Run Command's notifications on the `steward` bus, in SSM's shape, delivered
to a queue by a rule with a content filter, as an operator would wire them."""

import json

import pytest

from fleet import Fleet, drain, event_queue, wait_command_final


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("events"))
    f.add("node1", f.activation("dev", 1))
    try:
        f.wait_online("node1")
        yield f
    finally:
        f.stop()


def test_status_change_notifications_reach_a_filtered_rule(fleet):
    node = fleet.agents["node1"].instance_id()
    # Only this node's final invocation states and the command's Success:
    # the content filter is part of what is tested.
    sqs, url = event_queue(
        {
            "source": ["steward.ssm"],
            "$or": [
                {
                    "detail-type": ["EC2 Command Invocation Status-change Notification"],
                    "detail": {"instance-id": [node], "status": ["Success", "Failed"]},
                },
                {
                    "detail-type": ["EC2 Command Status-change Notification"],
                    "detail": {"status": ["Success"]},
                },
            ],
        }
    )
    cmd = fleet.ssm.send_command(
        DocumentName="AWS-RunShellScript",
        Targets=fleet.targets("dev"),
        Parameters={"commands": ["echo notified"]},
    )["Command"]
    cid = cmd["CommandId"]
    assert wait_command_final(fleet.ssm, cid)["Status"] == "Success"

    def both(seen):
        mine = [e for e in seen if e["detail"].get("command-id") == cid]
        return {e["detail-type"] for e in mine} == {
            "EC2 Command Invocation Status-change Notification",
            "EC2 Command Status-change Notification",
        } and mine

    mine = both(drain(sqs, url, both, timeout=60))
    by_type = {e["detail-type"]: e for e in mine}
    inv = by_type["EC2 Command Invocation Status-change Notification"]
    assert inv["source"] == "steward.ssm"
    assert inv["detail"]["instance-id"] == node and inv["detail"]["status"] == "Success"
    assert inv["detail"]["document-name"] == "AWS-RunShellScript"
    assert set(inv["detail"]) >= {"command-id", "document-name", "instance-id", "requested-date-time", "status"}
    assert any(r.endswith(node) for r in inv["resources"])
    command = by_type["EC2 Command Status-change Notification"]
    assert set(command["detail"]) >= {
        "command-id", "document-name", "expire-after", "parameters", "requested-date-time", "status"
    }
    assert command["detail"]["parameters"]["commands"] == ["echo notified"]
    # The filter let nothing else through: no Pending/InProgress states.
    assert all(e["detail"]["status"] in ("Success", "Failed") for e in mine), json.dumps(mine)
