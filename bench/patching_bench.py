"""Patch Manager figures for the closing note (issue 12), on a real Debian
root with the agent inside (tests/debian_node.py):

- the node's package count (dpkg-query inside it);
- `apt-get -s upgrade` on the same root, after `apt-get update`: what apt
  itself takes to decide the same upgrades (median of 5);
- for AWS-RunPatchBaseline Scan and then Install (NoReboot): the agent's peak
  resident memory during the operation, read from the kernel (VmHWM of the
  agent's process, its peak reset just before with clear_refs), and the
  operation's wall time as the agent reports it (OperationStartTime to
  OperationEndTime: apt-get update, reading dpkg's database and the lists,
  the baseline, and for Install apt-get's own work). apt-get and dpkg run as
  the agent's children: their memory is apt's, not the agent's, and is
  printed beside it (the largest child seen, sampled every 20 ms).

    make bench-patching                 # release agent and control plane
    python bench/patching_bench.py      # against whatever runs

Asserts nothing about time or memory; fails when an operation fails.
"""

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from debian_node import build_fixture_repo, started_node  # noqa: E402
from fleet import BIN, invocations, ssm_client, wait_command_final, wait_for  # noqa: E402


def kib(status_text, field):
    for line in status_text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise SystemExit(f"no {field} in /proc status")


class Children:
    """Samples the resident memory of the agent's children (apt-get, dpkg,
    http methods) while an operation runs; keeps the largest seen."""

    def __init__(self, node, agent_pid):
        self.node, self.agent_pid = node, agent_pid
        self.peak_kib, self.stop = 0, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        # Every process of the node but its init and the agent (minbase has
        # no ps: /proc is read directly).
        script = (
            "for d in /proc/[0-9]*; do p=${d#/proc/}; "
            f"[ \"$p\" = {self.agent_pid} ] || [ \"$p\" = 1 ] || [ \"$p\" = $$ ] || "
            "awk '/^VmRSS:/ {print $2}' $d/status 2>/dev/null; done | sort -n | tail -1"
        )
        while not self.stop.is_set():
            out = self.node.sh(script, check=False).stdout.strip()
            if out.isdigit():
                self.peak_kib = max(self.peak_kib, int(out))
            time.sleep(0.02)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def operation(node, agent_pid, op):
    ssm = ssm_client()
    node.sh(f"echo 5 > /proc/{agent_pid}/clear_refs")
    with Children(node, agent_pid) as children:
        cmd = ssm.send_command(
            DocumentName="AWS-RunPatchBaseline",
            InstanceIds=[node.instance_id()],
            Parameters={"Operation": [op], "RebootOption": ["NoReboot"]},
        )["Command"]["CommandId"]
        wait_command_final(ssm, cmd, timeout=600)
    [inv] = invocations(ssm, cmd)
    if inv["Status"] != "Success":
        raise SystemExit(f"{op} did not succeed: {inv['Status']}: {inv['CommandPlugins'][0].get('Output', '')[-2000:]}")
    hwm = kib(node.run("cat", f"/proc/{agent_pid}/status").stdout, "VmHWM")

    def probe():
        s = ssm.describe_instance_patch_states(InstanceIds=[node.instance_id()])["InstancePatchStates"]
        return s[0] if s and s[0]["SnapshotId"] == cmd else None

    state = wait_for(f"{op} state", probe, timeout=60)
    wall = (state["OperationEndTime"] - state["OperationStartTime"]).total_seconds()
    return hwm, children.peak_kib, wall, state


def main():
    print(f"agent binary: {BIN / 'steward-agent'}")
    with tempfile.TemporaryDirectory(prefix="steward-bench-patching-") as work:
        node = started_node(Path(work), "bench-patching")
        try:
            build_fixture_repo(node)
            packages = len(node.run("dpkg-query", "-W").stdout.splitlines())
            node.run("apt-get", "update", "-q")
            runs = []
            for _ in range(5):
                t = time.monotonic()
                node.run("apt-get", "-s", "upgrade")
                runs.append(time.monotonic() - t)
            agent_pid = node.sh("pidof steward-agent").stdout.split()[0]
            base = kib(node.run("cat", f"/proc/{agent_pid}/status").stdout, "VmRSS")
            print(f"Debian test root: {packages} packages installed, 3 updates offered by the local repository")
            print(f"apt-get -s upgrade (after apt-get update): median {statistics.median(runs) * 1000:.0f} ms of 5")
            print(f"agent resident before: {base / 1024:.1f} MiB")
            for op in ("Scan", "Install"):
                hwm, child, wall, state = operation(node, agent_pid, op)
                print(
                    f"{op:7}: agent peak RSS {hwm / 1024:.1f} MiB; largest child (apt/dpkg) {child / 1024:.1f} MiB; "
                    f"wall {wall:.2f} s (agent-reported); Missing {state['MissingCount']}, "
                    f"Installed {state['InstalledCount']}, InstalledOther {state['InstalledOtherCount']}, "
                    f"PendingReboot {state['InstalledPendingRebootCount']}"
                )
        finally:
            node.stop()


if __name__ == "__main__":
    main()
