"""The fault suite's network scenario: a node cut off from the network for
two minutes while commands arrive. The node runs in a network namespace of
its own, reaching the local stack over a veth pair only; the cut takes its
end of the link down. Every command ends as SSM's would: what the node had
started is reported once the link is back, what was sent with a time-out
longer than the cut runs once after it, and what was sent with a shorter
one ends Delivery Timed Out and never runs, although its message still
waits in the node's queue when the node comes back. A node outside the
namespace gets every command too, as the control."""

from __future__ import annotations

import os
import shutil
import time

import pytest

from faults import (
    Audit,
    Expected,
    FaultAgent,
    FaultFleet,
    FinalEvents,
    assert_clean,
    audit_command,
    audit_printer,
    marked_script,
    runs,
)
from fleet import FINAL, wait_for
from netns import Island

AUDIT = Audit()
audit_counts = audit_printer(AUDIT)

CUT_SECONDS = 120
# SSM's smallest TimeoutSeconds: shorter than the cut, so the node cannot
# have taken it in time.
SHORT_TIMEOUT = 30
LONG_TIMEOUT = 600
NAMESPACE = "steward-cut"
NETWORK = "10.213.47.0"
# What the agent talks to: the control plane and SQS (LocalStack).
API_PORT, SQS_PORT = 7070, 4566

FIGURES: list[str] = []


@pytest.fixture(scope="module", autouse=True)
def figures(request):
    yield FIGURES
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and FIGURES:
        # Past the teardown's capture, or only -s would show them.
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(f"{request.module.__name__}: " + "; ".join(FIGURES))


class IslandAgent(FaultAgent):
    """An agent run inside the island's network namespace."""

    def __init__(self, island: Island, *args):
        self.island = island
        super().__init__(*args)

    def argv(self):
        return self.island.wrap(super().argv())


def ping_status(ssm, instance_id):
    info = ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])
    (node,) = info["InstanceInformationList"]
    return node["PingStatus"]


def invocation(ssm, command_id, instance_id):
    invs = ssm.list_command_invocations(CommandId=command_id, InstanceId=instance_id)["CommandInvocations"]
    return invs[0] if invs else None


