"""Run Command at fleet scale: N real steward-agent processes (one process
per node, the same binary as in production) on this machine, one command to
all of them, at each MaxConcurrency given.

Prints, per run: time from SendCommand to the command final, p50/p99 of the
invocation latency (command requested -> invocation finished), the AWS
requests a deployed stack would be billed for, per invocation and by
service (how they are counted: bench/meter.py, printed first), the fleet's
total RSS, and where the CPU went (CPU seconds of LocalStack, DynamoDB
Local, the control plane and the agents against what the cores give).

Idle traffic (every agent's long poll and heartbeat, the pollers' long
polls, the scheduler tick, the demo fleet) is measured right after each run,
over a window as long as the run's, and subtracted; both windows last whole
minutes (the period of every idle source), so periodic traffic falls in both
alike. A figure that goes negative is printed as is and flagged, never
clamped.

`--verify` runs one command on one agent instead and checks the count
against a table of the requests each step makes, written from the code
(see `expected_requests`); it exits non-zero on any difference.

    make bench-scale                       # verify, then 500 agents
    python bench/scale_bench.py --verify   # the check alone

Asserts nothing about time.
"""

import argparse
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import meter  # noqa: E402
from fleet import LOCAL, Agent, Fleet, event_queue, localstack_client, stack_env  # noqa: E402

FINAL = {"Success", "Failed", "TimedOut", "Cancelled"}
# After the command is final, the window stays open this long so that the
# run's last requests (the pollers' deletes, the agents' own) fall inside it.
SETTLE_SECONDS = 3.0
POLL_SECONDS = 0.25
# The period every idle source repeats with: the agents' heartbeat (60 s
# here, 5 s for the demo fleet), the scheduler tick (60 s), long polls (20 s).
IDLE_PERIOD_SECONDS = 60


class QuietAgent(Agent):
    """An agent with production's heartbeat (60 s), not the tests' 2 s."""

    heartbeat = "60"

    def argv(self):
        argv = super().argv()
        i = argv.index("--heartbeat-seconds")
        argv[i + 1] = self.heartbeat
        return argv


class SilentAgent(QuietAgent):
    """No heartbeat inside a verify window (one an hour)."""

    heartbeat = "3600"


class CountedPolls:
    """Counts the benchmark's own SSM calls (client side), by operation."""

    def __init__(self, ssm):
        self.calls = Counter()
        ssm.meta.events.register("before-call.ssm.*", self._count)

    def _count(self, model, **_):
        self.calls[model.name] += 1


def wait_final(ssm, command_id, timeout=900):
    """Polls ListCommands every POLL_SECONDS until the command is final."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = ssm.list_commands(CommandId=command_id)["Commands"][0]
        if c["Status"] in FINAL:
            return c
        time.sleep(POLL_SECONDS)
    raise SystemExit(f"error: command {command_id} not final after {timeout} s")


def rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_stat(pid):
    """(session id, CPU seconds of the process and its reaped children)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces: the fields after it start past ")".
    fields = raw[raw.rindex(")") + 2:].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return int(fields[3]), (utime + stime + cutime + cstime) / CLK_TCK


def session_of(name):
    try:
        return int((LOCAL / "run" / f"{name}.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def cpu_by_part(agent_pids):
    """CPU seconds so far of each part of the system, by session: the local
    stack's and control plane's are their pid files' sessions (each is
    started in its own), every agent is in its own session too."""
    parts = {"localstack": session_of("localstack"), "dynamodb-local": session_of("dynamodb"),
             "control plane": session_of("steward-local")}
    by_session = {sid: name for name, sid in parts.items() if sid}
    agents = set(agent_pids)
    out = Counter()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        st = proc_stat(entry.name)
        if st is None:
            continue
        sid, cpu = st
        if sid in by_session:
            out[by_session[sid]] += cpu
        elif sid in agents:
            out["agents"] += cpu
    return out


def parse_time(v):
    if isinstance(v, datetime):
        return v.timestamp()
    return float(v)


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(p * len(sorted_values)) - 1))]


def own_polls_cost(polls):
    """What the benchmark's own ListCommands polls cost in a window: one API
    invocation and one GetItem each (the verify's table checks this)."""
    n = polls.get("ListCommands", 0)
    return Counter({"lambda.api AmazonSSM.ListCommands": n, "dynamodb.GetItem (read)": n}) if n else Counter()


def scaled(bill, seconds):
    """A window's billed requests scaled to `seconds` (windows differ by
    milliseconds; the scale keeps the subtraction honest)."""
    f = seconds / bill.window if bill.window else 1.0
    return Counter({k: v * f for k, v in bill.billed().items()})


