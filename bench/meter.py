"""Counts the AWS requests a deployed stack would be billed for, between two
marks, from three sources that together see every request:

1. LocalStack's request log, external requests (`localstack.request.aws`):
   every SQS, S3, KMS, EventBridge, STS ... request any client made: the
   control plane's functions, the local pollers that stand in for Lambda's
   event source mappings, and the agents (node-queue long polls, reports to
   the ingest queue, presigned S3 PUTs of output).
2. LocalStack's request log, internal requests (`localstack.request.internal
   .aws`): calls one service makes to another. In this stack these are
   EventBridge delivering to its SQS targets (the scheduler tick rule, and
   any rule on the bus), billed to the queue's owner as SendMessage. They
   are logged only when LocalStack runs with
   LOG_LEVEL_OVERRIDES=localstack.request.internal=INFO (infra/stack.sh sets
   it); without it the count would be short, so the meter refuses to run.
   LocalStack's own look-ups on the way (sqs.GetQueueUrl before each
   delivery) are not requests AWS makes or bills: shown, not counted.
3. The control plane's SDK counters (`/_steward/metrics`): DynamoDB, which
   runs in DynamoDB Local and is not in LocalStack's log (agents never call
   DynamoDB). Read requests and write requests are counted apart.

Lambda invocations are counted from the control plane's log: one per batch a
poller hands to a function ("batch handled queue=..."), and one per API
request ("request handled", logged at debug by steward_local::api; the
benchmarks start the control plane with that level on).

A request is counted when LocalStack answers it: a long poll in flight at a
mark is counted in the window where it returns.

A benchmark that runs a control plane process of its own (on queues of its
own, so that nothing else reaches it) can count that process alone:
`mark(url, log)` and `since(m, url, process_only=True)` take every service
from the process's SDK counters (counted when sent) and its invocations
from its log, and read no LocalStack log, which holds everyone's requests.
EventBridge's deliveries are then not in the count: they depend on the
rules on the bus, and the caller counts what its own rule received.
"""

import json
import math
import re
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
LOCALSTACK_LOG = LOCAL / "logs" / "localstack.log"
CONTROL_PLANE_LOG = LOCAL / "logs" / "steward-local.log"

# What the control plane runs with so that every API request is logged.
API_REQUEST_LOG_LEVEL = "info,steward_local::api=debug"
INTERNAL_LOG_SETTING = "localstack.request.internal=INFO"

# LocalStack's own steps on the way to a delivery, not requests AWS bills.
EMULATOR_ONLY = {"sqs.GetQueueUrl"}

DYNAMODB_READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}
DYNAMODB_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}


