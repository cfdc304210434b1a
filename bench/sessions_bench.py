"""Session Manager figures, on the local stack, with one agent of the
benchmark's own (no heartbeat during the run) and `steward session start`
driven through a pseudo-terminal as a person would drive it:

1. Keystroke-to-echo latency: once the shell answers, KEYSTROKES single
   keystrokes (the letters of a word, one at a time), each timed from its
   send until its echo shows in the client's output; p50 and p99; then
   Ctrl-U clears the line.
2. Port-forwarding throughput: a Python HTTP server bound to 127.0.0.1 on
   the node (the agent's host here) serves a FORWARD_MIB MiB random file;
   `steward session forward --remote-port P` listens on a local port; the
   file is downloaded through it, its SHA-256 checked; MB/s = bytes / wall
   time of the download. Printed "not measured" when the CLI has no
   `forward` subcommand.
3. AWS requests per minute of a session, by service and request kind
   (bench/meter.py, between marks): first WINDOW_SECONDS with the agent
   running and no session (the stack's idle traffic), then the same window
   with a shell open and nothing typed, then with the shell printing
   continuously (`while :; do date; done`, the client reading all of it);
   each minus the idle window.
4. The fixed requests of one session (StartSession's queues, key, record,
   downlink, the agent's credentials, the end and the queues' deletion):
   counted from a mark before `steward session start` to after the session
   ended and its queues were deleted (plus a long poll's length, so that
   polls in flight are counted), minus the idle rate over that time. Cost
   per session-hour = fixed + 60 x per-minute requests, at the list prices
   of bench/idle_cost.py.

    make bench-sessions                  # bench/sessions.sh: control plane restarted with its API log
    python bench/sessions_bench.py       # against whatever runs (its API log on)

Asserts nothing about time; fails when a run fails or a count cannot be made.
"""

import argparse
import getpass
import hashlib
import http.server
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from functools import partial
from pathlib import Path

import pexpect

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import idle_cost  # noqa: E402
import meter  # noqa: E402
from automation_bench import BenchFailed  # noqa: E402
from fleet import AWS_CONFIG, BIN, Fleet, aws, localstack_client, stack_env, wait_for  # noqa: E402
from scale_bench import SilentAgent, percentile  # noqa: E402

KEYSTROKES = 100
FORWARD_MIB = 32
# Whole minutes: every idle source (20 s long polls, the scheduler's
# once-a-minute rule) falls alike in every window.
WINDOW_SECONDS = 60
# An agent's or a client's long poll: one in flight when its queue goes is
# counted when it returns.
LONG_POLL_SECONDS = 20
# Windows taken before giving up when another client uses the stack.
ATTEMPTS = 3
# After the agent is online: its registration's stream events published.
SETTLE_SECONDS = 15

AGENT_BIN = Path(os.environ.get("STEWARD_BENCH_AGENT_BIN") or BIN / "steward-agent")
CLI_BIN = Path(os.environ.get("STEWARD_BENCH_CLI_BIN") or BIN / "steward")

HOW = f"""How it counts (requests as bench/meter.py counts them; printed below):
  Keystroke-to-echo: one keystroke sent to `steward session start` in a pseudo-terminal, timed until
    the character shows in what the client prints (client -> SQS -> agent -> PTY echo -> SQS -> client).
  Requests per minute: {WINDOW_SECONDS} s windows; idle stack (agent running, no session) first,
    then subtracted from the idle-session and busy-session windows. A figure below 0 is printed as is.
  Fixed per session: one whole short session (start, `echo`, `exit`) to its queues' deletion
    and {LONG_POLL_SECONDS} s more, minus the idle rate over the window's length.
  Cost per session-hour: fixed + 60 x per-minute, at bench/idle_cost.py's prices
    ({idle_cost.PRICES_AS_OF}; Lambda duration apart, at its assumption)."""


# The account's preferences document, created for the run and deleted after.
RUN_SHELL = "SSM-SessionManagerRunShell"


def run_shell_content():
    """Shells run as this user: an agent running as root would run them as
    ssm-user otherwise, which a test machine does not have."""
    return json.dumps({
        "schemaVersion": "1.0",
        "description": "Session Manager preferences",
        "sessionType": "Standard_Stream",
        "inputs": {"runAsEnabled": True, "runAsDefaultUser": getpass.getuser()},
    })


def cli_env():
    """An operator's shell: the steward profile says where the API is; the
    session's queues are at the local stack's SQS."""
    env = dict(os.environ, AWS_CONFIG_FILE=str(AWS_CONFIG), AWS_PROFILE="steward", TERM="xterm")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                "AWS_ENDPOINT_URL_SSM"):
        env.pop(var, None)
    env["AWS_ENDPOINT_URL_SQS"] = stack_env()["AWS_ENDPOINT_URL"]
    return env