def run(fleet, tag, n, concurrency, counted):
    ssm = fleet.ssm
    agent_pids = [a.proc.pid for a in fleet.agents.values() if a.proc]
    cpu_before = cpu_by_part(agent_pids)
    calls_before = Counter(counted.calls)
    m = meter.mark()
    start = time.monotonic()
    cmd = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        Targets=fleet.targets(tag),
        MaxConcurrency=concurrency,
        MaxErrors="100%",
        TimeoutSeconds=3600,
        Parameters={"commands": ["echo scale"]},
    )["Command"]
    cid = cmd["CommandId"]
    c = wait_final(ssm, cid)
    elapsed = time.monotonic() - start
    cpu = cpu_by_part(agent_pids)
    # Both windows last a whole number of the idle traffic's period, so that
    # periodic requests fall in them equally whatever their phase.
    window = math.ceil((time.monotonic() - m.at + SETTLE_SECONDS) / IDLE_PERIOD_SECONDS) * IDLE_PERIOD_SECONDS
    time.sleep(max(0.0, m.at + window - time.monotonic()))
    polls = counted.calls - calls_before
    run_bill = meter.since(m)
    # The idle baseline: right after the run, as long as the run's window.
    im = meter.mark()
    time.sleep(run_bill.window)
    idle_bill = meter.since(im)

    requested = parse_time(c["RequestedDateTime"])
    latencies, starts, statuses = [], [], Counter()
    for page in ssm.get_paginator("list_command_invocations").paginate(CommandId=cid, Details=True):
        for inv in page["CommandInvocations"]:
            statuses[inv["Status"]] += 1
            plugins = inv.get("CommandPlugins", [])
            ends = [parse_time(p["ResponseFinishDateTime"]) for p in plugins if p.get("ResponseFinishDateTime")]
            begun = [parse_time(p["ResponseStartDateTime"]) for p in plugins if p.get("ResponseStartDateTime")]
            if ends:
                latencies.append(max(ends) - requested)
            if begun:
                starts.append(min(begun) - requested)
    latencies.sort()
    starts.sort()
    rss = sum(rss_kib(a.proc.pid) for a in fleet.agents.values() if a.proc and a.proc.poll() is None)
    ok = c["Status"] == "Success" and statuses.get("Success", 0) == n
    print(
        f"{n} agents, MaxConcurrency {concurrency}: all final in {elapsed:.2f} s (polled every {POLL_SECONDS} s) "
        f"({c['Status']}, {dict(statuses)}); "
        + (f"invocation latency p50 {statistics.median(latencies):.2f} s p99 {percentile(latencies, 0.99):.2f} s; " if latencies else "")
        + f"fleet RSS {rss / 1024:.0f} MiB"
    )
    if starts:
        print(
            f"  timeline from SendCommand (records' own times): first node started at {starts[0]:.2f} s, "
            f"half by {statistics.median(starts):.2f} s, last at {starts[-1]:.2f} s; last step finished at {latencies[-1]:.2f} s"
        )
    own = own_polls_cost(polls)
    run_billed = run_bill.billed() - own
    idle_billed = scaled(idle_bill, run_bill.window)
    print(f"  run window {run_bill.window:.1f} s (SendCommand .. final + {SETTLE_SECONDS:.0f} s, "
          f"rounded up to whole {IDLE_PERIOD_SECONDS} s), billed: "
          + meter.fmt_counts(meter.by_service(run_bill.billed())))
    print(f"  the benchmark's own ListCommands polls, removed: {polls.get('ListCommands', 0)} "
          "(1 API invocation + 1 DynamoDB GetItem each)")
    print(f"  idle window right after, {idle_bill.window:.1f} s (scaled to {run_bill.window:.1f} s): "
          + ", ".join(f"{k} {v:.0f}" for k, v in sorted(meter.by_service(idle_billed).items())))
    late = idle_bill.messages.get("work", 0)
    if late:
        print(f"  WARNING: {late} work items in the idle window: deadline items of an earlier command, which come back "
              "every 900 s (SQS's longest delay) until its time-out; subtracted with the idle traffic, they make "
              "this run's work-queue figures too low. Run where no command ran in the last hour for clean figures.")
    meter.print_net("AWS requests per invocation, (run - idle) / n, by service",
                    meter.by_service(run_billed), meter.by_service(idle_billed), n)
    meter.print_net("per invocation, by request", run_billed, idle_billed, n, indent="    ")
    used = {k: cpu[k] - cpu_before.get(k, 0.0) for k in ("localstack", "dynamodb-local", "control plane", "agents")}
    cores = os.cpu_count() or 1
    print(
        f"  CPU seconds used in {elapsed:.1f} s ({cores} cores: {cores * elapsed:.0f} CPU s available): "
        + ", ".join(f"{k} {v:.1f} ({v / (cores * elapsed):.0%})" for k, v in used.items())
    )
    return ok


