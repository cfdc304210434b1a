"""Run Command at fleet scale: N real steward-agent processes (one process
per node, the same binary as in production) on this machine, one command to
all of them, at each MaxConcurrency given.

Prints, per run: time from SendCommand to the command final, p50/p99 of the
invocation latency (command requested -> invocation finished), AWS requests
per invocation by service, the fleet's total RSS, and where the CPU went:
CPU seconds used in the window by LocalStack, DynamoDB Local, the control
plane and the agents (with the shells they ran), against what two cores
give in that time, which shows which part is the bottleneck. Requests are counted at
the local stack: LocalStack logs every request it serves (`AWS sqs.SendMessage
=> 200`), and DynamoDB requests are counted by the control plane's SDK clients
(`/_steward/metrics`; agents never call DynamoDB). Idle traffic (every agent's
long poll and heartbeat) is measured over a quiet window first and subtracted.

    make up && python bench/scale_bench.py --agents 500 --max-concurrency 100% 10%

Asserts nothing about time.
"""

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fleet import LOCAL, Agent, Fleet, profile  # noqa: E402

LOCALSTACK_LOG = LOCAL / "logs" / "localstack.log"
FINAL = {"Success", "Failed", "TimedOut", "Cancelled"}


class QuietAgent(Agent):
    """An agent with production's heartbeat (60 s), not the tests' 2 s."""

    def argv(self):
        argv = super().argv()
        i = argv.index("--heartbeat-seconds")
        argv[i + 1] = "60"
        return argv


def rss_kib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def localstack_counts(offset):
    """Requests LocalStack served since byte `offset` of its log, by service."""
    counts = Counter()
    with open(LOCALSTACK_LOG, "rb") as f:
        f.seek(offset)
        for raw in f:
            line = raw.decode(errors="replace")
            marker = "localstack.request.aws"
            if marker in line and ": AWS " in line:
                op = line.split(": AWS ", 1)[1].split(" ", 1)[0]
                counts[op.split(".", 1)[0]] += 1
    return counts


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


def log_size():
    return LOCALSTACK_LOG.stat().st_size


def dynamodb_requests():
    url = profile()["endpoint_url"].rstrip("/") + "/_steward/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        return sum(json.loads(r.read())["requests"].get("DynamoDB", {}).values())


def traffic_since(mark):
    offset, ddb, t = mark
    c = localstack_counts(offset)
    c["dynamodb"] = dynamodb_requests() - ddb
    return c, time.monotonic() - t


def mark():
    return (log_size(), dynamodb_requests(), time.monotonic())


def parse_time(v):
    if isinstance(v, datetime):
        return v.timestamp()
    return float(v)


def percentile(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(p * len(sorted_values)) - 1))]


def run(fleet, tag, n, concurrency, idle_rate):
    ssm = fleet.ssm
    agent_pids = [a.proc.pid for a in fleet.agents.values() if a.proc]
    cpu_before = cpu_by_part(agent_pids)
    m = mark()
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
    while True:
        c = ssm.list_commands(CommandId=cid)["Commands"][0]
        if c["Status"] in FINAL:
            break
        time.sleep(0.5)
    elapsed = time.monotonic() - start
    cpu = cpu_by_part(agent_pids)
    traffic, window = traffic_since(m)
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

    per_inv = {
        svc: max(0.0, (count - idle_rate.get(svc, 0.0) * window)) / n for svc, count in sorted(traffic.items())
    }
    rss = sum(rss_kib(a.proc.pid) for a in fleet.agents.values() if a.proc and a.proc.poll() is None)
    print(
        f"{n} agents, MaxConcurrency {concurrency}: all final in {elapsed:.1f} s ({c['Status']}, {dict(statuses)}); "
        f"invocation latency p50 {statistics.median(latencies):.2f} s p99 {percentile(latencies, 0.99):.2f} s; "
        f"fleet RSS {rss / 1024:.0f} MiB"
    )
    # Where the time went: the node's clock says when the step started and
    # ended; the command's final status comes once every result is applied.
    if starts:
        print(
            f"  timeline from SendCommand: first node started at {starts[0]:.1f} s, half by {statistics.median(starts):.1f} s, "
            f"last at {starts[-1]:.1f} s; last step finished at {latencies[-1]:.1f} s; command final at {elapsed:.1f} s "
            f"(polled every 0.5 s)"
        )
    print("  AWS requests per invocation (idle traffic subtracted): " + ", ".join(f"{k} {v:.2f}" for k, v in per_inv.items()))
    print("  raw requests in the window: " + ", ".join(f"{k} {v}" for k, v in sorted(traffic.items())) + f" over {window:.1f} s")
    used = {k: cpu[k] - cpu_before.get(k, 0.0) for k in ("localstack", "dynamodb-local", "control plane", "agents")}
    cores = os.cpu_count() or 1
    print(
        f"  CPU seconds used in {elapsed:.1f} s ({cores} cores: {cores * elapsed:.0f} CPU s available): "
        + ", ".join(f"{k} {v:.1f} ({v / (cores * elapsed):.0%})" for k, v in used.items())
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=500)
    ap.add_argument("--max-concurrency", nargs="+", default=["100%", "10%"])
    ap.add_argument("--start-batch", type=int, default=25, help="agents started at once while registering")
    args = ap.parse_args()
    n = args.agents
    with tempfile.TemporaryDirectory() as work:
        fleet = Fleet(work)
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

            m = mark()
            time.sleep(30)
            idle, window = traffic_since(m)
            idle_rate = {k: v / window for k, v in idle.items()}
            print("idle traffic per second: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(idle_rate.items())))
            for concurrency in args.max_concurrency:
                run(fleet, tag, n, concurrency, idle_rate)
        finally:
            fleet.stop()


if __name__ == "__main__":
    main()
