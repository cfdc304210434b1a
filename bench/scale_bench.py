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

The agents of the scale run are the release binary with the agent's own
default heartbeat (no --heartbeat-seconds is passed; the default is read
from `steward-agent --help`). Before any command, the run measures the
idle cost per node (bench/idle_cost.py: a stack idle window before the
agents start, probe agents for the cost of one heartbeat and of one
credential fetch, an idle window with the N agents) and the agents' idle
RSS (VmRSS of each agent after that idle window, before the first command:
median and max).

Every figure that has a target is printed against it (bench/targets.py):
all final at MaxConcurrency 100% <= 10 s, AWS requests per invocation (every
service, Lambda invocations and EventBridge deliveries included, run -
idle) <= 6, idle RSS <= 10 MB, idle cost <= $0.06 per node-month; the
others (MaxConcurrency 10%, p50/p99 latency) are printed as having none.
A missed target does not fail the benchmark; a failed run does.

`--verify` runs one command on one agent instead and checks the count
against a table of the requests each step makes, written from the code
(see `expected_requests`); it exits non-zero on any difference.
`--idle-cost` runs the idle cost and idle RSS alone (no command is sent);
`--no-idle-cost` skips them. `--agent-binary` prints the release agent's
size against its target and stops.

    make bench-scale                       # every part (bench/scale.sh)
    python bench/scale_bench.py --verify   # the check alone

Asserts nothing about time.
"""

import argparse
import json
import math
import os
import signal
import statistics
import struct
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import idle_cost  # noqa: E402
import meter  # noqa: E402
import targets  # noqa: E402
from fleet import BIN, LOCAL, Agent, Fleet, event_queue, localstack_client, stack_env  # noqa: E402

FINAL = {"Success", "Failed", "TimedOut", "Cancelled"}
# After the command is final, the window stays open this long so that the
# run's last requests (the pollers' deletes, the agents' own) fall inside it.
SETTLE_SECONDS = 3.0
POLL_SECONDS = 0.25
# The period every idle source repeats with: the scheduler tick (60 s; 5 s
# more locally), long polls (20 s), the demo fleet's heartbeat (5 s). The
# scale agents' default heartbeat (900 s) is longer than any window: each
# heartbeats once when it starts, then not again for 900 s, so windows
# within 15 minutes of the start hold none of theirs (bench/idle_cost.py
# prices heartbeats from a measured per-heartbeat cost instead).
IDLE_PERIOD_SECONDS = 60
ALL_FINAL_TARGET_SECONDS = 10
REQUESTS_PER_INVOCATION_TARGET = 6
AGENT_BINARY_TARGET_MB = 6
IDLE_RSS_TARGET_MB = 10


class QuietAgent(Agent):
    """An agent with production's heartbeat (60 s), not the tests' 2 s."""

    heartbeat = "60"

    def argv(self):
        argv = super().argv()
        i = argv.index("--heartbeat-seconds")
        argv[i + 1] = self.heartbeat
        return argv


class DefaultHeartbeatAgent(Agent):
    """An agent with the agent's own default heartbeat: the tests' flag is
    not passed (and STEWARD_AGENT_HEARTBEAT_SECONDS is unset by `main`)."""

    def argv(self):
        argv = super().argv()
        i = argv.index("--heartbeat-seconds")
        del argv[i:i + 2]
        return argv


class ProbeAgent(QuietAgent):
    """The idle-cost probe: heartbeats often, to measure one heartbeat's cost."""

    heartbeat = str(idle_cost.PROBE_HEARTBEAT_SECONDS)


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
    label = f"{n} agents MaxConcurrency {concurrency}"
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
    per_service = meter.print_net("AWS requests per invocation, (run - idle) / n, by service",
                                  meter.by_service(run_billed), meter.by_service(idle_billed), n)
    meter.print_net("per invocation, by request", run_billed, idle_billed, n, indent="    ")
    used = {k: cpu[k] - cpu_before.get(k, 0.0) for k in ("localstack", "dynamodb-local", "control plane", "agents")}
    cores = os.cpu_count() or 1
    print(
        f"  CPU seconds used in {elapsed:.1f} s ({cores} cores: {cores * elapsed:.0f} CPU s available): "
        + ", ".join(f"{k} {v:.1f} ({v / (cores * elapsed):.0%})" for k, v in used.items())
    )
    if not ok:
        print(f"  {label}: the run did not end with every invocation Success: no figure against a target")
        return ok
    if concurrency == "100%":
        targets.check(f"{label}: all final", elapsed, ALL_FINAL_TARGET_SECONDS, "s")
    else:
        targets.info(f"{label}: all final", f"{elapsed:.2f} s")
    if latencies:
        targets.info(f"{label}: invocation latency p50", f"{statistics.median(latencies):.2f} s")
        targets.info(f"{label}: invocation latency p99", f"{percentile(latencies, 0.99):.2f} s")
    total = sum(per_service.values())
    targets.check(f"{label}: AWS requests per invocation (all services, run - idle)", total,
                  REQUESTS_PER_INVOCATION_TARGET, "", 2,
                  "every billed request: Lambda invocations and EventBridge deliveries included")
    return ok


