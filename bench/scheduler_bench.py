"""Scheduler figures (State Manager associations and maintenance windows):

1. How late a due association starts: ASSOCIATIONS (100) associations of
   AWS-RunShellScript (`true`), all with the same daily cron for the next
   minute at least 90 s away and ApplyOnlyAtCronInterval (so only the cron
   run counts, none at creation), each targeting one real agent by its
   instance id. For each, the command its cron run sent (the execution's
   output source): its RequestedDateTime minus the cron time; p50, p99 and
   the largest. Lateness is bounded below by how often the scheduler ticks:
   the running control plane's STEWARD_SCHEDULER_TICK_SECONDS is printed
   beside it (locally a few seconds; deployed, the once-a-minute rule).
2. Scheduler requests per tick when nothing is due, measured in a control
   plane process of the benchmark's own (the same steward-local, on a free
   port, its queues the benchmark's own, ticking itself every
   TICK_SECONDS): only its own ticks reach it, so its SDK counters are its
   ticks' requests and its log says how many ticks it handled (bench/
   meter.py, `process_only`). Counted over IDLE_SECONDS, divided by the
   ticks observed, first with what the tables hold now, then again with
   1,000 more associations and 100 more windows defined, none due within
   the window (daily crons hours away; targets that match no node).

    make bench-scheduler                         # release control plane (bench/scheduler.sh)
    python bench/scheduler_bench.py              # against whatever runs
    python bench/scheduler_bench.py --idle-only  # part 2 alone

Asserts nothing about time; fails when a run fails or a count cannot be made.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import meter  # noqa: E402
from automation_bench import BenchFailed, PrivateControlPlane  # noqa: E402
from fleet import Fleet, listed, ssm_client, wait_for  # noqa: E402
from scale_bench import percentile  # noqa: E402
from schedules import control_plane_env, daily_cron, epoch, next_minute  # noqa: E402

ASSOCIATIONS = 100
DEFINED_ASSOCIATIONS = 1000
DEFINED_WINDOWS = 100
TICK_SECONDS = 2
IDLE_SECONDS = 60
WORKERS = 8

HOW = f"""How the idle tick is counted:
  A steward-local of the benchmark's own (its five queues created for it, the stack's tables) ticks
  itself every {TICK_SECONDS} s (STEWARD_SCHEDULER_TICK_SECONDS). Nothing else sends it anything, so the
  AWS requests its SDK counters record in a {IDLE_SECONDS} s window are its ticks' and its pollers'.
  Ticks observed = the scheduler messages its log says it handled ("batch handled queue=scheduler").
  Per tick = requests in the window / ticks observed, by request:
    DynamoDB (reads, writes), sqs.DeleteMessageBatch (the tick's delete), the Lambda invocation
    (one per batch of ticks) -- all caused by ticks.
  Shown apart, not divided: sqs.ReceiveMessage (every poller's 20 s long polls, empty or not: they
    run whether ticks come or not; those that returned a tick are the batch count) and sqs.SendMessage
    (the local process sending itself ticks; deployed, EventBridge's rule delivers one message per
    minute, billed to the queue owner as one SendMessage)."""


def ssm_pool(fn, items):
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(fn, items))


# --- 1. lateness ---------------------------------------------------------------------------------

def lateness(workdir):
    ssm = ssm_client()
    fleet = Fleet(workdir)
    fleet.add("node", fleet.activation("bench-sched", 1))
    created = []
    try:
        [node] = fleet.wait_online("node")
        due = next_minute(90)
        tag = uuid.uuid4().hex[:8]

        def create(i):
            return ssm.create_association(
                Name="AWS-RunShellScript", AssociationName=f"bench-late-{tag}-{i:03d}",
                Targets=[{"Key": "InstanceIds", "Values": [node]}], ScheduleExpression=daily_cron(due),
                ApplyOnlyAtCronInterval=True, Parameters={"commands": ["true"]},
            )["AssociationDescription"]["AssociationId"]

        t0 = time.monotonic()
        created = ssm_pool(create, range(ASSOCIATIONS))
        made = time.monotonic() - t0
        lead = due.timestamp() - time.time()
        if lead < 5:
            raise BenchFailed(f"creating {ASSOCIATIONS} associations took {made:.0f} s, past their cron time")
        print(f"lateness: {ASSOCIATIONS} associations created in {made:.1f} s, all due at "
              f"{due.isoformat()} ({daily_cron(due)}), {lead:.0f} s ahead; target: one agent ({node})")

        def command_of(aid):
            runs = ssm.describe_association_executions(AssociationId=aid)["AssociationExecutions"]
            for e in runs:
                targets = ssm.describe_association_execution_targets(
                    AssociationId=aid, ExecutionId=e["ExecutionId"])["AssociationExecutionTargets"]
                for t in targets:
                    src = t.get("OutputSource", {}).get("OutputSourceId")
                    if src:
                        return e, src
            return None

        found = {}

        def probe():
            for aid in created:
                if aid not in found:
                    got = command_of(aid)
                    if got:
                        found[aid] = got
            return len(found) == len(created)

        wait_for(f"the cron runs of {ASSOCIATIONS} associations", probe, timeout=lead + 300, interval=2)
        late, early = [], []
        for aid, (e, command_id) in found.items():
            cmd = ssm.list_commands(CommandId=command_id)["Commands"][0]
            d = epoch(cmd["RequestedDateTime"]) - due.timestamp()
            (early if d < -1 else late).append(d)
            runs = ssm.describe_association_executions(AssociationId=aid)["AssociationExecutions"]
            if len(runs) != 1:
                raise BenchFailed(f"association {aid} has {len(runs)} executions, not the cron run alone: {runs}")
        if early:
            raise BenchFailed(f"{len(early)} commands were requested before their cron time: {sorted(early)[:5]}")
        late.sort()
        tick = control_plane_env("STEWARD_SCHEDULER_TICK_SECONDS") or "0"
        tick_note = (f"the control plane also ticks every {tick} s (local only)" if tick not in ("", "0")
                     else "the control plane ticks on the scheduler rule alone (every minute)")
        print(f"  start after the cron time (command RequestedDateTime - cron time), {len(late)} associations: "
              f"p50 {statistics.median(late):.2f} s, p99 {percentile(late, 0.99):.2f} s, max {late[-1]:.2f} s, "
              f"min {late[0]:.2f} s; {tick_note}")
    finally:
        remove(ssm, created, [])
        fleet.stop()


def _quietly(call, **kwargs):
    """Calls `call`; returns the error it answered, if any."""
    try:
        call(**kwargs)
    except ClientError as e:
        return e
    return None


def remove(ssm, aids, wids):
    """Deletes what the benchmark defined; says what could not be deleted
    (a window that cannot be deleted is disabled, so that it never runs)."""
    failed = [e for e in ssm_pool(lambda aid: _quietly(ssm.delete_association, AssociationId=aid), aids) if e]
    if failed:
        print(f"WARNING: {len(failed)} of {len(aids)} associations not deleted: {failed[0]}", file=sys.stderr)
    left = [w for w, e in zip(wids, ssm_pool(lambda wid: _quietly(ssm.delete_maintenance_window, WindowId=wid),
                                             wids)) if e]
    if left:
        errors = ssm_pool(lambda wid: _quietly(ssm.update_maintenance_window, WindowId=wid, Enabled=False), left)
        print(f"WARNING: {len(left)} of {len(wids)} windows not deleted "
              f"({'disabled instead' if not any(errors) else 'nor disabled'}), e.g. {left[0]}", file=sys.stderr)


# --- 2. requests per idle tick ---------------------------------------------------------------------

def idle_window(private, label):
    """Counts one idle window on the private control plane; prints and returns the per-tick figures."""
    m = meter.mark(private.metrics_url, private.log)
    time.sleep(IDLE_SECONDS)
    bill = meter.since(m, private.metrics_url, process_only=True)
    ticks = bill.messages.get("scheduler", 0)
    batches = bill.batches.get("scheduler", 0)
    if ticks == 0:
        raise BenchFailed(f"the benchmark's control plane handled no tick in {IDLE_SECONDS} s; see {private.log}")
    billed = bill.billed()
    shown_apart = {k: v for k, v in billed.items() if k in ("sqs.ReceiveMessage", "sqs.SendMessage")}
    per_tick = {k: v / ticks for k, v in sorted(billed.items()) if k not in shown_apart}
    writes = sum(v for k, v in billed.items() if k.startswith("dynamodb.") and "(write)" in k)
    total = sum(per_tick.values())
    print(f"  {label}: {ticks} ticks in {bill.window:.0f} s ({batches} batches); "
          f"{total:.2f} requests per tick: " + ", ".join(f"{k} {v:.2f}" for k, v in per_tick.items()))
    print(f"    apart: {meter.fmt_counts(shown_apart)} in the window "
          f"(of the ReceiveMessage, {batches} returned ticks; the rest are idle long polls)")
    if writes:
        print(f"    WARNING: {writes} DynamoDB writes: something was due in the window (another user's "
              "associations or windows?); the figure includes that work")
    return per_tick


def define(ssm, tag, hours_away):
    """DEFINED_ASSOCIATIONS associations and DEFINED_WINDOWS windows, none due
    for hours, matching no node. Returns (association ids, window ids)."""
    later = next_minute(hours_away * 3600)

    def association(i):
        return ssm.create_association(
            Name="AWS-RunShellScript", AssociationName=f"bench-idle-{tag}-{i:04d}",
            Targets=[{"Key": "tag:bench-idle", "Values": [tag]}], ScheduleExpression=daily_cron(later),
            ApplyOnlyAtCronInterval=True, Parameters={"commands": ["true"]},
        )["AssociationDescription"]["AssociationId"]

    def window(i):
        return ssm.create_maintenance_window(
            Name=f"bench-idle-{tag}-{i:03d}", Schedule=daily_cron(later), Duration=1, Cutoff=0,
            AllowUnassociatedTargets=False,
        )["WindowId"]

    t0 = time.monotonic()
    aids = ssm_pool(association, range(DEFINED_ASSOCIATIONS))
    wids = ssm_pool(window, range(DEFINED_WINDOWS))
    print(f"  defined {len(aids)} associations and {len(wids)} windows in {time.monotonic() - t0:.0f} s, "
          f"all due at {later.isoformat()} ({daily_cron(later)}), targets matching no node")
    return aids, wids


def idle_ticks(workdir):
    print(HOW)
    ssm = ssm_client()
    existing = (len(listed(ssm, "list_associations", "Associations")),
                len(listed(ssm, "describe_maintenance_windows", "WindowIdentities")))
    os.environ["STEWARD_SCHEDULER_TICK_SECONDS"] = str(TICK_SECONDS)
    private = PrivateControlPlane(workdir)
    aids, wids = [], []
    try:
        time.sleep(2 * TICK_SECONDS)  # past its first ticks (connections, caches)
        print("requests per idle tick:")
        idle_window(private, f"as the tables are ({existing[0]} associations, {existing[1]} windows)")
        aids, wids = define(ssm, uuid.uuid4().hex[:8], hours_away=3)
        idle_window(private, f"with {existing[0] + len(aids)} associations and {existing[1] + len(wids)} windows")
    finally:
        private.stop()
        remove(ssm, aids, wids)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--idle-only", action="store_true", help="the requests per idle tick alone")
    p.add_argument("--lateness-only", action="store_true", help="the lateness of due associations alone")
    args = p.parse_args()
    try:
        with tempfile.TemporaryDirectory(prefix="steward-bench-scheduler-") as work:
            if not args.idle_only:
                lateness(Path(work) / "late")
            if not args.lateness_only:
                idle_ticks(Path(work))
    except BenchFailed as e:
        print(f"FAILED: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