_AWS_LINE = re.compile(r"request(\.internal)?\.aws\s*: AWS ([\w-]+)\.(\w+) => (\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_BATCH = re.compile(r"batch handled queue=([\w-]+) received=(\d+)")
# A batch of a table's stream handed to the change-events function.
_STREAM_BATCH = re.compile(r"stream batch handled table=([\w-]+) records=(\d+)")
STREAM_FUNCTION = "change-events"
# What one change-events invocation had to publish (functions/change-events).
_CHANGE_EVENTS = re.compile(r"change events to publish records=(\d+) events=(\d+)")
# Events per PutEvents the change-events function sends (its PUBLISH_CHUNK).
EVENTS_PER_PUT = 10
_API = re.compile(r"request handled method=\S+ path=(\S+) target=(\S*)")

HOW = """How requests are counted (what a deployed stack is billed for):
  SQS, S3, KMS, EventBridge, STS: LocalStack's request log, every client (control plane,
    the local pollers standing in for Lambda's event source mappings, the agents).
  Service-to-service: LocalStack's internal request log: EventBridge -> SQS target
    deliveries (scheduler tick, rules), billed to the queue owner as SendMessage.
    LocalStack's own sqs.GetQueueUrl before a delivery is shown, not counted.
  DynamoDB: the control plane's SDK counters (reads and writes apart; agents never call it).
  EventBridge PutEvents: one entry per request in this code, so requests = events billed.
  S3: the agents' PUTs to presigned URLs, from LocalStack's log (presigning makes no request).
  Lambda invocations: one per poller batch (queues, and the tables' streams for the
    change-events function) and one per API request (control plane log). Lambda's own
    reads of a stream (GetRecords) are not billed, and not counted.
  STS is counted but AWS does not bill it."""


def localstack_pid():
    try:
        return int((LOCAL / "run" / "localstack.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def check_sources(need_api_log=True):
    """Refuses to count when a source would be missing: LocalStack without
    its internal request log, or a control plane without its API log."""
    pid = localstack_pid()
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if pid else []
    except OSError:
        env = []
    if not any(v.startswith(b"LOG_LEVEL_OVERRIDES=") and INTERNAL_LOG_SETTING.encode() in v for v in env):
        raise SystemExit(
            "error: LocalStack does not log internal requests (EventBridge -> SQS deliveries), so the "
            f"count would miss them. Restart the stack with LOG_LEVEL_OVERRIDES={INTERNAL_LOG_SETTING} "
            "(infra/stack.sh sets it): make down && make up"
        )
    if need_api_log:
        try:
            pid = int((LOCAL / "run" / "steward-local.pid").read_text().strip())
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            env = []
        if not any(v.startswith(b"RUST_LOG=") and b"steward_local::api=debug" in v for v in env):
            raise SystemExit(
                "error: the control plane does not log its API requests; start it with "
                f"RUST_LOG={API_REQUEST_LOG_LEVEL} (bench/release.sh does)"
            )


def metrics_url():
    from fleet import profile  # noqa: PLC0415 (tests/ is on the path of every benchmark)

    return profile()["endpoint_url"].rstrip("/") + "/_steward/metrics"


def read_metrics(url=None):
    with urllib.request.urlopen(url or metrics_url(), timeout=5) as r:
        return json.loads(r.read())


def _size(path):
    try:
        return path.stat().st_size
    except OSError:
        return 0


@dataclass
class Mark:
    localstack_offset: int
    control_plane_offset: int
    metrics: dict
    at: float
    control_plane_log: Path = CONTROL_PLANE_LOG


def mark(url=None, log=None):
    """A mark on the control plane at `url` (its metrics) whose log is `log`
    (default: the control plane `make up` started)."""
    log = Path(log) if log else CONTROL_PLANE_LOG
    return Mark(_size(LOCALSTACK_LOG), _size(log), read_metrics(url), time.monotonic(), log)


# The SDK's service names, as the keys LocalStack's log gives them.
SDK_SERVICES = {"DynamoDB": "dynamodb", "SQS": "sqs", "EventBridge": "events", "KMS": "kms", "S3": "s3", "STS": "sts"}


def _lines(path, offset):
    with open(path, "rb") as f:
        f.seek(offset)
        for raw in f:
            yield raw.decode(errors="replace")


@dataclass
class Bill:
    """Requests in one window, by source."""

    window: float
    external: Counter = field(default_factory=Counter)  # "sqs.SendMessage" -> n
    internal: Counter = field(default_factory=Counter)  # service-to-service
    errors: Counter = field(default_factory=Counter)  # of external+internal, answered 4xx/5xx
    control_plane: Counter = field(default_factory=Counter)  # "DynamoDB.GetItem" -> n (SDK counters)
    batches: Counter = field(default_factory=Counter)  # queue -> Lambda invocations
    # Events each change-events invocation had to publish, in order.
    change_events: list = field(default_factory=list)
    messages: Counter = field(default_factory=Counter)  # queue -> messages handed to the function
    api: Counter = field(default_factory=Counter)  # X-Amz-Target -> API requests
    # Every service from the SDK counters of one process (see `since`).
    process_only: bool = False

    def billed(self):
        """{"<service>.<Op>": n}: every billed request, one key per kind."""
        out = Counter()
        for k, v in self.external.items():
            out[k] += v
        for k, v in self.internal.items():
            if k not in EMULATOR_ONLY:
                out[f"{k} (delivery)"] += v
        for k, v in self.control_plane.items():
            service, op = k.split(".", 1)
            if service == "DynamoDB":
                kind = "read" if op in DYNAMODB_READS else "write" if op in DYNAMODB_WRITES else "other"
                out[f"dynamodb.{op} ({kind})"] += v
            elif self.process_only:
                # S3 here would be presigned URLs, which make no request: a
                # process-only count that shows any is to be looked at.
                out[f"{SDK_SERVICES.get(service, service.lower())}.{op}"] += v
        for queue, n in self.batches.items():
            out[f"lambda.{queue} batch"] += n
        for target, n in self.api.items():
            out[f"lambda.api {target}"] += n
        return out

    def by_service(self):
        return by_service(self.billed())


def by_service(billed):
    """Billed requests summed per service; DynamoDB reads and writes apart,
    deliveries apart from the senders' own requests."""
    out = Counter()
    for k, v in billed.items():
        service = k.split(".", 1)[0]
        if service == "dynamodb":
            service = "dynamodb-read" if "(read)" in k else "dynamodb-write" if "(write)" in k else "dynamodb-other"
        elif service == "lambda":
            service = "lambda-invocations"
        elif k.endswith("(delivery)"):
            service = f"{service}-delivery"
        out[service] += v
    return out


def since(m, url=None, process_only=False):
    """What was billed between mark `m` and now. `process_only`: the
    requests of the control plane at `url` alone, every service from its SDK
    counters, and no LocalStack log (see the module's doc)."""
    now = read_metrics(url)
    bill = Bill(window=time.monotonic() - m.at, process_only=process_only)
    for line in [] if process_only else _lines(LOCALSTACK_LOG, m.localstack_offset):
        hit = _AWS_LINE.search(line)
        if not hit:
            continue
        internal, service, op, status = hit.groups()
        key = f"{service}.{op}"
        (bill.internal if internal else bill.external)[key] += 1
        if int(status) >= 400:
            bill.errors[key] += 1
    for line in _lines(m.control_plane_log, m.control_plane_offset):
        line = _ANSI.sub("", line)
        if hit := _BATCH.search(line):
            bill.batches[hit[1]] += 1
            bill.messages[hit[1]] += int(hit[2])
        elif hit := _STREAM_BATCH.search(line):
            bill.batches[STREAM_FUNCTION] += 1
            bill.messages[STREAM_FUNCTION] += int(hit[2])
        elif hit := _CHANGE_EVENTS.search(line):
            bill.change_events.append(int(hit[2]))
        elif (hit := _API.search(line)) and not hit[1].startswith("/_steward/"):
            bill.api[hit[2] or hit[1]] += 1
    for service, ops in now["requests"].items():
        for op, n in ops.items():
            d = n - m.metrics["requests"].get(service, {}).get(op, 0)
            if d:
                bill.control_plane[f"{service}.{op}"] = d
    return bill


def fmt_counts(counts):
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v) or "none"


def subtract(run, idle, per=1):
    """(run - idle) / per for every key of either, and the keys that went
    negative: printed by the caller, never clamped."""
    keys = set(run) | set(idle)
    out = {k: (run.get(k, 0) - idle.get(k, 0)) / per for k in sorted(keys)}
    negative = {k: (run.get(k, 0), idle.get(k, 0)) for k in keys if run.get(k, 0) - idle.get(k, 0) < 0}
    return out, negative


def print_net(label, run, idle, per, indent="  "):
    """Prints run - idle per unit, per service, and says so where idle
    exceeded the run (the difference is then noise, and printed negative)."""
    net, negative = subtract(run, idle, per)
    print(f"{indent}{label}: " + ", ".join(f"{k} {v:.2f}" for k, v in net.items() if v or k in negative))
    for k, (r, i) in sorted(negative.items()):
        print(
            f"{indent}  NEGATIVE {k}: {r:.1f} in the run < {i:.1f} in the idle window of the same length; "
            "printed as is (not clamped): idle noise exceeds this figure"
        )
    return net


def change_events_puts(bill):
    """The PutEvents the change-events function makes for the batches in
    `bill`: one per EVENTS_PER_PUT events of a batch."""
    return sum(math.ceil(n / EVENTS_PER_PUT) for n in bill.change_events)