class BenchAgent(SilentAgent):
    """The benchmark's agent: no heartbeat inside the run (one an hour; the
    run is minutes long, well inside ConnectionLost), so that no heartbeat
    falls in one window and not in another; the binary chosen by
    bench/sessions.sh (release when fresh)."""

    def argv(self):
        argv = super().argv()
        argv[0] = str(AGENT_BIN)
        return argv


# --- the terminal --------------------------------------------------------------------------------

def spawn(*args, **kwargs):
    return pexpect.spawn(str(CLI_BIN), ["session", *args], env=cli_env(), encoding="utf-8",
                         timeout=60, **kwargs)


def start_shell(node):
    """`steward session start` in a pseudo-terminal, once its shell answers."""
    child = spawn("start", node, "--reason", "bench-sessions", dimensions=(24, 200))
    child.expect(r"Starting session with SessionId: (\S+)")
    session_id = child.match.group(1).strip()
    child.sendline("echo ready-$((20+1))")
    child.expect("ready-21")
    drain(child)
    return child, session_id


def drain(child, quiet=0.5):
    """Reads what the terminal printed until it is quiet for `quiet` s;
    returns the number of characters read."""
    n = 0
    while True:
        try:
            n += len(child.read_nonblocking(65536, timeout=quiet))
        except pexpect.TIMEOUT:
            return n


def end_shell(child, session_id):
    child.sendline("exit")
    child.expect_exact(f"Exiting session with sessionId: {session_id}.", timeout=120)
    child.expect(pexpect.EOF)
    child.close()
    if child.exitstatus != 0:
        raise BenchFailed(f"`steward session start` exited {child.exitstatus}")


