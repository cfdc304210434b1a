"""Session Manager end to end: a real agent serves a real shell in a PTY,
`steward session start` is driven through a pseudo-terminal as a person
would drive it, and the channel's frames are checked on the wire by frames
this file writes itself from docs/internals.md ("Session frames")."""

from __future__ import annotations

import base64
import getpass
import hashlib
import hmac
import json
import os
import struct
import uuid
from pathlib import Path

import pexpect
import pytest

from fleet import (
    AWS_CONFIG,
    BIN,
    Fleet,
    aws,
    drain,
    event_queue,
    key_client,
    localstack_client,
    restricted_key,
    ssm_client,
    stack_env,
    wait_for,
)

SESSION_STATE_CHANGE = "Session Manager Session State-change Notification"
TRANSCRIPTS = Path(os.environ.get("TMPDIR", "/tmp")) / "steward-session-terminals"
TRANSCRIPTS.mkdir(parents=True, exist_ok=True)


def run_shell_content(**inputs):
    """A Standard_Stream session document whose inputs are the preferences.
    Shells run as this test's user: an agent running as root would run them
    as ssm-user otherwise, which test machines do not have."""
    return json.dumps({
        "schemaVersion": "1.0",
        "description": "Session Manager preferences",
        "sessionType": "Standard_Stream",
        "inputs": {"runAsEnabled": True, "runAsDefaultUser": getpass.getuser(), **inputs},
    })


# The shells of these tests start under an account Session document of
# their own (Standard_Stream: its inputs are the preferences), so that they
# neither depend on nor change the account's SSM-SessionManagerRunShell.
SHELL_DOCUMENT = f"e2e-Shell-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("sessions"))
    try:
        f.add("shell1", f.activation("sessions", 1))
        aws("ssm", "create-document", "--name", SHELL_DOCUMENT, "--document-type", "Session",
            "--content", run_shell_content())
        f.wait_online("shell1")
        yield f
    finally:
        try:
            f.stop()
        finally:
            aws("ssm", "delete-document", "--name", SHELL_DOCUMENT, check=False)


def node(fleet):
    return fleet.agents["shell1"].instance_id()


def cli_env(key_id=None, secret=None):
    """The environment of an operator's shell: the steward profile says
    where the API is; the session's queues are at the local stack's SQS."""
    env = dict(os.environ, AWS_CONFIG_FILE=str(AWS_CONFIG), AWS_PROFILE="steward", TERM="xterm")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_SSM"):
        env.pop(var, None)
    env["AWS_ENDPOINT_URL_SQS"] = stack_env()["AWS_ENDPOINT_URL"]
    env.pop("AWS_ENDPOINT_URL", None)
    if key_id:
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = key_id, secret
        env.pop("AWS_PROFILE")
        env["AWS_DEFAULT_REGION"] = "us-east-1"
        env["AWS_ENDPOINT_URL_SSM"] = aws_profile_endpoint()
    return env


def aws_profile_endpoint():
    from fleet import profile

    return profile()["endpoint_url"]


def start_terminal(target, *extra, rows=24, cols=80, document=None):
    """`steward session start` in a pseudo-terminal, once its shell answers."""
    child = pexpect.spawn(
        str(BIN / "steward"),
        ["session", "start", target, "--document-name", document or SHELL_DOCUMENT, *extra],
        env=cli_env(), dimensions=(rows, cols), encoding="utf-8", timeout=30,
    )
    # What the terminal showed, for a failure's report.
    child.logfile_read = open(TRANSCRIPTS / f"{uuid.uuid4().hex[:8]}.log", "w")
    child.expect(r"Starting session with SessionId: (\S+)")
    session_id = child.match.group(1).strip()
    # The shell is up when it runs what is typed.
    child.sendline("echo ready-$((20+1))")
    child.expect("ready-21")
    return child, session_id


def session_status(ssm, session_id, state):
    for s in ssm.describe_sessions(State=state, Filters=[{"key": "SessionId", "value": session_id}])["Sessions"]:
        return s
    return None


def wait_ended(ssm, session_id, timeout=60):
    return wait_for(f"session {session_id} in History", lambda: session_status(ssm, session_id, "History"), timeout)