def status_of(ssm, command_id, instance_id):
    inv = invocation(ssm, command_id, instance_id)
    return inv and inv["Status"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and iproute2 (ip netns)")
def test_a_node_cut_off_for_two_minutes_while_commands_arrive(tmp_path, stack):
    fleet = FaultFleet(tmp_path)
    marks = tmp_path / "marks"
    island = Island(NAMESPACE, NETWORK, ports=[API_PORT, SQS_PORT])
    try:
        island.open()
        activation = fleet.activation("netcut", 2)
        cut = IslandAgent(island, "cut-off", tmp_path / "cut-off", island.url(API_PORT), island.url(SQS_PORT), activation)
        fleet.agents["cut-off"] = cut
        cut.start()
        control = fleet.add("control", activation)
        cut_id, control_id = fleet.wait_online("cut-off", "control")
        ssm = fleet.ssm
        events = FinalEvents([cut_id, control_id])

        # Each command goes to the node and, as a command of its own, to the
        # control: with both as targets of one command, the ramp (the first
        # target alone until it acknowledges) could hold the control's back
        # behind the node's, whose acknowledgement the cut stops.
        def send(timeout_seconds, middle=""):
            return tuple(
                ssm.send_command(
                    DocumentName="AWS-RunShellScript",
                    InstanceIds=[node],
                    Parameters={"commands": marked_script(marks, middle)},
                    TimeoutSeconds=timeout_seconds,
                )["Command"]["CommandId"]
                for node in (cut_id, control_id)
            )

        # Started before the cut, ends during it: its final report can only
        # wait in the node's spool.
        started_before = send(LONG_TIMEOUT, "sleep 5")
        wait_for("the command to start on the node", lambda: runs(marks, cut, started_before[0])[0] >= 1, timeout=60)
        island.cut()
        cut_at = time.monotonic()

        long_one = send(LONG_TIMEOUT)
        short_one = send(SHORT_TIMEOUT)

        wait_for("the command to end on the node", lambda: runs(marks, cut, started_before[0])[1] >= 1, timeout=30)
        # The control has its reports in; the node's are all still to come.
        wait_for("the control to finish", lambda: all(
            status_of(ssm, c[1], control_id) == "Success" for c in (started_before, long_one, short_one)
        ), timeout=60)
        assert status_of(ssm, started_before[0], cut_id) in {"Pending", "InProgress"}
        wait_for("the node's invocation of the long command", lambda: invocation(ssm, long_one[0], cut_id), timeout=30)
        assert status_of(ssm, long_one[0], cut_id) == "Pending"

        wait_for("the node to be ConnectionLost", lambda: ping_status(ssm, cut_id) == "ConnectionLost",
                 timeout=CUT_SECONDS - 30)
        lost_after = time.monotonic() - cut_at
        # Sent to a node known to be lost: SSM still sends it, and it runs
        # if the node is back within its time-out.
        while_lost = send(LONG_TIMEOUT)

        # The short one's delivery time-out passes during the cut.
        wait_for("the short command to time out on the node", lambda: status_of(ssm, short_one[0], cut_id) in FINAL,
                 timeout=SHORT_TIMEOUT + 30)
        inv = invocation(ssm, short_one[0], cut_id)
        assert inv["Status"] == "TimedOut" and inv["StatusDetails"].replace(" ", "") == "DeliveryTimedOut", inv
        assert time.monotonic() - cut_at < CUT_SECONDS, "the scenario took too long to be a cut of CUT_SECONDS"
        # Nothing got through: the node's invocations are where the cut left them.
        assert status_of(ssm, started_before[0], cut_id) in {"Pending", "InProgress"}
        assert status_of(ssm, long_one[0], cut_id) == "Pending"
        assert ping_status(ssm, cut_id) == "ConnectionLost"
        assert cut.proc.poll() is None, cut.log()[-2000:]

        time.sleep(max(0.0, CUT_SECONDS - (time.monotonic() - cut_at)))
        island.restore()
        back_at = time.monotonic()

        wait_for("the node to be Online again", lambda: ping_status(ssm, cut_id) == "Online", timeout=120)
        online_after = time.monotonic() - back_at
        wait_for("the node's spooled report to arrive", lambda: status_of(ssm, started_before[0], cut_id) in FINAL,
                 timeout=120)
        report_after = time.monotonic() - back_at
        wait_for("the node to run what waited for it", lambda: all(
            status_of(ssm, c[0], cut_id) in FINAL for c in (long_one, while_lost)
        ), timeout=120)
        caught_up_after = time.monotonic() - back_at
        # The short one's message was still queued for the node: the agent
        # took it and refused it as expired rather than run it.
        wait_for("the agent to refuse the expired message", lambda: "message expired" in cut.log(), timeout=60)
        FIGURES.append(
            f"cut {CUT_SECONDS}s: ConnectionLost after {lost_after:.0f}s; after the link came back: "
            f"Online in {online_after:.0f}s, spooled report in {report_after:.0f}s, "
            f"queued commands run in {caught_up_after:.0f}s"
        )

        want = [
            (started_before, "Success", 1),
            (long_one, "Success", 1),
            (short_one, "TimedOut", 0),
            (while_lost, "Success", 1),
        ]
        findings = []
        for (on_cut, on_control), status, times in want:
            findings += audit_command(AUDIT, ssm, on_cut, [Expected(cut, status, times, times)], marks, events)
            findings += audit_command(AUDIT, ssm, on_control, [Expected(control, "Success", 1, 1)], marks, events)
        assert_clean(findings, fleet)
        # Delivery Timed Out it stays: the refusal changed nothing.
        inv = invocation(ssm, short_one[0], cut_id)
        assert inv["StatusDetails"].replace(" ", "") == "DeliveryTimedOut", inv
        assert ping_status(ssm, cut_id) == "Online"
    finally:
        try:
            fleet.stop()
        finally:
            island.close()