def keystrokes(node):
    """Part 1: p50/p99 of keystroke to echo."""
    child, session_id = start_shell(node)
    try:
        word = ("sessionmanager" * (KEYSTROKES // 14 + 1))[:KEYSTROKES]
        took = []
        for c in word:
            t0 = time.perf_counter()
            child.send(c)
            child.expect_exact(c, timeout=30)
            took.append(time.perf_counter() - t0)
            # Nothing else is due; what the line editor adds (a wrap) is read here.
            try:
                child.read_nonblocking(65536, timeout=0)
            except pexpect.TIMEOUT:
                pass
        child.sendcontrol("u")
        drain(child)
        end_shell(child, session_id)
    finally:
        child.close(force=True)
    took.sort()
    ms = [t * 1000 for t in took]
    print(f"keystroke to echo ({len(ms)} keystrokes, `steward session start` in a pseudo-terminal): "
          f"p50 {statistics.median(ms):.0f} ms, p99 {percentile(ms, 0.99):.0f} ms, "
          f"min {ms[0]:.0f} ms, max {ms[-1]:.0f} ms", flush=True)
    return statistics.median(ms), percentile(ms, 0.99)


# --- port forwarding -------------------------------------------------------------------------------

def forward_exists():
    """Whether this CLI has `session forward` (it answers its --help)."""
    out = subprocess.run([str(CLI_BIN), "session", "forward", "--help"], capture_output=True, text=True,
                         timeout=30, env=cli_env())
    return out.returncode == 0 and "--remote-port" in out.stdout


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def forwarding(node, workdir):
    """Part 2: MB/s of a download through `steward session forward`; None
    when the CLI cannot forward."""
    if not forward_exists():
        print("port forwarding throughput: not measured (no port forwarding)", flush=True)
        return None
    served = Path(workdir) / "served"
    served.mkdir(parents=True, exist_ok=True)
    payload = os.urandom(FORWARD_MIB << 20)
    (served / "blob").write_bytes(payload)
    want = hashlib.sha256(payload).hexdigest()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    remote_port = server.server_address[1]
    child = spawn("forward", node, "--remote-port", str(remote_port), "--local-port", "0")
    try:
        child.expect(r"Starting session with SessionId: (\S+)")
        session_id = child.match.group(1).strip()
        child.expect(r"Port (\d+) opened for sessionId")
        local_port = int(child.match.group(1))
        # The listener is up before the agent's side is: wait for Connected.
        wait_for("the forwarding session connected", lambda: session_record(session_id).get("status") == "Connected",
                 timeout=60)
        h = hashlib.sha256()
        got = 0
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{local_port}/blob", timeout=120) as r:
            while chunk := r.read(1 << 20):
                h.update(chunk)
                got += len(chunk)
        wall = time.perf_counter() - t0
        if got != len(payload) or h.hexdigest() != want:
            raise BenchFailed(f"the download through the forwarded port differs: {got} bytes, sha256 "
                              f"{h.hexdigest()} (want {len(payload)} bytes, {want})")
        child.kill(signal.SIGINT)
        child.expect_exact(f"Exiting session with sessionId: {session_id}.", timeout=60)
        child.expect(pexpect.EOF)
    except pexpect.ExceptionPexpect as e:
        raise BenchFailed(f"`steward session forward` did not forward: {e}; it printed: "
                          f"{(child.before or '')[-2000:]}") from e
    finally:
        child.close(force=True)
        server.shutdown()
    mbs = got / wall / 1e6
    print(f"port forwarding throughput: {got / (1 << 20):.0f} MiB in {wall:.2f} s through "
          f"`steward session forward` (SHA-256 checked): {mbs:.2f} MB/s", flush=True)
    return mbs


# --- requests ----------------------------------------------------------------------------------

def session_record(session_id):
    """The session's record, read from the table directly (DynamoDB Local:
    not counted, as an SSM call would be)."""
    ddb = localstack_client("dynamodb")
    item = ddb.get_item(TableName=stack_env()["STEWARD_SESSIONS_TABLE"],
                        Key={"SessionId": {"S": session_id}}).get("Item")
    if not item:
        return {}
    raw = item.get("Record", {})
    return json.loads(raw.get("S") or raw.get("B") or "{}")


def fmt(counts, digits=1):
    return ", ".join(f"{k} {v:.{digits}f}" for k, v in sorted(counts.items()) if abs(v) >= 0.5 * 10 ** -digits) \
        or "none"


def net_of(bill, idle):
    """`bill`'s billed requests minus the idle rate over `bill`'s length."""
    f = bill.window / idle.window
    base = idle.billed()
    run = bill.billed()
    return Counter({k: run.get(k, 0) - base.get(k, 0) * f for k in set(run) | set(base)})


def per_minute(bill, idle):
    return Counter({k: v * 60 / bill.window for k, v in net_of(bill, idle).items()})


def show(label, counts, digits=1, bill=None):
    print(f"  {label}: {sum(counts.values()):.{digits}f} requests: {fmt(counts, digits)}")
    if bill is not None:
        print(f"    scheduler ticks in its window: {bill.batches.get('scheduler', 0)}")
    print(f"    by service: {fmt(meter.by_service(counts), digits)}")
    negative = {k: v for k, v in counts.items() if v < -0.5 * 10 ** -digits}
    if negative:
        print(f"    NEGATIVE (idle noise above the figure; printed as is): {fmt(negative, digits)}")


def window():
    m = meter.mark()
    time.sleep(max(0.0, m.at + WINDOW_SECONDS - time.monotonic()))
    return meter.since(m)


# The API calls a session makes itself (the CLI's, the agent's); any other in
# a window is another client of the stack, whose requests would be counted.
SESSION_API = {"AmazonSSM.StartSession", "AmazonSSM.TerminateSession", "AmazonSSM.ResumeSession",
               "Steward.GetSessionCredentials"}


# Requests only a session's start or end makes: in a window where the
# benchmark starts and ends none, another session's.
SESSION_EDGES = {"sqs.CreateQueue", "sqs.DeleteQueue"}


def foreign(bill, allowed=frozenset()):
    """API calls in `bill` that are not the benchmark's (another client),
    and, in a window of no session's start or end (`allowed` empty), the
    queue creations and deletions of another's session."""
    others = {k: v for k, v in bill.api.items() if k not in allowed}
    if not allowed:
        others.update({k: v for k, v in bill.external.items() if k in SESSION_EDGES})
    return others


def counted(label, take, allowed=frozenset()):
    """`take()` (a Bill) until a window holds no other client's API call, at
    most ATTEMPTS times; raises when none is clean."""
    for attempt in range(1, ATTEMPTS + 1):
        bill = take()
        others = foreign(bill, allowed)
        if not others:
            return bill
        print(f"  {label}: another client used the stack in the window ({meter.fmt_counts(others)}); "
              f"{'again' if attempt < ATTEMPTS else 'giving up'} ({attempt}/{ATTEMPTS})", flush=True)
    raise BenchFailed(f"{label}: every one of {ATTEMPTS} windows held another client's requests; "
                      "run on a quiet stack")


def check_errors(label, bill):
    if bill.errors:
        print(f"    answered with an error ({label}): {meter.fmt_counts(bill.errors)}")


def short_session(node):
    """One whole short session, from before `session start` to after its
    queues' deletion and a long poll more."""
    m = meter.mark()
    child, session_id = start_shell(node)
    try:
        end_shell(child, session_id)
    finally:
        child.close(force=True)
    wait_for(f"session {session_id} ended and its queues deleted",
             lambda: session_record(session_id).get("queues_deleted"), timeout=120)
    time.sleep(LONG_POLL_SECONDS + 1)
    return meter.since(m)


def fixed_requests(node, idle):
    bill = counted("one short session", lambda: short_session(node), SESSION_API)
    net = net_of(bill, idle)
    print(f"fixed requests of one session ({bill.window:.0f} s window, minus the idle rate over it):")
    show("one short session (start, a command, exit, queues deleted)", net, bill=bill)
    check_errors("short session", bill)
    return net


def idle_session(node, idle):
    child, session_id = start_shell(node)
    try:
        bill = counted("idle session", window)
        end_shell(child, session_id)
    finally:
        child.close(force=True)
    net = per_minute(bill, idle)
    show("idle session (shell open, nothing typed), per minute", net, bill=bill)
    return net


def busy_session(node, idle):
    child, session_id = start_shell(node)
    try:
        child.sendline("while :; do date; done")
        child.expect(r"\d\d:\d\d:\d\d")
        shown = [0]

        def busy_window():
            m = meter.mark()
            shown[0] = 0
            while time.monotonic() < m.at + WINDOW_SECONDS:
                try:
                    shown[0] += len(child.read_nonblocking(1 << 20, timeout=0.5))
                except pexpect.TIMEOUT:
                    pass
            return meter.since(m)

        bill = counted("busy session", busy_window)
        child.sendcontrol("c")
        child.sendline("echo stopped-$((1+1))")
        child.expect("stopped-2", timeout=300)
        drain(child)
        end_shell(child, session_id)
    finally:
        child.close(force=True)
    net = per_minute(bill, idle)
    rate = shown[0] / bill.window
    show(f"busy session (`while :; do date; done`, {rate / 1e3:.1f} kB/s shown by the client, "
         f"{sum(net.values()) / 60 / rate * 1e6 if rate else 0:.0f} requests per MB shown), per minute", net, bill=bill)
    return net


def session_hour(label, fixed, minute):
    hour = Counter(fixed)
    for k, v in minute.items():
        hour[k] += v * 60
    req, dur = idle_cost.dollars(hour)
    fixed_req, _ = idle_cost.dollars(fixed)
    print(f"  {label}: {sum(hour.values()):.0f} requests: ${req:.5f} per session-hour "
          f"(fixed ${fixed_req:.5f} + 60 min ${req - fixed_req:.5f}; Lambda duration + ${dur:.6f}); "
          f"by service: {fmt(meter.by_service(hour), 0)}")
    return req


def requests_and_cost(node):
    """Parts 3 and 4."""
    print(f"idle stack window ({WINDOW_SECONDS} s, the agent running, no session) ...", flush=True)
    idle = counted("idle stack", window)
    print(f"  idle stack, billed: {meter.fmt_counts(idle.billed())}")
    print(f"  scheduler ticks in the window: {idle.batches.get('scheduler', 0)} (the stack's once-a-minute rule)")
    fixed = fixed_requests(node, idle)
    print(f"requests per minute ({WINDOW_SECONDS} s windows, minus the idle stack window):", flush=True)
    idle_minute = idle_session(node, idle)
    busy_minute = busy_session(node, idle)
    print(f"cost per session-hour (fixed + 60 x per minute; prices {idle_cost.PRICES_AS_OF}):")
    session_hour("idle session", fixed, idle_minute)
    session_hour("busy session", fixed, busy_minute)
    session_hour("fixed part alone", fixed, Counter())


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.parse_args()
    meter.check_sources()
    binaries = os.environ.get("STEWARD_BENCH_BINARIES") or f"{AGENT_BIN}, {CLI_BIN}, the running control plane"
    print(f"binaries: {binaries}")
    print(HOW)
    listed = aws("ssm", "list-documents", "--filters", f"Key=Name,Values={RUN_SHELL}")
    if listed.get("DocumentIdentifiers"):
        print(f"FAILED: {RUN_SHELL} exists already (another run or test uses it); not touching it", file=sys.stderr)
        sys.exit(1)
    failed = None
    with tempfile.TemporaryDirectory(prefix="steward-bench-sessions-") as work:
        fleet = Fleet(work)
        fleet.agents["node"] = BenchAgent("node", Path(work) / "node", fleet.api_url, fleet.env["AWS_ENDPOINT_URL"],
                                          fleet.activation("bench-sessions", 1)).start()
        aws("ssm", "create-document", "--name", RUN_SHELL, "--document-type", "Session",
            "--content", run_shell_content())
        try:
            [node] = fleet.wait_online("node")
            print(f"node {node} (agent {AGENT_BIN})", flush=True)
            time.sleep(SETTLE_SECONDS)
            keystrokes(node)
            requests_and_cost(node)
            try:
                forwarding(node, work)
            except BenchFailed as e:
                failed = e
        except (BenchFailed, AssertionError, pexpect.ExceptionPexpect) as e:
            failed = e
        finally:
            try:
                fleet.stop()
            finally:
                aws("ssm", "delete-document", "--name", RUN_SHELL)
    if failed:
        print(f"FAILED: {failed}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
