"""Lambda start: how long each control-plane function's release binary takes
from process start to its first answer, natively on this machine.

The Lambda entry points are the `main.rs` of functions/api, dispatch,
ingest, scheduler, automation and change-events (binaries steward-api,
steward-dispatch, steward-ingest, steward-scheduler, steward-automation,
steward-change-events; deployed, each is the
function's `bootstrap`). Each is started as Lambda starts a custom runtime:
AWS_LAMBDA_RUNTIME_API points it at a Runtime API, here a minimal emulator
of it in this script (python's http.server on a free loopback port):

- GET  /2018-06-01/runtime/invocation/next hands over one event, with the
  headers Lambda sends: Lambda-Runtime-Aws-Request-Id,
  Lambda-Runtime-Deadline-Ms, Lambda-Runtime-Invoked-Function-Arn,
  Lambda-Runtime-Trace-Id. A second `next` (the runtime asking for more
  once it has answered) is held open until the run ends, as Lambda does.
- POST /2018-06-01/runtime/invocation/<id>/response and .../error record
  the answer; POST /2018-06-01/runtime/init/error records a failed init.

Measured: time.perf_counter() just before the process is spawned to the
moment the emulator has read the answer's body (response or error): the
process's start (exec, dynamic loading), its init (tracing, the settings
from the environment, the SDK clients), its first `next`, the handler and
the answer. The time to its first `next` (init done) is printed beside.
Each run is a fresh process and a fresh emulator; RUNS runs per function;
median and max against the target (<= 50 ms).

Why an emulator and not `cargo lambda watch`: cargo-lambda is not a
dependency of this project, and its watcher builds and runs the function
under its own supervisor, so its timing would hold its own start and
proxying. The emulator is the Runtime API and nothing else, so the time is
exactly process start to answer.

The environment is the one the functions read deployed: the stack's
settings (.local/stack.env, what `Settings::from_env` in aws/src/config.rs
reads, and the SDK's region and credentials) plus Lambda's own variables
(AWS_LAMBDA_FUNCTION_NAME, _MEMORY_SIZE, _VERSION, the log group and
stream, AWS_LAMBDA_RUNTIME_API, _HANDLER, LAMBDA_TASK_ROOT). No function
calls AWS during init, so no stack need be running.

The events are ones each function answers without calling AWS, so that the
time is the function's start and not a service's:
- dispatch, ingest, scheduler, automation (SQS event source mappings): an
  SQS event with no records, {"Records": []}: the answer is an empty
  batchItemFailures list.
- api (a Function URL, lambda_http): a payload-2.0 Function URL event,
  POST / with X-Amz-Target AmazonSSM.DescribeInstanceInformation and no
  signature: answered 400 MissingAuthenticationToken before anything is
  read (the API authenticates first). An error answer is still an answer:
  the whole runtime, lambda_http's conversions and the handler ran.

A run whose process does not answer within TIMEOUT_SECONDS, reports an
init error, or exits first fails the benchmark (non-zero exit). Asserts
nothing about time.

    python bench/lambda_start.py [--bin-dir target/release] [--runs 10]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import targets  # noqa: E402
from fleet import stack_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUNS = 10
TARGET_MS = 50.0
TIMEOUT_SECONDS = 10.0
PREFIX = "/2018-06-01/runtime"

SQS_EVENT = {"Records": []}

# A Function URL event (payload format 2.0) as steward-local builds it
# (functions/local/src/function_url.rs) and AWS sends it, unsigned.
API_EVENT = {
    "version": "2.0",
    "routeKey": "$default",
    "rawPath": "/",
    "rawQueryString": "",
    "headers": {
        "content-type": "application/x-amz-json-1.1",
        "x-amz-target": "AmazonSSM.DescribeInstanceInformation",
        "host": "abcdefgh.lambda-url.us-east-1.on.aws",
        "user-agent": "lambda-start-bench",
    },
    "requestContext": {
        "accountId": "anonymous",
        "apiId": "abcdefgh",
        "domainName": "abcdefgh.lambda-url.us-east-1.on.aws",
        "domainPrefix": "abcdefgh",
        "http": {"method": "POST", "path": "/", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                 "userAgent": "lambda-start-bench"},
        "requestId": "lambda-start-bench",
        "routeKey": "$default",
        "stage": "$default",
        "time": "01/Dec/2026:00:00:00 +0000",
        "timeEpoch": 1796083200000,
    },
    "body": "{}",
    "isBase64Encoded": False,
}

# binary, event, what its answer is
FUNCTIONS = [
    ("steward-api", API_EVENT, "400 MissingAuthenticationToken (unsigned request)"),
    ("steward-dispatch", SQS_EVENT, "empty batchItemFailures (SQS event, 0 records)"),
    ("steward-ingest", SQS_EVENT, "empty batchItemFailures (SQS event, 0 records)"),
    ("steward-scheduler", SQS_EVENT, "empty batchItemFailures (SQS event, 0 records)"),
    ("steward-automation", SQS_EVENT, "empty batchItemFailures (SQS event, 0 records)"),
    ("steward-change-events", {"Records": []}, "empty batchItemFailures (stream event, 0 records)"),
]


class Emulator:
    """One Runtime API for one process: hands over `event` once, records the
    first answer and when it was read."""

    def __init__(self, event, function_arn):
        self.event = json.dumps(event).encode()
        self.function_arn = function_arn
        self.request_id = str(uuid.uuid4())
        self.handed = False
        self.first_next = None  # perf_counter of the first GET next
        self.answered = None  # perf_counter when the answer's body was read
        self.answer = None  # (kind, body)
        self.done = threading.Event()
        self.closing = threading.Event()
        emu = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_):
                pass

            def _reply(self, status, body=b"", headers=()):
                self.send_response(status)
                for k, v in headers:
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802 (http.server's name)
                if self.path != f"{PREFIX}/invocation/next":
                    return self._reply(404, b'{"errorType":"NotFound"}')
                if emu.first_next is None:
                    emu.first_next = time.perf_counter()
                if emu.handed:
                    # The runtime asks for the next event: Lambda holds it
                    # (freezes the sandbox); here, until the run ends.
                    # The process is killed meanwhile: nothing to answer.
                    emu.closing.wait(TIMEOUT_SECONDS * 2)
                    self.close_connection = True
                    return None
                emu.handed = True
                deadline = int(time.time() * 1000) + 30_000
                self._reply(200, emu.event, [
                    ("Lambda-Runtime-Aws-Request-Id", emu.request_id),
                    ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                    ("Lambda-Runtime-Invoked-Function-Arn", emu.function_arn),
                    ("Lambda-Runtime-Trace-Id",
                     "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0"),
                ])

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.perf_counter()
                kind = None
                if self.path == f"{PREFIX}/invocation/{emu.request_id}/response":
                    kind = "response"
                elif self.path == f"{PREFIX}/invocation/{emu.request_id}/error":
                    kind = "error"
                elif self.path == f"{PREFIX}/init/error":
                    kind = "init error"
                if kind is None:
                    return self._reply(404, b'{"errorType":"NotFound"}')
                self._reply(202, b'{"status":"OK"}')
                if emu.answer is None:
                    emu.answered, emu.answer = now, (kind, body)
                    emu.done.set()

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a killed process's connection: nothing to report

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


def function_env(base, name, port):
    env = dict(base)
    env.update({
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": f"steward-{name}",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/steward-{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/01/[$LATEST]lambdastartbench",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_EXECUTION_ENV": "AWS_Lambda_provided.al2023",
        "_HANDLER": "bootstrap",
        "LAMBDA_TASK_ROOT": "/var/task",
    })
    return env


def one_run(binary, event, base_env, log):
    """(ms to first answer, ms to first next, answer kind, body)."""
    name = binary.name.removeprefix("steward-")
    arn = f"arn:aws:lambda:{base_env.get('AWS_REGION', 'us-east-1')}:{base_env.get('STEWARD_ACCOUNT_ID', '000000000000')}:function:steward-{name}"
    emu = Emulator(event, arn)
    env = function_env(base_env, name, emu.port)
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen([str(binary)], env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        try:
            deadline = t0 + TIMEOUT_SECONDS
            while not emu.done.wait(0.005):
                if proc.poll() is not None:
                    raise RuntimeError(f"{binary.name} exited ({proc.returncode}) before answering")
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{binary.name} did not answer within {TIMEOUT_SECONDS:.0f} s")
        finally:
            proc.kill()
            proc.wait()
        kind, body = emu.answer
        first_next = (emu.first_next - t0) * 1000 if emu.first_next else float("nan")
        return (emu.answered - t0) * 1000, first_next, kind, body
    finally:
        emu.close()


def describe(kind, body):
    try:
        data = json.loads(body)
    except ValueError:
        return f"{kind}: {body[:120]!r}"
    if kind == "response" and isinstance(data, dict) and "statusCode" in data:
        inner = data.get("body") or ""
        code = ""
        try:
            raw = inner
            if data.get("isBase64Encoded"):
                import base64  # noqa: PLC0415

                raw = base64.b64decode(inner).decode(errors="replace")
            code = json.loads(raw).get("__type", "")
        except ValueError:
            pass
        return f"response: HTTP {data['statusCode']} {code}".rstrip()
    if kind == "response" and isinstance(data, dict) and "batchItemFailures" in data:
        return f"response: batchItemFailures {data['batchItemFailures']}"
    return f"{kind}: {json.dumps(data)[:160]}"


def base_environment():
    """The stack's settings, as the benchmarks load them (infra/lib.sh
    load_stack_env); the process's own environment wins."""
    env = dict(os.environ)
    if "STEWARD_NODES_TABLE" not in env:
        env = {**stack_env(), **env}
    # The functions log JSON at info (tracing_subscriber's default filter).
    env.pop("RUST_LOG", None)
    return env


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", default=os.environ.get("STEWARD_BIN_DIR")
                    or str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"))
    ap.add_argument("--runs", type=int, default=RUNS)
    args = ap.parse_args()
    bin_dir = Path(args.bin_dir)
    print("How Lambda start is timed: each function's release binary started as Lambda starts a custom runtime,")
    print("against a Runtime API emulator on loopback (bench/lambda_start.py); time.perf_counter() from just")
    print("before the spawn to the answer (response or error) read by the emulator; a fresh process per run;")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{args.runs} runs per function; {os.uname().machine}, {os.cpu_count()} cores, natively; load average "
          f"{load} (whatever else runs on this machine shares its cores and lengthens the times)")
    base = base_environment()
    failed = []
    with tempfile.TemporaryFile() as log:
        for binary_name, event, answer in FUNCTIONS:
            binary = bin_dir / binary_name
            if not binary.exists():
                failed.append(f"{binary} is missing (cargo build --release first)")
                continue
            log.seek(0)
            log.truncate()
            times, nexts, answers = [], [], set()
            try:
                for _ in range(args.runs):
                    ms, nxt, kind, body = one_run(binary, event, base, log)
                    times.append(ms)
                    nexts.append(nxt)
                    answers.add(describe(kind, body))
                    if kind != "response":
                        raise RuntimeError(f"{binary_name} answered {describe(kind, body)}")
            except RuntimeError as e:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-600:]
                failed.append(f"{e}; its output: {tail}")
                continue
            med, mx = statistics.median(times), max(times)
            size = binary.stat().st_size
            print(f"  {binary_name}: runs (ms) {', '.join(f'{t:.1f}' for t in times)}; first `next` (init done) "
                  f"median {statistics.median(nexts):.1f} ms; answer: {'; '.join(sorted(answers))} "
                  f"(event: {answer}); binary {size / 1e6:.2f} MB")
            targets.check(f"Lambda start {binary_name} median", med, TARGET_MS, "ms", 1)
            targets.check(f"Lambda start {binary_name} max", mx, TARGET_MS, "ms", 1)
    if failed:
        for f in failed:
            print(f"error: {f}", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
