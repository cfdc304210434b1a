"""Figures for the closing note: agent memory, and time from SendCommand to
every invocation final for fleets of N real agent processes.

Run through `make bench` (bench/run.sh), with the stack and control plane up.
Prints figures; asserts nothing about time.
"""

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fleet import Fleet, wait_command_final  # noqa: E402


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def tree_rss_kib(pid):
    """RSS of a process and its descendants."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += rss_kib(p)
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(c) for c in children)
    return total


def fan_out(fleet, n, tag):
    ssm = fleet.ssm
    start = time.monotonic()
    cmd = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        Targets=fleet.targets(tag),
        MaxConcurrency="100%",
        Parameters={"commands": ["echo bench"]},
    )["Command"]
    final = wait_command_final(ssm, cmd["CommandId"], timeout=900)
    elapsed = time.monotonic() - start
    assert final["TargetCount"] == n, final
    return elapsed


def main():
    sizes = [int(a) for a in sys.argv[1:]] or [3, 20, 100]
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
            peak = 0
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                peak = max(peak, rss_kib(agent.proc.pid))
                st = fleet.ssm.list_commands(CommandId=cmd["CommandId"])["Commands"][0]["Status"]
                if st not in {"Pending", "InProgress"}:
                    break
                time.sleep(0.2)
            print(f"agent RSS idle: {idle / 1024:.1f} MiB; while running a command: {peak / 1024:.1f} MiB (agent process only)")
            agent.stop()

            for n in sizes:
                tag = f"n{n}"
                act = fleet.activation(tag, n)
                names = [f"{tag}-{i}" for i in range(n)]
                for name in names:
                    fleet.add(name, act)
                fleet.wait_online(*names, timeout=300)
                total_rss = sum(rss_kib(fleet.agents[x].proc.pid) for x in names)
                runs = [fan_out(fleet, n, tag) for _ in range(3)]
                print(
                    f"{n:>4} agents: SendCommand -> all final: median {statistics.median(runs):.2f}s "
                    f"(runs {', '.join(f'{r:.2f}' for r in runs)}); fleet RSS {total_rss / 1024:.0f} MiB"
                )
                for name in names:
                    fleet.agents[name].stop()
        finally:
            fleet.stop()


if __name__ == "__main__":
    main()
