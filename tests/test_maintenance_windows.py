"""Maintenance windows end to end, on real agents: a window with two target
groups and three tasks of two priorities runs them in priority order within
the window, with a task's MaxConcurrency 1 holding its two nodes one at a
time (from the API's times and from what the shells wrote on the nodes); a
task that would start after the cutoff is not started (CANCELLED, the
execution TIMED_OUT); refusals by SSM's codes that create nothing; boto3,
the AWS CLI and `steward windows`.

Duration and Cutoff count in the stack's "hour": STEWARD_WINDOW_HOUR_SECONDS
(60 in `make test`); the tests hold for any value of 30 or more. Schedules
are real time: each window's cron is the next minute at least 40 s away."""

import json
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from fleet import Fleet, aws, listed, refused, ssm_client, wait_for
from schedules import daily_cron, epoch, mark_line, marks, next_minute, steward, window_hour_seconds

pytestmark = pytest.mark.usefixtures("stack")

FINAL = {"SUCCESS", "FAILED", "TIMED_OUT", "CANCELLED", "SKIPPED_OVERLAPPING"}
SLEEP = 2  # seconds each ordered task holds its node


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("windows"))
    for group in ("a", "b", "c"):
        activation = f.ssm.create_activation(
            DefaultInstanceName=f"e2e-mw-{group}", IamRole="steward-node", RegistrationLimit=1,
            Tags=[{"Key": "group", "Value": group}, {"Key": "suite", "Value": f.suite}],
        )
        f.add(group, activation)
    f.windows = []
    try:
        f.wait_online("a", "b", "c")
        yield f
    finally:
        f.stop()
        left = []
        for wid in f.windows:
            try:
                f.ssm.delete_maintenance_window(WindowId=wid)
            except Exception as e:
                # Never to run again, at least (and said, not swallowed).
                f.ssm.update_maintenance_window(WindowId=wid, Enabled=False)
                left.append((wid, e))
        assert not left, f"windows not deleted (disabled instead): {left}"


def group_targets(fleet, group):
    return [{"Key": "tag:group", "Values": [group]}, {"Key": "tag:suite", "Values": [fleet.suite]}]


def create_window(fleet, what, schedule, duration, cutoff, **extra):
    w = fleet.ssm.create_maintenance_window(
        Name=f"e2e-{fleet.suite}-{what}", Schedule=schedule, Duration=duration, Cutoff=cutoff,
        AllowUnassociatedTargets=False, **extra,
    )["WindowId"]
    fleet.windows.append(w)
    return w


def register_target(fleet, window_id, group):
    return fleet.ssm.register_target_with_maintenance_window(
        WindowId=window_id, ResourceType="INSTANCE", Targets=group_targets(fleet, group), Name=f"group-{group}",
    )["WindowTargetId"]


def register_task(fleet, window_id, name, priority, target_ids, commands, concurrency="2"):
    return fleet.ssm.register_task_with_maintenance_window(
        WindowId=window_id, Name=name, Priority=priority, TaskType="RUN_COMMAND", TaskArn="AWS-RunShellScript",
        Targets=[{"Key": "WindowTargetIds", "Values": target_ids}], MaxConcurrency=concurrency, MaxErrors="0",
        TaskInvocationParameters={"RunCommand": {"Parameters": {"commands": commands}, "TimeoutSeconds": 600}},
    )["WindowTaskId"]


def timed(file, label, seconds):
    """Marks `label start`, holds the node `seconds`, marks `label end`."""
    return [mark_line(file, f"{label} start"), f"sleep {seconds}", mark_line(file, f"{label} end")]