# --- the verify run --------------------------------------------------------------------------

def expected_requests(polls, ingest_batches, ticks, deliveries, stream_batches, puts):
    """The requests of one command (AWS-RunShellScript, OutputS3BucketName
    set) to one agent, step by step, as the code makes them: (step, who,
    request, count). `polls` is the benchmark's ListCommands calls (counted
    client side), `ingest_batches` the batches the report came in (1),
    `ticks` the scheduler ticks in the window, `deliveries` the events the
    verify rule's queue received, `stream_batches` the batches of the
    commands' and invocations' streams handed to the change-events function
    and `puts` their PutEvents, one per 10 events of a batch (each write is
    a stream record; how many a batch takes depends on when the stream is
    read: the command's Pending and Success may come in one). The command
    ends within the agent's 1 s grace, so its one report is the final one
    (no In Progress)."""
    return [
        ("SendCommand", "api", "lambda.api AmazonSSM.SendCommand", 1),
        ("SendCommand", "api", "dynamodb.Query (read)", 2),  # tag index: one per tag filter (suite, env)
        ("SendCommand", "api", "dynamodb.PutItem (write)", 1),  # the command
        ("SendCommand", "api", "sqs.SendMessage", 1),  # FanOut work item
        ("fan-out", "work poller", "sqs.ReceiveMessage", 1),
        ("fan-out", "work poller", "lambda.work batch", 1),
        ("fan-out", "work poller", "sqs.DeleteMessageBatch", 1),
        ("fan-out", "dispatch", "dynamodb.GetItem (read)", 2),  # command, command again (settle)
        ("fan-out", "dispatch", "dynamodb.BatchGetItem (read)", 1),  # the round's nodes' addresses
        ("fan-out", "dispatch", "dynamodb.TransactWriteItems (write)", 1),  # the round's invocations, if absent
        ("fan-out", "dispatch", "dynamodb.UpdateItem (write)", 1),  # the command's released counter
        ("fan-out", "dispatch", "kms.Sign", 1),  # the round's tree root (presigning S3 URLs: no request)
        ("fan-out", "dispatch", "sqs.SendMessage", 1),  # the node's queue
        ("fan-out", "dispatch", "sqs.SendMessageBatch", 1),  # the round's delivery and execution deadlines
        ("node", "agent", "sqs.ReceiveMessage", 1),
        ("node", "agent", "sqs.DeleteMessage", 1),
        ("node", "agent", "s3.PutObject", 2),  # stdout and stderr to presigned URLs
        ("node", "agent", "sqs.SendMessage", 1),  # the final report
        ("reports", "ingest poller", "sqs.ReceiveMessage", ingest_batches),
        ("reports", "ingest poller", "lambda.ingest batch", ingest_batches),
        ("reports", "ingest poller", "sqs.DeleteMessageBatch", ingest_batches),
        ("reports", "ingest", "dynamodb.BatchGetItem (read)", 2),  # the senders' keys; the invocations
        ("reports", "ingest", "dynamodb.TransactWriteItems (write)", 1),  # the moves + the counters' sum
        ("reports", "ingest", "dynamodb.GetItem (read)", 1),  # the command (settle)
        ("reports", "ingest", "dynamodb.UpdateItem (write)", 1),  # command Pending -> Success
        ("events", "change-events", f"lambda.{meter.STREAM_FUNCTION} batch", stream_batches),
        ("events", "change-events", "events.PutEvents", puts),  # command Pending; invocation Success; command Success
        ("events", "EventBridge", "sqs.SendMessage (delivery)", deliveries),  # to the verify rule's queue
        ("ticks", "EventBridge schedule", "sqs.SendMessage (delivery)", ticks),  # to the scheduler queue
        ("ticks", "scheduler poller", "sqs.ReceiveMessage", ticks),
        ("ticks", "scheduler poller", "lambda.scheduler batch", ticks),
        ("ticks", "scheduler poller", "sqs.DeleteMessageBatch", ticks),
        ("ticks", "scheduler", "dynamodb.Query (read)", 3 * ticks),  # due: policies, associations, windows (none)
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
    if bill.messages.get("ingest", 0) != 1:
        return f"{bill.messages.get('ingest', 0)} ingest messages, not the one report (a heartbeat?)"
    order = [e["detail"]["status"] for e in events if e["detail-type"] == "EC2 Command Invocation Status-change Notification"]
    if order != ["Success"]:
        return f"the invocation's events were {order}, not Success alone (did the command outlast the agent's 1 s grace?)"
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
    rows = expected_requests(polls, bill.batches["ingest"], ticks, len(events), bill.batches[meter.STREAM_FUNCTION],
                             meter.change_events_puts(bill))
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
        ("DeleteMessageBatch: SDK counter vs queue batches in the log", cp.get("SQS.DeleteMessageBatch", 0),
         sum(n for q, n in bill.batches.items() if q != meter.STREAM_FUNCTION)),
        ("PutEvents: SDK counter vs LocalStack's log", cp.get("EventBridge.PutEvents", 0), counted.get("events.PutEvents", 0)),
        ("deliveries to the verify queue vs events the change-events function published", len(events),
         sum(bill.change_events)),
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


def elf_sections(path):
    """The section names of an ELF64 little-endian file, or None."""
    data = Path(path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i):
        return struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)

    strings = header(shstrndx)[4]
    names = []
    for i in range(shnum):
        start = strings + header(i)[0]
        names.append(data[start:data.index(b"\0", start)].decode(errors="replace"))
    return names