def test_a_shell_runs_typed_commands_follows_the_window_and_takes_ctrl_c(fleet):
    ssm = ssm_client()
    child, session_id = start_terminal(node(fleet), "--reason", "e2e shell")
    try:
        active = wait_for("the session connected", lambda: _connected(ssm, session_id))
        assert active["Target"] == node(fleet) and active["Reason"] == "e2e shell"
        assert ":user/" in active["Owner"] and active["DocumentName"] == SHELL_DOCUMENT

        child.sendline("stty size")
        child.expect(r"24 80")
        child.setwinsize(31, 117)
        # SIGWINCH reaches the client, which tells the agent; its resize
        # reaches the shell's terminal.
        wait_for("the remote terminal resized", lambda: _stty(child) == "31 117", timeout=20)

        child.sendline("sleep 60")
        child.expect_exact("sleep 60")
        child.sendcontrol("c")
        # Were the sleep still running, this would wait a minute.
        child.sendline("echo after-$((2+3))")
        child.expect("after-5", timeout=15)

        child.sendline("exit")
        child.expect_exact(f"Exiting session with sessionId: {session_id}.")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    ended = wait_ended(ssm, session_id)
    assert ended["Status"] == "Terminated" and "EndDate" in ended
    assert session_status(ssm, session_id, "Active") is None


def _connected(ssm, session_id):
    s = session_status(ssm, session_id, "Active")
    return s if s and s["Status"] == "Connected" else None


def _stty(child):
    child.sendline("stty size")
    try:
        child.expect(r"(\d+ \d+)\r\n", timeout=5)
    except pexpect.TIMEOUT:
        return None
    return child.match.group(1)


def test_terminate_session_from_another_key_closes_the_client(fleet):
    ssm = ssm_client()
    _, key_id, secret = restricted_key(
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["ssm:TerminateSession", "ssm:DescribeSessions"], "Resource": "*"}]},
        "session-admin",
    )
    other = key_client("ssm", key_id, secret)
    sqs, events = event_queue({"source": ["steward.ssm"], "detail-type": [SESSION_STATE_CHANGE]})
    child, session_id = start_terminal(node(fleet))
    try:
        assert other.terminate_session(SessionId=session_id)["SessionId"] == session_id
        child.expect_exact(f"Exiting session with sessionId: {session_id}.", timeout=40)
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert wait_ended(ssm, session_id)["Status"] == "Terminated"
    # Each status change was published on the bus, once (the events' queue
    # is not ordered).
    def statuses(seen):
        mine = [e["detail"] for e in seen if e["detail"]["SessionId"] == session_id]
        return [d["Status"] for d in mine]

    seen = drain(sqs, events, lambda seen: "Terminated" in statuses(seen), timeout=60)
    assert sorted(statuses(seen)) == sorted(["Connecting", "Connected", "Terminating", "Terminated"])
    ended = next(e["detail"] for e in seen
                 if e["detail"]["SessionId"] == session_id and e["detail"]["Status"] == "Terminated")
    assert ended["Target"] == node(fleet) and ended["PreviousStatus"] == "Terminating"
    # Ending it again is not an error, as in SSM.
    assert other.terminate_session(SessionId=session_id)["SessionId"] == session_id


def test_a_key_without_start_session_is_refused_and_nothing_starts(fleet):
    ssm = ssm_client()
    before = {s["SessionId"] for s in ssm.describe_sessions(State="Active")["Sessions"]}
    _, key_id, secret = restricted_key(
        {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["ssm:DescribeSessions", "ssm:DescribeInstanceInformation"],
             "Resource": "*"}]},
        "no-sessions",
    )
    proc = pexpect.spawn(
        str(BIN / "steward"), ["session", "start", node(fleet)],
        env=cli_env(key_id, secret), encoding="utf-8", timeout=30,
    )
    proc.expect(pexpect.EOF)
    proc.close()
    assert proc.exitstatus != 0
    assert "AccessDeniedException" in proc.before and "ssm:StartSession" in proc.before
    # The real AWS CLI gets SSM's error too.
    refused = key_client("ssm", key_id, secret)
    with pytest.raises(refused.exceptions.ClientError) as e:
        refused.start_session(Target=node(fleet))
    assert e.value.response["Error"]["Code"] == "AccessDeniedException"
    after = {s["SessionId"] for s in ssm.describe_sessions(State="Active")["Sessions"]}
    assert after == before


