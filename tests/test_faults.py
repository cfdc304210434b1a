"""The fault suite (`make test-faults`; `make test` runs it too): real agents
against the local stack while parts of it fail, each scenario ending with an
audit — every invocation final exactly once (one final event on the bus),
no script run twice (the scripts' own marks), no report lost (the status is
what the node really did). The counts are printed at the end; every count
other than scenarios and invocations must be 0."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from faults import (
    Audit,
    Expected,
    FaultFleet,
    FinalEvents,
    ParameterWriter,
    Redelivering,
    assert_clean,
    audit_command,
    audit_printer,
    marked_script,
    runs,
)
from fleet import wait_for

ROOT = Path(__file__).resolve().parent.parent
AUDIT = Audit()


audit_counts = audit_printer(AUDIT)


# --- an agent killed at each point of an invocation ----------------------------------

# Crash point -> what the invocation must end as, and how many times its
# script may have started and ended. The agent runs a command at most once:
# one it had taken and not finished before a crash is reported Failed after
# the restart (as SSM's agent does), never run again.
POINTS = {
    "after-receive": ("Success", 1, 1),  # nothing written: the message comes back and runs
    "after-journal": ("Failed", 0, 0),  # taken, not started: Failed, and the redelivery is a replay
    "after-final-spooled": ("Success", 1, 1),  # the spooled Success is sent; no Failed follows
    "after-send-before-remove": ("Success", 1, 1),  # sent twice; the second changes nothing
    "mid-step": ("Failed", 1, 0),  # killed from outside while its script sleeps
}


def test_an_agent_killed_at_each_point_of_an_invocation(tmp_path):
    fleet = FaultFleet(tmp_path)
    marks = tmp_path / "marks"
    try:
        activation = fleet.activation("crash", len(POINTS))
        for point in POINTS:
            fleet.add(point, activation)
        fleet.wait_online(*POINTS)
        events = FinalEvents([a.instance_id() for a in fleet.agents.values()])
        # Armed only now: registration and start-up pass some points too.
        for point, agent in fleet.agents.items():
            agent.stop()
            fleet.shorten_visibility(point, 5)
            agent.start({} if point == "mid-step" else {"STEWARD_AGENT_CRASH_AT": point})
        fleet.wait_online(*POINTS)

        middle = 'case "$PWD" in */mid-step/*) sleep 120;; esac'
        command_id = fleet.ssm.send_command(
            DocumentName="AWS-RunShellScript",
            Targets=fleet.targets("crash"),
            Parameters={"commands": marked_script(marks, middle)},
            # Every node gets it, whatever the others' failures.
            MaxConcurrency="100%",
            MaxErrors="100%",
        )["Command"]["CommandId"]

        # Each agent is restarted (unarmed) as soon as it is down: the ramp
        # waits for a node's acknowledgement before it sends to more.
        down = set(POINTS)

        def restart_the_fallen():
            for point in sorted(down):
                agent = fleet.agents[point]
                if point == "mid-step":
                    if runs(marks, agent, command_id)[0] == 0:
                        continue
                    agent.kill(signal.SIGKILL)
                elif agent.proc.poll() is None:
                    continue
                assert agent.proc.returncode == -signal.SIGKILL, f"{point}: {agent.log()[-2000:]}"
                agent.start()
                down.discard(point)
            return not down

        wait_for(f"every crash point to be reached ({sorted(down)} left)", restart_the_fallen, timeout=300)

        expected = [Expected(fleet.agents[p], *want) for p, want in POINTS.items()]
        assert_clean(audit_command(AUDIT, fleet.ssm, command_id, expected, marks, events), fleet)
    finally:
        fleet.stop()


# --- every message delivered at least twice ------------------------------------------


def test_every_message_delivered_twice(tmp_path, stack):
    proxy = Redelivering(stack.env["AWS_ENDPOINT_URL"])
    fleet = FaultFleet(tmp_path)
    marks = tmp_path / "marks"
    names = ["twice-1", "twice-2", "twice-3"]
    try:
        activation = fleet.activation("twice", len(names))
        for name in names:
            fleet.add(name, activation, sqs_endpoint=proxy.url)
        fleet.wait_online(*names)
        for name in names:
            fleet.shorten_visibility(name, 3)
        events = FinalEvents([a.instance_id() for a in fleet.agents.values()])
        for _ in range(3):
            command_id = fleet.ssm.send_command(
                DocumentName="AWS-RunShellScript",
                Targets=fleet.targets("twice"),
                Parameters={"commands": marked_script(marks)},
            )["Command"]["CommandId"]
            expected = [Expected(a, "Success", 1, 1) for a in fleet.agents.values()]
            assert_clean(audit_command(AUDIT, fleet.ssm, command_id, expected, marks, events), fleet)
        # The proxy really did its part: each command's message came back
        # to every node, and every report went twice.
        assert proxy.swallowed_deletes >= 3 * len(names), proxy.swallowed_deletes
        assert proxy.doubled_sends >= 3, proxy.doubled_sends
        assert max(proxy.receives.values()) >= 2
    finally:
        fleet.stop()
        proxy.close()


# --- the control plane killed mid fan-out ----------------------------------------------


def control_plane(*args):
    subprocess.run(["bash", str(ROOT / "infra/control-plane.sh"), *args], check=True, cwd=ROOT)


def kill_control_plane():
    """SIGKILL to the local function host and everything it runs, as a
    crashed host would: no request finishes, nothing is flushed."""
    pidfile = ROOT / ".local/run/steward-local.pid"
    pid = int(pidfile.read_text())
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    wait_for("the control plane to die", lambda: not _alive(pid), timeout=30)
    pidfile.unlink(missing_ok=True)
    (ROOT / ".local/run/steward-local.stopped").write_text(str(int(time.time())))


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for this purpose.
    try:
        return "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return False


FAN_OUT = int(os.environ.get("STEWARD_FAULTS_FAN_OUT", "100"))


def test_the_control_plane_killed_mid_fan_out(tmp_path):
    fleet = FaultFleet(tmp_path)
    marks = tmp_path / "marks"
    names = [f"fan-{i:03d}" for i in range(FAN_OUT)]
    writer = ParameterWriter(fleet.ssm, f"/faults/{tmp_path.name}")
    try:
        activation = fleet.activation("fan", len(names))
        for name in names:
            fleet.add(name, activation)
        fleet.wait_online(*names, timeout=300)
        events = FinalEvents([a.instance_id() for a in fleet.agents.values()])
        command_id = fleet.ssm.send_command(
            DocumentName="AWS-RunShellScript",
            Targets=fleet.targets("fan"),
            Parameters={"commands": marked_script(marks, "sleep 1")},
            MaxConcurrency="10",
        )["Command"]["CommandId"]

        # Mid fan-out: some nodes have run it, most have not been sent it.
        def some_done():
            done = len([line for line in _lines(marks) if line.startswith("end ")])
            return done >= 5 and done
        wait_for("the first nodes to finish", some_done, timeout=120)
        # A parameter is overwritten throughout: no acknowledged version may be lost.
        with writer:
            time.sleep(1)
            kill_control_plane()
            control_plane("start")
            time.sleep(2)
        parameter_findings = writer.audit(AUDIT)

        expected = [Expected(a, "Success", 1, 1) for a in fleet.agents.values()]
        findings = audit_command(
            AUDIT, fleet.ssm, command_id, expected, marks, events, timeout=300, control_plane_killed=True
        )
        assert writer.acknowledged, "no PutParameter was answered"
        assert_clean(findings + parameter_findings, fleet)
    finally:
        with contextlib.suppress(Exception):
            writer.delete()
        fleet.stop()
        # Whatever happened above, the suite goes on with a control plane.
        control_plane("start")


def _lines(path):
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []

