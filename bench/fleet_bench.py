"""Figures for the closing note: agent memory, and time from SendCommand to
every invocation final for fleets of N real agent processes.

Run through `make bench` (bench/run.sh): release agents against the release
control plane. Each fan-out gives two times, both from the moment before
SendCommand is sent (this machine's clock):
- "last step done": the latest ResponseFinishDateTime in the invocations'
  records (the agents' clocks, the same machine's): the records' own time,
  whatever the polling;
- "seen final": when ListCommands first showed the command final, polled
  every POLL_SECONDS (so up to that much late).
A run fails the benchmark (non-zero exit, and why) when the command or any
invocation does not end Success, or does not end within the time-out.
Asserts nothing about time.
"""

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fleet import Fleet  # noqa: E402
from scale_bench import QuietAgent  # noqa: E402

FINAL = {"Success", "Failed", "TimedOut", "Cancelled"}
# Fan-out figures are ~1 s: the poll is far finer than that.
POLL_SECONDS = 0.05
TIMEOUT_SECONDS = 900


class RunFailed(Exception):
    pass


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def epoch(v):
    return v.timestamp() if isinstance(v, datetime) else float(v)


def wait_final(ssm, command_id, timeout=TIMEOUT_SECONDS):
    """(command, wall-clock time it was first seen final)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        c = ssm.list_commands(CommandId=command_id)["Commands"][0]
        if c["Status"] in FINAL:
            return c, time.time()
        time.sleep(POLL_SECONDS)
    raise RunFailed(f"command {command_id} not final after {timeout} s (last status {c['Status']})")


def fan_out(fleet, n, tag, commands):
    ssm = fleet.ssm
    sent = time.time()
    cmd = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        Targets=fleet.targets(tag),
        MaxConcurrency="100%",
        Parameters={"commands": commands},
    )["Command"]
    final, seen = wait_final(ssm, cmd["CommandId"])
    invs = []
    for page in ssm.get_paginator("list_command_invocations").paginate(CommandId=cmd["CommandId"], Details=True):
        invs.extend(page["CommandInvocations"])
    bad = {i["InstanceId"]: i["StatusDetails"] for i in invs if i["Status"] != "Success"}
    if final["Status"] != "Success" or bad or len(invs) != n or final["TargetCount"] != n:
        raise RunFailed(
            f"command {cmd['CommandId']} ended {final['Status']} ({final['StatusDetails']}); "
            f"{len(invs)} invocations of {n} targets; not Success: {bad or 'none'}"
        )
    ends = [epoch(p["ResponseFinishDateTime"]) for i in invs for p in i.get("CommandPlugins", [])
            if p.get("ResponseFinishDateTime")]
    return max(ends) - sent, seen - sent


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sizes", nargs="*", type=int, default=[3, 20, 100])
    ap.add_argument("--command", default="echo bench", help="the shell line every node runs")
    args = ap.parse_args()
    print("How fan-out is timed: from just before SendCommand to (a) the last step's end in the invocations'")
    print(f"records, (b) the command first seen final, ListCommands polled every {POLL_SECONDS * 1000:.0f} ms;")
    print("three runs per fleet size; a run whose command or any invocation is not Success fails the benchmark.")
    with tempfile.TemporaryDirectory() as work:
        fleet = Fleet(work)
        try:
            # Memory of one agent: idle, then while it runs a command.
            act = fleet.activation("mem", 1)
            agent = fleet.add("mem", act)
            (node,) = fleet.wait_online("mem")
            time.sleep(5)
            idle = rss_kib(agent.proc.pid)
            cmd = fleet.ssm.send_command(
                DocumentName="AWS-RunShellScript", InstanceIds=[node],
                Parameters={"commands": ["sleep 4"]},
            )["Command"]
            peak, st = 0, "Pending"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and st not in FINAL:
                peak = max(peak, rss_kib(agent.proc.pid))
                st = fleet.ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]["Status"]
                time.sleep(0.2)
            if st != "Success":
                raise RunFailed(f"the memory run's command ended {st}, not Success")
            print(f"agent RSS idle: {idle / 1024:.1f} MiB; while running a command: {peak / 1024:.1f} MiB (agent process only)")
            agent.stop()

            for n in args.sizes:
                tag = f"n{n}"
                act = fleet.activation(tag, n)
                names = [f"{tag}-{i}" for i in range(n)]
                for name in names:
                    a = QuietAgent(name, fleet.workdir / name, fleet.api_url, fleet.env["AWS_ENDPOINT_URL"], act)
                    fleet.agents[name] = a
                    a.start()
                fleet.wait_online(*names, timeout=300)
                total_rss = sum(rss_kib(fleet.agents[x].proc.pid) for x in names)
                runs = [fan_out(fleet, n, tag, [args.command]) for _ in range(3)]
                done = [r[0] for r in runs]
                seen = [r[1] for r in runs]
                print(
                    f"{n:>4} agents: SendCommand -> last step done (records): median {statistics.median(done):.3f} s "
                    f"(runs {', '.join(f'{r:.3f}' for r in done)}); -> seen final (polled): median "
                    f"{statistics.median(seen):.2f} s (runs {', '.join(f'{r:.2f}' for r in seen)}); "
                    f"fleet RSS {total_rss / 1024:.0f} MiB"
                )
                for name in names:
                    fleet.agents[name].stop()
        except RunFailed as e:
            print(f"error: a fan-out run failed, so no figure for it: {e}", file=sys.stderr)
            sys.exit(1)
        finally:
            fleet.stop()


if __name__ == "__main__":
    main()