# --- frames written here, from the documented format ----------------------------------

MAC_LABEL = b"steward session frame\n"


def data_frame(key, session_id, seq, data, ack=0):
    sid = session_id.encode()
    body = struct.pack(">BBBB", 1, 1, 1, len(sid)) + sid + struct.pack(">QQI", seq, ack, len(data)) + data
    return body + hmac.new(key, MAC_LABEL + body, hashlib.sha256).digest()


def batch(*frames):
    raw = struct.pack(">BH", 1, len(frames)) + b"".join(struct.pack(">I", len(f)) + f for f in frames)
    return base64.b64encode(raw).decode()


def token_of(answer):
    text = answer["TokenValue"]
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def test_forged_and_replayed_frames_are_refused_by_the_agent(fleet, tmp_path):
    ssm = ssm_client()
    answer = ssm.start_session(Target=node(fleet), DocumentName=SHELL_DOCUMENT, Reason="frames on the wire")
    session_id, token = answer["SessionId"], token_of(answer)
    assert answer["StreamUrl"] == token["ReceiveQueueUrl"]
    key = base64.b64decode(token["Key"])
    sqs = localstack_client("sqs")
    to_agent = token["SendQueueUrl"]
    marker = tmp_path / "ran"
    forged_marker = tmp_path / "forged"
    try:
        wait_for("the session connected", lambda: _connected(ssm, session_id))
        # A frame under another key: refused, never typed into the shell.
        wrong = hashlib.sha256(key).digest()
        forged = data_frame(wrong, session_id, 1, f"echo forged >> {forged_marker}\n".encode())
        sqs.send_message(QueueUrl=to_agent, MessageBody=batch(forged))
        # An authentic frame, delivered twice (two messages): applied once.
        real = data_frame(key, session_id, 1, f"echo once >> {marker}\n".encode())
        sqs.send_message(QueueUrl=to_agent, MessageBody=batch(real))
        sqs.send_message(QueueUrl=to_agent, MessageBody=batch(real))
        # A frame for another session under this key: refused.
        other = data_frame(key, session_id[:-1] + ("0" if session_id[-1] != "0" else "1"), 2,
                           f"echo other >> {forged_marker}\n".encode())
        sqs.send_message(QueueUrl=to_agent, MessageBody=batch(other))
        wait_for("the authentic frame ran", lambda: marker.exists() and marker.read_text() == "once\n")
        # What follows it in order still runs: the duplicate did not shift the stream.
        nxt = data_frame(key, session_id, 2, f"echo twice >> {marker}\n".encode())
        sqs.send_message(QueueUrl=to_agent, MessageBody=batch(nxt))
        wait_for("the next frame ran", lambda: marker.read_text() == "once\ntwice\n")
        assert not forged_marker.exists()
        log = fleet.agents["shell1"].log()
        assert session_id in log and "refus" in log.lower()
        assert token["Key"] not in log
    finally:
        ssm.terminate_session(SessionId=session_id)
    assert wait_ended(ssm, session_id)["Status"] == "Terminated"
    # Its queues went with it.
    wait_for("the session's queues deleted", lambda: _gone(sqs, to_agent))


def _gone(sqs, url):
    try:
        sqs.get_queue_attributes(QueueUrl=url)
        return False
    except sqs.exceptions.ClientError:
        return True


# --- preferences: idle timeout and the transcript ----------------------------------------

@pytest.fixture
def preferences(fleet):
    """An account Session document (Standard_Stream) with a one-minute idle
    timeout, a shell profile and transcripts to the stack's bucket."""
    bucket = fleet.env["STEWARD_OUTPUT_BUCKET"]
    prefix = f"sessions-{uuid.uuid4().hex[:8]}"
    name = f"e2e-Preferences-{uuid.uuid4().hex[:8]}"
    content = run_shell_content(
        s3BucketName=bucket, s3KeyPrefix=prefix, idleSessionTimeout="1",
        shellProfile={"linux": "export SESSION_GREETING=hello-from-profile"},
    )
    aws("ssm", "create-document", "--name", name, "--document-type", "Session", "--content", content)
    try:
        yield name, bucket, prefix
    finally:
        aws("ssm", "delete-document", "--name", name)