# --- the verify run --------------------------------------------------------------------------

def expected_requests(polls, ingest_batches, ticks, deliveries):
    """The requests of one command (AWS-RunShellScript, OutputS3BucketName
    set) to one agent, step by step, as the code makes them: (step, who,
    request, count). `polls` is the benchmark's ListCommands calls (counted
    client side), `ingest_batches` the batches the two reports came in (1 or
    2), `ticks` the scheduler ticks in the window, `deliveries` the events
    the verify rule's queue received."""
    return [
        ("SendCommand", "api", "lambda.api AmazonSSM.SendCommand", 1),
        ("SendCommand", "api", "dynamodb.Query (read)", 2),  # tag index: one per tag filter (suite, env)
        ("SendCommand", "api", "dynamodb.PutItem (write)", 1),  # the command
        ("SendCommand", "api", "sqs.SendMessage", 1),  # FanOut work item
        ("SendCommand", "api", "events.PutEvents", 1),  # command Pending
        ("fan-out", "work poller", "sqs.ReceiveMessage", 1),
        ("fan-out", "work poller", "lambda.work batch", 1),
        ("fan-out", "work poller", "sqs.DeleteMessageBatch", 1),
        ("fan-out", "dispatch", "dynamodb.GetItem (read)", 3),  # command, node's address, command (settle)
        ("fan-out", "dispatch", "dynamodb.PutItem (write)", 1),  # the invocation, if absent
        ("fan-out", "dispatch", "dynamodb.UpdateItem (write)", 1),  # the command's released counter
        ("fan-out", "dispatch", "kms.Sign", 1),  # the signed RunCommand (presigning S3 URLs: no request)
        ("fan-out", "dispatch", "sqs.SendMessage", 3),  # node queue; delivery and execution deadlines
        ("node", "agent", "sqs.ReceiveMessage", 1),
        ("node", "agent", "sqs.DeleteMessage", 1),
        ("node", "agent", "s3.PutObject", 2),  # stdout and stderr to presigned URLs
        ("node", "agent", "sqs.SendMessage", 2),  # reports: In Progress, Success
        ("reports", "ingest poller", "sqs.ReceiveMessage", ingest_batches),
        ("reports", "ingest poller", "lambda.ingest batch", ingest_batches),
        ("reports", "ingest poller", "sqs.DeleteMessageBatch", ingest_batches),
        ("reports", "ingest", "dynamodb.GetItem (read)", 6),  # per report: node key, invocation, command
        ("reports", "ingest", "dynamodb.TransactWriteItems (write)", 2),  # per report: invocation + counters
        ("reports", "ingest", "dynamodb.UpdateItem (write)", 2),  # command In Progress, then Success
        ("reports", "ingest", "events.PutEvents", 4),  # per report: invocation and command status change
        ("events", "EventBridge", "sqs.SendMessage (delivery)", deliveries),  # to the verify rule's queue
        ("ticks", "EventBridge schedule", "sqs.SendMessage (delivery)", ticks),  # to the scheduler queue
        ("ticks", "scheduler poller", "sqs.ReceiveMessage", ticks),
        ("ticks", "scheduler poller", "lambda.scheduler batch", ticks),
        ("ticks", "scheduler poller", "sqs.DeleteMessageBatch", ticks),
        ("ticks", "scheduler", "dynamodb.Query (read)", ticks),  # policies due: none
        ("polls", "benchmark", "lambda.api AmazonSSM.ListCommands", polls),
        ("polls", "api", "dynamodb.GetItem (read)", polls),  # the command
    ]