def agent_binary():
    """The release agent's size against its target, and whether it is
    stripped (no .symtab, no .debug_* sections: what ships)."""
    path = BIN / "steward-agent"
    size = path.stat().st_size
    sections = elf_sections(path) or []
    symbols = [x for x in sections if x == ".symtab" or x.startswith(".debug")]
    stripped = "stripped (no symbol table or debug sections)" if not symbols else f"NOT stripped: {', '.join(symbols)}"
    targets.check("agent binary (release)", size / 1e6, AGENT_BINARY_TARGET_MB, "MB", 2,
                  f"{size} bytes, {size / 2**20:.2f} MiB; {stripped}")


def start_agents(fleet, cls, tag, n, batch_size):
    """Registers and starts `n` agents of class `cls`, `batch_size` at a
    time, each batch online before the next; returns their names."""
    activation = fleet.activation(tag, n)
    names = [f"{tag}-{i:04d}" for i in range(n)]
    for b in range(0, n, batch_size):
        batch = names[b:b + batch_size]
        for name in batch:
            agent = cls(name, fleet.workdir / name, fleet.api_url, fleet.env["AWS_ENDPOINT_URL"], activation)
            fleet.agents[name] = agent
            agent.start()
        fleet.wait_online(*batch, timeout=300)
    return names