def test_an_idle_session_ends_and_its_transcript_is_in_s3(fleet, preferences):
    document, bucket, prefix = preferences
    ssm = ssm_client()
    child, session_id = start_terminal(node(fleet), document=document)
    try:
        child.sendline("echo $SESSION_GREETING transcript-$((40+2))")
        child.expect("hello-from-profile transcript-42")
        # Nothing typed for the idle timeout (one minute): the agent ends it.
        child.expect_exact(f"Exiting session with sessionId: {session_id}.", timeout=120)
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    ended = wait_ended(ssm, session_id)
    assert ended["Status"] == "Terminated"
    assert "idle" in ended.get("Details", "").lower()
    url = ended["OutputUrl"]["S3OutputUrl"]
    assert url == f"s3://{bucket}/{prefix}/{session_id}.log"
    s3 = localstack_client("s3")

    def transcript():
        try:
            return s3.get_object(Bucket=bucket, Key=f"{prefix}/{session_id}.log")["Body"].read().decode(errors="replace")
        except s3.exceptions.ClientError:
            return None

    text = wait_for("the transcript in S3", transcript)
    assert "transcript-42" in text


def test_describe_and_connection_status_through_the_aws_cli(fleet):
    status = aws("ssm", "get-connection-status", "--target", node(fleet))
    assert status == {"Target": node(fleet), "Status": "connected"}
    listed = aws("ssm", "describe-sessions", "--state", "History", "--max-results", "5")
    assert all(s["Status"] in ("Terminated", "Failed") for s in listed["Sessions"])
    bad = aws("ssm", "describe-sessions", "--state", "History", "--filters", "key=Status,value=Asleep", check=False)
    assert bad.returncode != 0 and "InvalidFilterValue" in bad.stderr
    gone = aws("ssm", "get-connection-status", "--target", "mi-00000000000000001")
    assert gone["Status"] == "notconnected"


# --- port forwarding ------------------------------------------------------------------------

@pytest.fixture
def http_server(tmp_path):
    """An HTTP server bound to the node's loopback (this host is the node),
    serving a few random files."""
    import functools
    import http.server
    import random
    import threading

    files = {}
    rng = random.Random(18)
    for i in range(10):
        data = rng.randbytes(512 * 1024 + i * 7919)
        (tmp_path / f"f{i}.bin").write_bytes(data)
        files[f"f{i}.bin"] = hashlib.sha256(data).hexdigest()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], files
    finally:
        server.shutdown()


def test_port_forwarding_serves_ten_parallel_downloads(fleet, http_server):
    import concurrent.futures
    import re
    import signal
    import subprocess
    import urllib.request

    port, files = http_server
    ssm = ssm_client()
    proc = subprocess.Popen(
        [str(BIN / "steward"), "session", "forward", node(fleet), "--remote-port", str(port)],
        env=cli_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        local = session_id = None
        for line in proc.stderr:
            if m := re.search(r"Starting session with SessionId: (\S+)", line):
                session_id = m.group(1)
            if m := re.search(r"Port (\d+) opened for sessionId", line):
                local = int(m.group(1))
                break
        assert local and session_id, "the forwarder did not say where it listens"
        wait_for("the session connected", lambda: _connected(ssm, session_id))

        def fetch(name):
            with urllib.request.urlopen(f"http://127.0.0.1:{local}/{name}", timeout=120) as r:
                return name, hashlib.sha256(r.read()).hexdigest()

        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            got = dict(pool.map(fetch, sorted(files)))
        assert got == files
        active = session_status(ssm, session_id, "Active")
        assert active["DocumentName"] == "AWS-StartPortForwardingSession"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        finally:
            proc.kill()
    assert proc.returncode == 0, proc.stderr.read()
    assert wait_ended(ssm, session_id)["Status"] == "Terminated"