def drain_events(sqs, url):
    """Every event the verify rule delivered so far (outside any window)."""
    seen = []
    while True:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
        if not got:
            return seen
        for msg in got:
            seen.append(json.loads(msg["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])


def demo_fleet_pids():
    pids = []
    for f in (LOCAL / "run").glob("agent-*.pid"):
        try:
            pids.append(int(f.read_text().strip()))
        except (OSError, ValueError):
            pass
    return pids


def signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def check_window(bill, events):
    """Why this window cannot be checked against the table (traffic that is
    not the command's), or None."""
    api = {k: v for k, v in bill.api.items() if k not in ("AmazonSSM.SendCommand", "AmazonSSM.ListCommands")}
    if api:
        return f"other API calls in the window: {dict(api)}"
    if bill.batches.get("work", 0) != 1 or bill.messages.get("work", 0) != 1:
        return f"other work items in the window (an earlier command's deadlines?): {bill.messages.get('work', 0)} messages"
    if bill.messages.get("ingest", 0) != 2:
        return f"{bill.messages.get('ingest', 0)} ingest messages, not the two reports (a heartbeat?)"
    order = [e["detail"]["status"] for e in events if e["detail-type"] == "EC2 Command Invocation Status-change Notification"]
    if order != ["InProgress", "Success"]:
        return f"the reports were applied out of order (a standard queue does not keep order): {order}"
    return None


def verify_once(fleet, counted, sqs, url, bucket, pollers):
    calls_before = Counter(counted.calls)
    m = meter.mark()
    cmd = fleet.ssm.send_command(
        DocumentName="AWS-RunShellScript",
        Targets=fleet.targets("verify"),
        OutputS3BucketName=bucket,
        Parameters={"commands": ["echo verify"]},
    )["Command"]
    c = wait_final(fleet.ssm, cmd["CommandId"], timeout=120)
    time.sleep(SETTLE_SECONDS)
    bill = meter.since(m)
    polls = (counted.calls - calls_before).get("ListCommands", 0)
    events = drain_events(sqs, url)
    if c["Status"] != "Success":
        raise SystemExit(f"verify: error: the command ended {c['Status']}, not Success")
    why = check_window(bill, events)
    if why:
        return why, None
    ticks = bill.batches.get("scheduler", 0)
    rows = expected_requests(polls, bill.batches["ingest"], ticks, len(events))
    return None, (bill, polls, ticks, events, rows, pollers)


def report_verify(bill, polls, ticks, events, rows, pollers):
    print(f"verify: one command to one agent; window {bill.window:.1f} s; the benchmark polled ListCommands {polls} times; "
          f"{ticks} scheduler tick(s); {len(events)} events reached the verify rule's queue")
    print("  expected requests, step by step (from the code):")
    expected = Counter()
    for step, who, request, count in rows:
        if count:
            print(f"    {step:<12} {who:<21} {request:<40} {count}")
            expected[request] += count
    counted = bill.billed()
    failures = []
    print("  request                                   expected  counted")
    for key in sorted(set(expected) | set(counted)):
        if key == "sqs.ReceiveMessage":
            continue
        e, c = expected.get(key, 0), counted.get(key, 0)
        mark = "ok" if e == c else "DIFFERS"
        if e != c:
            failures.append(key)
        print(f"    {key:<40} {e:>8} {c:>8}  {mark}")
    # Long polls that return empty are not the command's: each long poller
    # (pollers, agents, paused demo agents) ends at most one per 20 s.
    got = counted.get("sqs.ReceiveMessage", 0)
    want = expected["sqs.ReceiveMessage"]
    empty = got - want
    bound = pollers * (math.ceil(bill.window / 20) + 1)
    ok = 0 <= empty <= bound
    print(f"    {'sqs.ReceiveMessage':<40} {want:>8} {got:>8}  {'ok' if ok else 'DIFFERS'} "
          f"({want} that returned messages + {empty} empty long polls; at most {bound} can end in the window)")
    if not ok:
        failures.append("sqs.ReceiveMessage")
    # Two sources that must agree: the control plane's SDK counters and the logs.
    cp = bill.control_plane
    for what, a, b in (
        ("DeleteMessageBatch: SDK counter vs batches in the log", cp.get("SQS.DeleteMessageBatch", 0), sum(bill.batches.values())),
        ("PutEvents: SDK counter vs LocalStack's log", cp.get("EventBridge.PutEvents", 0), counted.get("events.PutEvents", 0)),
        ("deliveries to the verify queue vs PutEvents", len(events), counted.get("events.PutEvents", 0)),
    ):
        print(f"    cross-check {what}: {a} = {b}  {'ok' if a == b else 'DIFFERS'}")
        if a != b:
            failures.append(what)
    exp_s, got_s = meter.by_service(expected), meter.by_service(counted)
    print("  by service, expected (ReceiveMessage: with the empty polls): "
          + meter.fmt_counts(exp_s + Counter({"sqs": max(empty, 0)})))
    print("  by service, counted:                                         " + meter.fmt_counts(got_s))
    if failures:
        print(f"verify: FAILED: {', '.join(failures)}")
        return False
    print("verify: OK, the count matches the requests added up by hand")
    return True


def verify():
    meter.check_sources()
    env = stack_env()
    bus = env["STEWARD_EVENT_BUS"]
    events = localstack_client("events")
    others = [r["Name"] for r in events.list_rules(EventBusName=bus)["Rules"]]
    if others:
        raise SystemExit(f"verify: error: rules on the {bus} bus would receive deliveries the table does not list: {others}")
    sqs, url = event_queue({"source": ["steward.ssm", "steward.agent"]})
    rule = url.rsplit("/", 1)[1]
    demo = demo_fleet_pids()
    try:
        with tempfile.TemporaryDirectory() as work:
            fleet = Fleet(work)
            counted = CountedPolls(fleet.ssm)
            try:
                act = fleet.activation("verify", 1)
                agent = SilentAgent("verify-0", fleet.workdir / "verify-0", fleet.api_url, env["AWS_ENDPOINT_URL"], act)
                fleet.agents["verify-0"] = agent
                agent.start()
                fleet.wait_online("verify-0", timeout=120)
                # The demo fleet's heartbeats are not the command's: paused
                # for the check, resumed after.
                signal_all(demo, signal.SIGSTOP)
                # One command first warms what a first call pays once (the
                # API's access-key cache, connections), and is not counted.
                warm = fleet.ssm.send_command(DocumentName="AWS-RunShellScript", Targets=fleet.targets("verify"),
                                              Parameters={"commands": ["true"]})["Command"]
                wait_final(fleet.ssm, warm["CommandId"], timeout=120)
                time.sleep(SETTLE_SECONDS)
                drain_events(sqs, url)
                pollers = 5 + 1 + len(demo)  # work x2, ingest x2, scheduler; the agent; the demo agents
                for attempt in range(1, 4):
                    why, result = verify_once(fleet, counted, sqs, url, env["STEWARD_OUTPUT_BUCKET"], pollers)
                    if result:
                        return report_verify(*result)
                    print(f"verify: attempt {attempt} not checkable, trying again: {why}")
                raise SystemExit("verify: error: no quiet window in three attempts")
            finally:
                fleet.stop()
    finally:
        signal_all(demo, signal.SIGCONT)
        events.remove_targets(Rule=rule, EventBusName=bus, Ids=["q"])
        events.delete_rule(Name=rule, EventBusName=bus)
        sqs.delete_queue(QueueUrl=url)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=500)
    ap.add_argument("--max-concurrency", nargs="+", default=["100%", "10%"])
    ap.add_argument("--start-batch", type=int, default=25, help="agents started at once while registering")
    ap.add_argument("--verify", action="store_true", help="check the count on one command to one agent, then stop")
    args = ap.parse_args()
    print(meter.HOW)
    print("  Idle traffic is measured right after each run, over a window as long as the run's (both whole minutes,")
    print("  the period of heartbeats, ticks and long polls), and subtracted;")
    print("  the benchmark's own ListCommands polls are removed. Negative differences are printed and flagged.")
    print()
    if args.verify:
        sys.exit(0 if verify() else 1)
    meter.check_sources()
    n = args.agents
    ok = True
    with tempfile.TemporaryDirectory() as work:
        fleet = Fleet(work)
        counted = CountedPolls(fleet.ssm)
        try:
            tag = f"scale{n}"
            activation = fleet.activation(tag, n)
            t = time.monotonic()
            names = [f"{tag}-{i:04d}" for i in range(n)]
            for b in range(0, n, args.start_batch):
                batch = names[b:b + args.start_batch]
                for name in batch:
                    agent = QuietAgent(name, fleet.workdir / name, fleet.api_url, fleet.env["AWS_ENDPOINT_URL"], activation)
                    fleet.agents[name] = agent
                    agent.start()
                fleet.wait_online(*batch, timeout=300)
            print(f"{n} agents registered and online in {time.monotonic() - t:.0f} s")
            rss = sum(rss_kib(fleet.agents[x].proc.pid) for x in names)
            print(f"fleet RSS idle: {rss / 1024:.0f} MiB ({rss / n / 1024:.1f} MiB per agent)")
            for concurrency in args.max_concurrency:
                ok = run(fleet, tag, n, concurrency, counted) and ok
        finally:
            fleet.stop()
    if not ok:
        raise SystemExit("error: a run did not end with every invocation Success")


if __name__ == "__main__":
    main()