def idle_rss(fleet, names):
    """VmRSS of each agent, idle, before any command: median against the
    target, max and the fleet's total beside it."""
    kib = sorted(rss_kib(fleet.agents[x].proc.pid) for x in names)
    med, top, total = statistics.median(kib) * 1024, kib[-1] * 1024, sum(kib) * 1024
    targets.check(f"agent idle RSS (VmRSS, median of {len(names)} release agents)", med / 1e6, IDLE_RSS_TARGET_MB,
                  "MB", 2, f"{med / 2**20:.2f} MiB; max {top / 1e6:.2f} MB; fleet {total / 2**20:.0f} MiB")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=500)
    ap.add_argument("--max-concurrency", nargs="+", default=["100%", "10%"])
    ap.add_argument("--start-batch", type=int, default=25, help="agents started at once while registering")
    ap.add_argument("--verify", action="store_true", help="check the count on one command to one agent, then stop")
    ap.add_argument("--agent-binary", action="store_true", help="the release agent's size against its target, then stop")
    ap.add_argument("--idle-cost", action="store_true", help="idle cost per node and idle RSS alone: no command")
    ap.add_argument("--no-idle-cost", action="store_true", help="skip the idle cost windows")
    ap.add_argument("--idle-seconds", type=int, default=120,
                    help=f"length of each idle-cost window (rounded up to whole {IDLE_PERIOD_SECONDS} s)")
    args = ap.parse_args()
    # The scale agents run with the agent's own default heartbeat.
    os.environ.pop("STEWARD_AGENT_HEARTBEAT_SECONDS", None)
    if args.agent_binary:
        agent_binary()
        return
    print(meter.HOW)
    print("  Idle traffic is measured right after each run, over a window as long as the run's (both whole minutes,")
    print("  the period of heartbeats, ticks and long polls), and subtracted;")
    print("  the benchmark's own ListCommands polls are removed. Negative differences are printed and flagged.")
    print()
    if args.verify:
        sys.exit(0 if verify() else 1)
    meter.check_sources()
    n = args.agents
    heartbeat = idle_cost.default_heartbeat_seconds(BIN / "steward-agent")
    # The release control plane's threshold (bench/release.sh), else the stack's.
    lost = int(os.environ.get("STEWARD_BENCH_CONNECTION_LOST_SECONDS")
               or stack_env().get("STEWARD_CONNECTION_LOST_SECONDS", "0") or 0)
    print(f"The {n} agents run with the agent's default heartbeat: {heartbeat} s (steward-agent --help).")
    if lost and heartbeat > lost:
        print(f"  note: this stack's ConnectionLost threshold is {lost} s (STEWARD_CONNECTION_LOST_SECONDS), shorter than "
              "the heartbeat: between heartbeats the nodes read as ConnectionLost; dispatch still sends to them, "
              "and rate control counts such an invocation as acknowledged at once (it holds no MaxConcurrency slot).")
    measure_idle = not args.no_idle_cost
    idle_seconds = math.ceil(args.idle_seconds / IDLE_PERIOD_SECONDS) * IDLE_PERIOD_SECONDS
    ok = True
    with tempfile.TemporaryDirectory() as work:
        fleet = Fleet(work)
        counted = CountedPolls(fleet.ssm)
        try:
            cost = None
            if measure_idle:
                cost = idle_cost.IdleCost(idle_seconds)
                cost.measure_stack()
                probe = start_agents(fleet, ProbeAgent, "probe", idle_cost.PROBE_AGENTS, args.start_batch)
                time.sleep(idle_cost.SETTLE_SECONDS)

                def restart():
                    for name in probe:
                        fleet.agents[name].stop()
                        fleet.agents[name].start()

                cost.measure_probe(probe, restart)
                for name in probe:
                    fleet.agents[name].stop()
            tag = f"scale{n}"
            t = time.monotonic()
            names = start_agents(fleet, DefaultHeartbeatAgent, tag, n, args.start_batch)
            print(f"{n} agents registered and online in {time.monotonic() - t:.0f} s")
            time.sleep(idle_cost.SETTLE_SECONDS)
            if cost:
                cost.measure_with_agents(n)
            idle_rss(fleet, names)
            if cost:
                cost.report(n, heartbeat, len([p for p in demo_fleet_pids() if Path(f"/proc/{p}").exists()]))
            if not args.idle_cost:
                for concurrency in args.max_concurrency:
                    ok = run(fleet, tag, n, concurrency, counted) and ok
        finally:
            fleet.stop()
    if not ok:
        raise SystemExit("error: a run did not end with every invocation Success")


if __name__ == "__main__":
    main()
