"""The fault suite, clocks: one node's clock ten minutes ahead, another's ten
minutes behind (libfaketime under the agent), a third in sync. Commands
reach all three, run once and end Success, their reports count, and the
audit is clean — the agent signs and checks with the control plane's time,
learned from the API's answers, not with its own clock. The commands use
every node-signed request: credentials, a `{{ssm-secure:…}}` value and
output to S3."""

from __future__ import annotations

import glob
import re
import time
import uuid
from datetime import datetime, timezone

import pytest

from faults import Audit, Expected, FaultFleet, FinalEvents, assert_clean, audit_command, audit_printer, marked_script
from fleet import localstack_client, stack_env, wait_for

AUDIT = Audit()
audit_counts = audit_printer(AUDIT)

SKEW = {"ahead": 600, "behind": -600, "in-sync": 0}
# What the agent logs, once, when its clock is off (the words operators grep for).
SKEW_WARNING = "clock differs from the control plane"


def libfaketime() -> str:
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    if not found:
        pytest.fail("libfaketime is not installed (Debian package faketime; infra/install.sh installs it)", pytrace=False)
    return found[0]


def skewed(seconds: int) -> dict[str, str]:
    if not seconds:
        return {}
    return {
        "LD_PRELOAD": libfaketime(),
        "FAKETIME": f"{seconds:+d}s",
        # Wall-clock only: tokio's timers run on the monotonic clock.
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    }


LOG_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z")


def log_clock_offset(agent) -> float:
    """How far the agent's own clock is from ours: its last log line's
    timestamp against the time we read it (logs are written as they happen)."""

    def last_stamp():
        stamps = LOG_TIME.findall(agent.log())
        return stamps[-1] if stamps else None

    stamp = wait_for(f"a timestamped log line from {agent.name}", last_stamp, timeout=30)
    logged = datetime.fromisoformat(stamp).replace(tzinfo=timezone.utc).timestamp()
    return logged - time.time()


def near_now(when: datetime, slack=120) -> bool:
    return abs(when.timestamp() - time.time()) < slack


def test_clocks_ten_minutes_off(tmp_path):
    fleet = FaultFleet(tmp_path)
    marks = tmp_path / "marks"
    secret_name = f"/steward-faults/clock-{uuid.uuid4().hex[:8]}/s"
    secret = f"s-{uuid.uuid4().hex}"
    bucket = stack_env()["STEWARD_OUTPUT_BUCKET"]
    prefix = f"faults-clock-{uuid.uuid4().hex[:8]}"
    try:
        fleet.ssm.put_parameter(Name=secret_name, Type="SecureString", Value=secret)
        activation = fleet.activation("clock", 2 * len(SKEW))
        for name, seconds in SKEW.items():
            fleet.add(name, activation, env=skewed(seconds))
        fleet.wait_online(*SKEW, timeout=90)

        # The skew is real: each agent logs in its own (faked) time.
        for name, seconds in SKEW.items():
            seen = log_clock_offset(fleet.agents[name])
            assert abs(seen - seconds) < 60, f"{name}: its log is {seen:+.0f}s off, expected {seconds:+d}s"

        events = FinalEvents([a.instance_id() for a in fleet.agents.values()])

        def run_and_audit():
            command_id = fleet.ssm.send_command(
                DocumentName="AWS-RunShellScript",
                Targets=fleet.targets("clock"),
                # Ends only if the node got the value (GetNodeParameters).
                Parameters={"commands": marked_script(marks, f'test "{{{{ssm-secure:{secret_name}}}}}" = "{secret}" || exit 1')},
                OutputS3BucketName=bucket,
                OutputS3KeyPrefix=prefix,
                # The message expires 5 minutes from now in the control
                # plane's time: to a node ten minutes ahead, already, unless
                # it checks with the control plane's time.
                TimeoutSeconds=300,
            )["Command"]["CommandId"]
            expected = [Expected(a, "Success", 1, 1) for a in fleet.agents.values()]
            assert_clean(audit_command(AUDIT, fleet.ssm, command_id, expected, marks, events), fleet)
            # Each node's output reached S3 (presigned URLs, or fresh ones
            # from GetOutputUploadUrls).
            for name, agent in fleet.agents.items():
                key = f"{prefix}/{command_id}/{agent.instance_id()}/awsrunShellScript/0.awsrunShellScript/stdout"
                localstack_client("s3").head_object(Bucket=bucket, Key=key)
            return command_id

        command_id = run_and_audit()

        # The reports count in the control plane's time: what a node says
        # about when it ran, and its last ping, are near our now, not ten
        # minutes off.
        for name, agent in fleet.agents.items():
            inv = fleet.ssm.get_command_invocation(CommandId=command_id, InstanceId=agent.instance_id())
            start = datetime.fromisoformat(inv["ExecutionStartDateTime"].replace("Z", "+00:00"))
            assert near_now(start), f"{name}: ExecutionStartDateTime {start}"
            info = fleet.ssm.describe_instance_information(
                Filters=[{"Key": "InstanceIds", "Values": [agent.instance_id()]}]
            )["InstanceInformationList"][0]
            assert near_now(info["LastPingDateTime"]), f"{name}: LastPingDateTime {info['LastPingDateTime']}"

        def warned_once_per_start(starts):
            for name, seconds in SKEW.items():
                count = fleet.agents[name].log().count(SKEW_WARNING)
                want = starts if seconds else 0
                assert count == want, f"{name}: warned {count}x, expected {want}\n{fleet.agents[name].log()[-2000:]}"

        # Only the skewed nodes warn, and once each.
        warned_once_per_start(1)

        # Restarted, an agent knows no offset until the API tells it: its
        # first signed request is refused as expired, it learns the time
        # from that answer and signs again.
        for name, seconds in SKEW.items():
            agent = fleet.agents[name]
            agent.stop()
            agent.start(skewed(seconds))
        fleet.wait_online(*SKEW, timeout=90)
        run_and_audit()
        warned_once_per_start(2)
    finally:
        fleet.stop()
        fleet.ssm.delete_parameter(Name=secret_name)