def iso(t):
    return datetime.fromisoformat(t.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def scheduled(fleet):
    """Both timed windows, due at the same next minute: the ordered one on
    nodes a and b, the cut-off one on node c (so neither holds the other's
    nodes)."""
    hour = window_hour_seconds()
    assert hour >= 30, f"these tests need a window hour of 30 s or more, not {hour}"
    due = next_minute(40)
    file = f"mw-{uuid.uuid4().hex[:8]}.log"
    order = create_window(fleet, "order", daily_cron(due), 2, 0)
    ta, tb = register_target(fleet, order, "a"), register_target(fleet, order, "b")
    register_task(fleet, order, "first-a", 1, [ta], timed(file, "p1-a", SLEEP))
    register_task(fleet, order, "first-b", 1, [tb], timed(file, "p1-b", SLEEP))
    register_task(fleet, order, "second", 2, [ta, tb], timed(file, "p2", SLEEP), concurrency="1")
    tasks = {"first-a": (1, "p1-a start"), "first-b": (1, "p1-b start"), "second": (2, "p2 start")}
    cut = create_window(fleet, "cutoff", daily_cron(due), 2, 1)
    tc = register_target(fleet, cut, "c")
    register_task(fleet, cut, "long", 1, [tc], timed(file, "long", hour + 15))
    register_task(fleet, cut, "late", 2, [tc], [mark_line(file, "late")])
    cut_tasks = {"long": (1, "long start"), "late": (2, "late")}
    return {"due": due, "hour": hour, "file": file, "order": order, "tasks": tasks, "targets": (ta, tb),
            "cut": cut, "cut_tasks": cut_tasks}


def wait_window_execution(ssm, window_id, timeout):
    def probe():
        runs = listed(ssm, "describe_maintenance_window_executions", "WindowExecutions", WindowId=window_id)
        done = [r for r in runs if r["Status"] in FINAL]
        return done[0] if done else None

    return wait_for(f"an execution of window {window_id}", probe, timeout=timeout, interval=2)


def execution_tasks(ssm, execution_id, registered):
    """{task name: (GetMaintenanceWindowExecutionTask's answer, [its invocations])}.
    `registered` is {name: (priority, label)}: an execution task is the
    registered one of its Priority, or, when several share it, the one whose
    label is in the commands its invocations sent."""
    out = {}
    for t in listed(ssm, "describe_maintenance_window_execution_tasks", "WindowExecutionTaskIdentities",
                    WindowExecutionId=execution_id):
        got = ssm.get_maintenance_window_execution_task(WindowExecutionId=execution_id, TaskId=t["TaskExecutionId"])
        invs = listed(ssm, "describe_maintenance_window_execution_task_invocations",
                      "WindowExecutionTaskInvocationIdentities",
                      WindowExecutionId=execution_id, TaskId=t["TaskExecutionId"])
        sent = " ".join(i.get("Parameters", "") for i in invs)
        same = [n for n, (priority, _) in registered.items() if priority == got["Priority"]]
        if len(same) > 1:
            same = [n for n in same if registered[n][1] in sent]
        assert len(same) == 1, (got, invs, registered)
        assert same[0] not in out, (same, out)
        out[same[0]] = (got, invs)
    return out


def test_tasks_run_by_priority_with_rate_control_within_the_window(fleet, scheduled):
    ssm, due, hour = fleet.ssm, scheduled["due"], scheduled["hour"]
    w = ssm.get_maintenance_window(WindowId=scheduled["order"])
    assert iso(w["NextExecutionTime"]) == due, (w["NextExecutionTime"], due)
    lead = due.timestamp() - datetime.now(timezone.utc).timestamp()
    e = wait_window_execution(ssm, scheduled["order"], timeout=lead + 2 * hour + 120)
    assert e["Status"] == "SUCCESS", e
    start, end = epoch(e["StartTime"]), epoch(e["EndTime"])
    assert start >= due.timestamp() - 1, (e, due)
    assert end <= due.timestamp() + 2 * hour + 5, (e, due)  # within its Duration (2 "hours")

    tasks = execution_tasks(ssm, e["WindowExecutionId"], scheduled["tasks"])
    assert sorted(tasks) == ["first-a", "first-b", "second"], tasks
    for name, (t, invs) in tasks.items():
        assert t["Status"] == "SUCCESS", (name, t)
        assert t["Priority"] == (2 if name == "second" else 1), t
        assert invs and all(i["Status"] == "SUCCESS" for i in invs), invs
    assert tasks["second"][0]["MaxConcurrency"] == "1"
    # Priority 1 ended, every task of it, before priority 2 started.
    p1_end = max(epoch(tasks[n][0]["EndTime"]) for n in ("first-a", "first-b"))
    p2_start = epoch(tasks["second"][0]["StartTime"])
    assert p1_end <= p2_start, (p1_end, p2_start)

    # The second task: one command to both nodes, one node at a time.
    [inv] = tasks["second"][1]
    cmd = ssm.list_commands(CommandId=inv["ExecutionId"])["Commands"][0]
    assert (cmd["MaxConcurrency"], cmd["Status"], cmd["TargetCount"]) == ("1", "Success", 2), cmd
    nodes = ssm.list_command_invocations(CommandId=inv["ExecutionId"], Details=True)["CommandInvocations"]
    a, b = fleet.agents["a"].instance_id(), fleet.agents["b"].instance_id()
    assert sorted(n["InstanceId"] for n in nodes) == sorted([a, b])
    spans = sorted((epoch(n["CommandPlugins"][0]["ResponseStartDateTime"]),
                    epoch(n["CommandPlugins"][0]["ResponseFinishDateTime"])) for n in nodes)
    assert spans[0][1] <= spans[1][0], spans

    # What the shells wrote on the nodes (one clock: the agents share this host).
    file = scheduled["file"]
    on_a, on_b = marks(fleet.agents["a"], file), marks(fleet.agents["b"], file)
    assert [label for label, _ in on_a] == ["p1-a start", "p1-a end", "p2 start", "p2 end"], on_a
    assert [label for label, _ in on_b] == ["p1-b start", "p1-b end", "p2 start", "p2 end"], on_b
    first_done = max(on_a[1][1], on_b[1][1])
    assert first_done <= min(on_a[2][1], on_b[2][1]), (on_a, on_b)
    p2_a, p2_b = sorted([(on_a[2][1], on_a[3][1]), (on_b[2][1], on_b[3][1])])
    assert p2_a[1] <= p2_b[0], (on_a, on_b)  # MaxConcurrency 1: never both at once
    assert all(start - 1 <= t <= end + 1 for _, t in on_a + on_b), (start, end, on_a, on_b)
    # Node c (not a target of this window) got nothing of it.
    assert [label for label, _ in marks(fleet.agents["c"], file) if label.startswith("p")] == []

    # `steward windows executions` shows it.
    shown = steward("windows", "executions", scheduled["order"]).stdout
    [row] = [line for line in shown.splitlines() if e["WindowExecutionId"] in line]
    assert "SUCCESS" in row, shown


def test_a_task_that_would_start_after_the_cutoff_is_not_started(fleet, scheduled):
    ssm, due, hour = fleet.ssm, scheduled["due"], scheduled["hour"]
    lead = due.timestamp() - datetime.now(timezone.utc).timestamp()
    e = wait_window_execution(ssm, scheduled["cut"], timeout=lead + 2 * hour + 120)
    assert e["Status"] == "TIMED_OUT", e
    tasks = execution_tasks(ssm, e["WindowExecutionId"], scheduled["cut_tasks"])
    long, long_invs = tasks["long"]
    assert long["Status"] == "SUCCESS", long
    # It ran past the cutoff (start + Duration - Cutoff = start + 1 hour).
    cutoff_at = epoch(e["StartTime"]) + hour
    assert epoch(long["EndTime"]) > cutoff_at, (long, cutoff_at)
    late, late_invs = tasks["late"]
    assert late["Status"] == "CANCELLED", late
    assert "cutoff" in late.get("StatusDetails", "").lower(), late
    assert "StartTime" not in late or late["StartTime"] is None, late
    assert late_invs == [], late_invs
    # Its shell never ran.
    labels = [label for label, _ in marks(fleet.agents["c"], scheduled["file"])]
    assert labels == ["long start", "long end"], labels


def windows_named(ssm, name):
    return [w for w in listed(ssm, "describe_maintenance_windows", "WindowIdentities") if w["Name"] == name]


def test_bad_input_is_refused_and_creates_nothing(fleet):
    ssm = ssm_client(validate=False)
    name = f"e2e-{fleet.suite}-bad"
    good = {"Name": name, "Schedule": "cron(0 2 ? * SUN *)", "Duration": 2, "Cutoff": 1,
            "AllowUnassociatedTargets": False}
    for change in ({"Schedule": "cron(0/2 * * * ? *)"},  # every 2 minutes: under SSM's 5
                   {"Cutoff": 2},  # Cutoff must be less than Duration
                   {"Cutoff": 3},
                   {"Duration": 25}):
        assert refused(ssm.create_maintenance_window, "ValidationException", **{**good, **change})
        assert windows_named(ssm, name) == []
    proc = aws("ssm", "create-maintenance-window", "--name", name, "--schedule", "cron(0 2 ? * SUN *)",
               "--duration", "1", "--cutoff", "1", "--no-allow-unassociated-targets", check=False)
    assert proc.returncode != 0 and "ValidationException" in proc.stderr, proc.stderr
    assert windows_named(ssm, name) == []

    # Targets over the limit, on a window that exists: refused, none registered.
    wid = create_window(fleet, "limits", "cron(0 2 ? * SUN *)", 2, 1)
    six = [{"Key": f"tag:k{i}", "Values": ["v"]} for i in range(6)]
    assert refused(ssm.register_target_with_maintenance_window, "ValidationException",
                   WindowId=wid, ResourceType="INSTANCE", Targets=six)
    assert listed(ssm, "describe_maintenance_window_targets", "Targets", WindowId=wid) == []
    assert refused(ssm.register_task_with_maintenance_window, "ValidationException",
                   WindowId=wid, TaskArn="AWS-RunShellScript", TaskType="RUN_COMMAND", Priority=1,
                   Targets=six, MaxConcurrency="1", MaxErrors="0")
    assert listed(ssm, "describe_maintenance_window_tasks", "Tasks", WindowId=wid) == []


def test_the_cli_and_the_aws_cli_show_the_coming_executions(fleet):
    name = f"e2e-{fleet.suite}-nightly"
    created = aws("ssm", "create-maintenance-window", "--name", name, "--schedule", "cron(0 3 ? * * *)",
                  "--schedule-timezone", "UTC", "--duration", "2", "--cutoff", "1",
                  "--no-allow-unassociated-targets")
    wid = created["WindowId"]
    fleet.windows.append(wid)
    now = datetime.now(timezone.utc)
    first = now.replace(hour=3, minute=0, second=0, microsecond=0)
    if first <= now:
        first += timedelta(days=1)
    expected = [first + timedelta(days=i) for i in range(3)]

    coming = aws("ssm", "describe-maintenance-window-schedule", "--window-id", wid, "--max-results", "3")
    assert [iso(s["ExecutionTime"]) for s in coming["ScheduledWindowExecutions"]] == expected, coming
    assert {s["WindowId"] for s in coming["ScheduledWindowExecutions"]} == {wid}

    text = steward("windows", "next", wid, "--count", "3").stdout
    rows = [line for line in text.splitlines() if wid in line]
    assert len(rows) == 3, text
    times = [iso(row.split("│")[1].split("┆")[0].strip()) for row in rows]
    assert times == expected, text
    as_json = json.loads(steward("-o", "json", "windows", "next", wid, "--count", "3").stdout)
    assert as_json == {"ScheduledWindowExecutions": coming["ScheduledWindowExecutions"]}

    # Every enabled window's: this one's among them, all in time order.
    every = json.loads(steward("-o", "json", "windows", "next", "--count", "3").stdout)["ScheduledWindowExecutions"]
    mine = [s for s in every if s["WindowId"] == wid]
    assert [iso(s["ExecutionTime"]) for s in mine] == expected, every
    assert all(s["Name"] == name for s in mine)
    assert [iso(s["ExecutionTime"]) for s in every] == sorted(iso(s["ExecutionTime"]) for s in every)
    # A disabled window has nothing coming, and is not asked.
    fleet.ssm.update_maintenance_window(WindowId=wid, Enabled=False)
    every = json.loads(steward("-o", "json", "windows", "next").stdout)["ScheduledWindowExecutions"]
    assert [s for s in every if s["WindowId"] == wid] == []
    fleet.ssm.update_maintenance_window(WindowId=wid, Enabled=True)

    table = steward("windows").stdout
    [row] = [line for line in table.splitlines() if wid in line]
    for cell in (name, "yes", "cron(0 3 ? * * *)", "UTC", "2 h", "1 h"):
        assert cell in row, (cell, row)
    shown = steward("windows", "show", wid).stdout
    assert f"Window      {wid}" in shown and "Duration    2 h, cutoff 1 h" in shown, shown
    missing = steward("windows", "show", "mw-0123456789abcdef0", check=False)
    assert missing.returncode == 2 and "steward windows" in missing.stderr, missing.stderr

    # Deleted, it is gone: not listed, not found, nothing coming.
    assert fleet.ssm.delete_maintenance_window(WindowId=wid)["WindowId"] == wid
    fleet.windows.remove(wid)
    assert windows_named(fleet.ssm, name) == []
    assert refused(fleet.ssm.get_maintenance_window, "DoesNotExistException", WindowId=wid)
    gone = steward("windows", "next", wid, check=False)
    assert gone.returncode == 2 and "DoesNotExistException" in gone.stderr, gone.stderr


def test_a_task_naming_an_output_bucket_the_stack_cannot_write_is_refused():
    """Refused when the task is registered (or changed), not at each run."""
    from fleet import stack_env

    ssm = ssm_client()
    suite = uuid.uuid4().hex[:8]
    ours = stack_env()["STEWARD_OUTPUT_BUCKET"]
    foreign = f"e2e-not-this-stacks-{suite}"
    wid = ssm.create_maintenance_window(
        Name=f"e2e-{suite}-outbucket", Schedule="cron(0 2 ? * SUN *)", Duration=2, Cutoff=1,
        AllowUnassociatedTargets=False,
    )["WindowId"]
    try:
        target = ssm.register_target_with_maintenance_window(
            WindowId=wid, ResourceType="INSTANCE", Targets=[{"Key": "tag:e2e-outbucket", "Values": [suite]}],
        )["WindowTargetId"]
        task = {"WindowId": wid, "TaskArn": "AWS-RunShellScript", "TaskType": "RUN_COMMAND", "Priority": 1,
                "Targets": [{"Key": "WindowTargetIds", "Values": [target]}], "MaxConcurrency": "1",
                "MaxErrors": "0"}
        message = refused(ssm.register_task_with_maintenance_window, "ValidationException", **task,
                          TaskInvocationParameters={"RunCommand": {"OutputS3BucketName": foreign}})
        assert foreign in message and ours in message, message
        assert refused(ssm.register_task_with_maintenance_window, "ValidationException", **task,
                       LoggingInfo={"S3BucketName": foreign, "S3Region": "us-east-1"})
        proc = aws("ssm", "register-task-with-maintenance-window", "--window-id", wid,
                   "--task-arn", "AWS-RunShellScript", "--task-type", "RUN_COMMAND",
                   "--targets", f"Key=WindowTargetIds,Values={target}", "--max-concurrency", "1",
                   "--max-errors", "0", "--task-invocation-parameters",
                   json.dumps({"RunCommand": {"OutputS3BucketName": foreign}}), check=False)
        assert proc.returncode != 0 and "ValidationException" in proc.stderr, proc.stderr
        assert listed(ssm, "describe_maintenance_window_tasks", "Tasks", WindowId=wid) == []

        tid = ssm.register_task_with_maintenance_window(
            **task, TaskInvocationParameters={"RunCommand": {"OutputS3BucketName": ours}},
        )["WindowTaskId"]
        assert refused(ssm.update_maintenance_window_task, "ValidationException", WindowId=wid,
                       WindowTaskId=tid, TaskInvocationParameters={"RunCommand": {"OutputS3BucketName": foreign}})
        got = ssm.get_maintenance_window_task(WindowId=wid, WindowTaskId=tid)
        assert got["TaskInvocationParameters"]["RunCommand"]["OutputS3BucketName"] == ours, got
    finally:
        ssm.delete_maintenance_window(WindowId=wid)
