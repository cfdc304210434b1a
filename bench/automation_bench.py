"""Automation figures for the closing note (issue 11):

1. The request count of one execution of a 20-step runbook (10
   aws:executeAwsApi steps calling GetParameter and DescribeInstanceInformation,
   with outputs, and 10 aws:branch steps on those outputs), checked against
   the requests added up by hand from the code (`expected_requests`): the
   benchmark exits non-zero on any difference. The execution runs in a
   control plane process of the benchmark's own (the same steward-local, on
   a free port, its queues the benchmark's own, so that nothing else reaches
   it) and is counted from that process alone (bench/meter.py,
   `process_only`). Then AWS requests per step, by service.
2. Step-to-step latency p50/p99 on the same runbook, run on the control
   plane `make up` started (swapped for the release one by
   bench/automation.sh): from one step's end to the next step's start, from
   the execution's own StepExecutions (ExecutionStartTime/ExecutionEndTime),
   and, beside it, the same gap in wall-clock time: when EventBridge
   delivered each step's status-change events to a queue of the benchmark's
   (SQS's SentTimestamp, in ms).
3. A rate-controlled execution (TargetParameterName + Targets,
   MaxConcurrency 10, MaxErrors 0) over 100 real agents, each child running
   an aws:runCommand step on its node: time to final. When the API refuses
   rate-controlled starts as not supported yet, this figure is printed as not
   available, with the API's words, and nothing else is made up for it.

Any execution that does not end Success (or a child that does not) fails the
benchmark: it says which and why, and exits non-zero.

    make bench-automation                                   # everything, release control plane
    python bench/automation_bench.py --verify               # the count check alone
    python bench/automation_bench.py --runs 3 --agents 10   # small, against whatever runs

Asserts nothing about time.
"""

import argparse
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime
from pathlib import Path

import boto3
import botocore.config
from botocore.exceptions import BotoCoreError, ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import meter  # noqa: E402
from fleet import BIN, LOCAL, Fleet, localstack_client, profile, ssm_client, stack_env  # noqa: E402
from scale_bench import QuietAgent, percentile  # noqa: E402

# SSM's automation statuses an execution does not leave.
FINAL = {"Success", "Failed", "TimedOut", "Cancelled", "CompletedWithSuccess", "CompletedWithFailure",
         "Rejected", "Exited"}
STEP_EVENT = "EC2 Automation Step Status-change Notification"
EXECUTION_EVENT = "EC2 Automation Execution Status-change Notification"
# A 20-step runbook: PAIRS x (aws:branch, aws:executeAwsApi).
PAIRS = 10
POLL_SECONDS = 0.05
TIMEOUT_SECONDS = 900
# The pollers of a steward-local: 2 long pollers per queue (work, ingest,
# automation, automation-start), 1 for the scheduler queue.
PROCESS_LONG_POLLERS = 2 + 2 + 1 + 2 + 2
# The queues a steward-local polls, as its settings name them.
QUEUES = {
    "work": "STEWARD_WORK_QUEUE_URL",
    "ingest": "STEWARD_INGEST_QUEUE_URL",
    "scheduler": "STEWARD_SCHEDULER_QUEUE_URL",
    "automation": "STEWARD_AUTOMATION_QUEUE_URL",
    "automation-start": "STEWARD_AUTOMATION_START_QUEUE_URL",
}
NOT_SUPPORTED = "not supported yet"


class BenchFailed(Exception):
    pass


def epoch(v):
    return v.timestamp() if isinstance(v, datetime) else float(v)


def p50_p99(values):
    v = sorted(values)
    return statistics.median(v), percentile(v, 0.99)


# --- the runbooks -------------------------------------------------------------------------------

def steps_runbook():
    """20 steps: b01 (branch on a parameter), a01 (GetParameter), b02 (branch
    on a01's output), a02 (DescribeInstanceInformation), ... a10. Every
    branch has one choice and no Default: a choice that does not match
    fails the step, and so the execution and the benchmark."""
    steps = []
    for i in range(1, PAIRS + 1):
        api = f"a{i:02d}"
        branch = f"b{i:02d}"
        prev = f"a{i - 1:02d}"
        if i == 1:
            choice = {"NextStep": api, "Variable": "{{ Mode }}", "StringEquals": "bench"}
        elif (i - 1) % 2 == 1:  # after a GetParameter step: on its Value, and on its Version
            choice = {"NextStep": api, "And": [
                {"Variable": f"{{{{ {prev}.Value }}}}", "StringEquals": "on"},
                {"Variable": f"{{{{ {prev}.Version }}}}", "NumericGreaterOrEquals": 1},
            ]}
        else:  # after a DescribeInstanceInformation step: the node it found
            choice = {"NextStep": api, "Variable": f"{{{{ {prev}.Node }}}}", "StringEquals": "{{ NodeId }}"}
        steps.append({"name": branch, "action": "aws:branch", "inputs": {"Choices": [choice]}})
        if i % 2 == 1:
            steps.append({
                "name": api, "action": "aws:executeAwsApi",
                "inputs": {"Service": "ssm", "Api": "GetParameter", "Name": "{{ ParameterName }}"},
                "outputs": [
                    {"Name": "Value", "Selector": "$.Parameter.Value", "Type": "String"},
                    {"Name": "Version", "Selector": "$.Parameter.Version", "Type": "Integer"},
                ],
            })
        else:
            steps.append({
                "name": api, "action": "aws:executeAwsApi",
                "inputs": {"Service": "ssm", "Api": "DescribeInstanceInformation",
                           "Filters": [{"Key": "InstanceIds", "Values": ["{{ NodeId }}"]}]},
                "outputs": [{"Name": "Node", "Selector": "$.InstanceInformationList[0].InstanceId", "Type": "String"}],
            })
    return {
        "schemaVersion": "0.3",
        "description": "Benchmark: 20 steps of aws:branch and aws:executeAwsApi.",
        "parameters": {
            "Mode": {"type": "String", "default": "bench"},
            "NodeId": {"type": "String"},
            "ParameterName": {"type": "String"},
        },
        "mainSteps": steps,
        "outputs": [f"a{PAIRS:02d}.Node"],
    }


def per_node_runbook():
    """One aws:runCommand step on the node a rate-controlled parent gives."""
    return {
        "schemaVersion": "0.3",
        "description": "Benchmark: one command on one node, for a rate-controlled execution.",
        "parameters": {"InstanceId": {"type": "String"}},
        "mainSteps": [{
            "name": "run", "action": "aws:runCommand",
            "inputs": {"DocumentName": "AWS-RunShellScript", "InstanceIds": ["{{ InstanceId }}"],
                       "Parameters": {"commands": ["echo automation"]}},
        }],
    }


def create_runbook(ssm, name, content):
    ssm.create_document(Name=name, DocumentType="Automation", DocumentFormat="JSON", Content=json.dumps(content))


# --- executions -----------------------------------------------------------------------------------

def wait_final(ssm, execution_id, timeout=TIMEOUT_SECONDS, interval=POLL_SECONDS):
    """(execution, wall-clock time it was first seen final)."""
    deadline = time.monotonic() + timeout
    status = "?"
    while time.monotonic() < deadline:
        e = ssm.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
        status = e["AutomationExecutionStatus"]
        if status in FINAL:
            return e, time.time()
        time.sleep(interval)
    raise BenchFailed(f"execution {execution_id} not final after {timeout} s (last status {status})")


def require_success(e, steps=None):
    """Fails the benchmark on an execution or step that is not Success."""
    bad = [f"{s['StepName']} {s['StepStatus']}: {s.get('FailureMessage', '')}"
           for s in e.get("StepExecutions", []) if s["StepStatus"] != "Success"]
    if e["AutomationExecutionStatus"] != "Success" or bad:
        raise BenchFailed(
            f"execution {e['AutomationExecutionId']} ended {e['AutomationExecutionStatus']}"
            f" ({e.get('FailureMessage', 'no failure message')}); steps not Success: {bad or 'none'}"
        )
    if steps is not None and len(e.get("StepExecutions", [])) != steps:
        raise BenchFailed(f"execution {e['AutomationExecutionId']} ran {len(e.get('StepExecutions', []))} "
                          f"step executions, not {steps}")


def start_steps(ssm, name, node_id, parameter):
    return ssm.start_automation_execution(
        DocumentName=name, Parameters={"NodeId": [node_id], "ParameterName": [parameter]},
    )["AutomationExecutionId"]


class EventQueue:
    """A queue of the benchmark's own behind a rule on the steward bus that
    takes the automation events of one runbook (by its name)."""

    def __init__(self, runbook_name):
        env = stack_env()
        self.sqs, self.events = localstack_client("sqs"), localstack_client("events")
        self.bus = env["STEWARD_EVENT_BUS"]
        self.name = f"bench-auto-events-{uuid.uuid4().hex[:10]}"
        self.url = self.sqs.create_queue(QueueName=self.name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        pattern = {"detail-type": [STEP_EVENT, EXECUTION_EVENT], "detail": {"Definition": [runbook_name]}}
        self.events.put_rule(Name=self.name, EventBusName=self.bus, EventPattern=json.dumps(pattern))
        self.events.put_targets(Rule=self.name, EventBusName=self.bus, Targets=[{"Id": "q", "Arn": arn}])

    def drain(self, execution_id=None, expect=None, quiet=3.0):
        """[(SentTimestamp in s, event)] of `execution_id` (any: None) that
        the rule delivered, until `expect` of them arrived or none came for
        `quiet` seconds. Others' (an earlier execution's late ones) are
        dropped."""
        got = []
        last = time.monotonic()
        while time.monotonic() - last < quiet and (expect is None or len(got) < expect):
            msgs = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                            AttributeNames=["SentTimestamp"]).get("Messages", [])
            if msgs:
                last = time.monotonic()
            for m in msgs:
                event = json.loads(m["Body"])
                if execution_id is None or event["detail"].get("ExecutionId") == execution_id:
                    got.append((int(m["Attributes"]["SentTimestamp"]) / 1000, event))
            if msgs:
                self.sqs.delete_message_batch(QueueUrl=self.url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
        return got

    def remove(self):
        try:
            self.events.remove_targets(Rule=self.name, EventBusName=self.bus, Ids=["q"])
            self.events.delete_rule(Name=self.name, EventBusName=self.bus)
        finally:
            self.sqs.delete_queue(QueueUrl=self.url)


# --- 1. the count, and its check ----------------------------------------------------------------

class PrivateControlPlane:
    """steward-local on a free port, its five queues the benchmark's own
    (created here, deleted by stop()): only what the benchmark sends it
    reaches it, so its SDK counters and its log are the benchmark's
    requests. Tables and the event bus are the stack's."""

    def __init__(self, workdir):
        self.sqs = localstack_client("sqs")
        tag = uuid.uuid4().hex[:8]
        self.queues = {name: self.sqs.create_queue(QueueName=f"bench-auto-{tag}-{name}")["QueueUrl"]
                       for name in QUEUES}
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, **stack_env(), "STEWARD_API_PORT": str(self.port),
               "RUST_LOG": meter.API_REQUEST_LOG_LEVEL}
        env.update({var: self.queues[name] for name, var in QUEUES.items()})
        self.log = Path(workdir) / "steward-local-automation.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                # The stack's own control plane publishes the events, from the
                # tables' streams: two readers would publish each twice.
                [str(BIN / "steward-local"), "--api-port", str(self.port), "--log-format", "text", "--no-streams"],
                env=env, stdout=out, stderr=out, start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while "api on" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchFailed(f"the benchmark's own control plane did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        self.url = f"http://127.0.0.1:{self.port}"
        self.metrics_url = self.url + "/_steward/metrics"

    def ssm(self):
        p = profile()
        # No retry: a retried request would be counted twice.
        return boto3.client(
            "ssm", endpoint_url=self.url, region_name=p["region"],
            aws_access_key_id=p["aws_access_key_id"], aws_secret_access_key=p["aws_secret_access_key"],
            config=botocore.config.Config(retries={"max_attempts": 1}),
        )

    def wait_batches(self, offset, n, timeout=30):
        """Waits until the log shows `n` automation batches handled past
        `offset`: the poller deletes a batch's messages after the handler
        returned, so a final execution may be seen before its delete."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with open(self.log, "rb") as f:
                f.seek(offset)
                text = meter._ANSI.sub("", f.read().decode(errors="replace"))
            seen = sum(1 for hit in meter._BATCH.finditer(text) if hit[1] == "automation")
            if seen >= n:
                return
            time.sleep(0.05)
        raise BenchFailed(f"the benchmark's control plane handled no automation batch within {timeout} s")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for url in self.queues.values():
            try:
                self.sqs.delete_queue(QueueUrl=url)
            except ClientError:
                pass


# The requests each SSM operation a step calls makes, as the code makes them
# (it runs in the automation function's process, through call_as: no API
# invocation, no signature check).
API_STEP_COSTS = {
    # core/src/parameters/get.rs: the head, read consistently; a String
    # parameter's latest version is in it (no version read, no KMS).
    "GetParameter": [("dynamodb.GetItem (read)", 1)],
    # core/src/fleet/ops/instance_information.rs: an InstanceIds filter
    # reads those nodes in one BatchGetItem (up to 50 ids).
    "DescribeInstanceInformation": [("dynamodb.BatchGetItem (read)", 1)],
}


def expected_requests(steps):
    """The requests of one execution started by StartAutomationExecution,
    whose steps (`[(action, api)]`, as recorded) are aws:executeAwsApi and
    aws:branch only, as the code makes them: (phase, who, request, count).

    StartAutomationExecution (core/src/automation/start.rs) reads the runbook
    (head, then the version), writes the Pending record if absent and sends
    the engine's wake-up. The automation function (functions/automation:
    one delivery of that wake-up) reads the record and the runbook, then
    goes round observe -> advance -> conditional PutItem -> effects
    (core/src/automation/runner.rs, engine.rs). A step that answers at once
    goes on in the same delivery: an aws:branch step starts and ends inside
    one advance, and an API call's answer is taken by the next round. So
    the rounds are one per API step plus the first, each one PutItem; each
    call reads the execution's user (its policy, at each call) and then
    makes the operation's own requests. The events (every step's
    InProgress and Success, the execution's) are not this function's: each
    write carries the changes it made, and the change-events function
    publishes them from the table's stream (in the stack's control plane,
    not counted here; up to 10 to a PutEvents). The execution ends in that delivery: no
    wake-up is sent again (SendMessage 0), no second delivery."""
    api_steps = [api for action, api in steps if action == "aws:executeAwsApi"]
    others = [action for action, _ in steps if action not in ("aws:executeAwsApi", "aws:branch")]
    if others:
        raise BenchFailed(f"the table covers aws:executeAwsApi and aws:branch steps only, not {others}")
    unknown = sorted(set(api_steps) - set(API_STEP_COSTS))
    if unknown:
        raise BenchFailed(f"no hand count for the API steps {unknown}: add them to API_STEP_COSTS")
    a, n = len(api_steps), len(steps)
    rows = [
        ("start", "api", "lambda.api AmazonSSM.StartAutomationExecution", 1),
        ("start", "api", "dynamodb.GetItem (read)", 2),  # the runbook: head, then the version it names
        ("start", "api", "dynamodb.PutItem (write)", 1),  # the Pending execution, if absent
        ("start", "api", "sqs.SendMessage", 1),  # the engine's wake-up
        ("delivery", "automation poller", "sqs.ReceiveMessage", 1),
        ("delivery", "automation poller", "lambda.automation batch", 1),
        ("delivery", "automation poller", "sqs.DeleteMessageBatch", 1),
        ("delivery", "automation", "dynamodb.GetItem (read)", 3),  # the record; the runbook's head and version
        ("delivery", "automation", "dynamodb.PutItem (write)", 1),  # round 1: InProgress, steps up to the first call
        ("API steps", "automation", "dynamodb.PutItem (write)", a),  # one round per answer: recorded with what follows
        ("API steps", "automation", "dynamodb.GetItem (read)", a),  # the run-as user, read at each call
    ]
    for api, count in sorted(Counter(api_steps).items()):
        for request, k in API_STEP_COSTS[api]:
            rows.append((api, "the operation", request, k * count))
    return rows


FIXED_PHASES = {"start", "delivery"}


def check_count(private, node_id, parameter, runbook):
    """One execution on the benchmark's control plane, counted and checked
    against `expected_requests`. Returns (bill, rows, steps) or raises."""
    polls = ssm_client()  # polls go to the main API: not counted in the benchmark's process
    ssm = private.ssm()
    queue = EventQueue(runbook)
    try:
        # A first execution warms what a first call pays once (the access-key
        # cache: 2 GetItem and a KMS Decrypt, for 60 s; connections).
        offset = private.log.stat().st_size
        warm = start_steps(ssm, runbook, node_id, parameter)
        e, _ = wait_final(polls, warm, timeout=120)
        require_success(e, 2 * PAIRS)
        private.wait_batches(offset, 1)
        queue.drain(warm, expect=4 * PAIRS + 2)
        m = meter.mark(private.metrics_url, private.log)
        offset = private.log.stat().st_size
        execution_id = start_steps(ssm, runbook, node_id, parameter)
        e, _ = wait_final(polls, execution_id, timeout=120)
        private.wait_batches(offset, 1)
        bill = meter.since(m, private.metrics_url, process_only=True)
        events = [ev for _, ev in queue.drain(execution_id, quiet=2.0)]
        require_success(e, 2 * PAIRS)
    finally:
        queue.remove()
    steps = [(s["Action"], s.get("Inputs", {}).get("Api", "").strip('"')) for s in e["StepExecutions"]]
    return bill, expected_requests(steps), steps, events, execution_id


def report_check(bill, rows, steps, events, execution_id):
    """Prints the table and the comparison; returns the failures."""
    print(f"check: one execution ({execution_id}) of the 20-step runbook in the benchmark's own control plane; "
          f"window {bill.window:.1f} s")
    print("  expected requests, step by step (from the code):")
    expected = Counter()
    for phase, who, request, count in rows:
        if count:
            print(f"    {phase:<28} {who:<18} {request:<48} {count}")
            expected[request] += count
    print(f"    {'(no wake-up after the start)':<28} {'automation':<18} {'sqs.SendMessage':<48} 0")
    counted = bill.billed()
    failures = []
    print("  request                                           expected  counted")
    for key in sorted(set(expected) | set(counted)):
        if key == "sqs.ReceiveMessage":
            continue
        e, c = expected.get(key, 0), counted.get(key, 0)
        if e != c:
            failures.append(key)
        print(f"    {key:<48} {e:>8} {c:>8}  {'ok' if e == c else 'DIFFERS'}")
    # The SDK counts a request when it is sent: the long poll that returned
    # the wake-up was, most often, sent before the window opened (the log's
    # batch of one message, cross-checked below, is that one), and the
    # window holds the long polls sent in it, each of the process's pollers
    # at most one per 20 s and one more after a batch.
    got, want = counted.get("sqs.ReceiveMessage", 0), expected["sqs.ReceiveMessage"]
    bound = PROCESS_LONG_POLLERS * (math.ceil(bill.window / 20) + 1) + want
    ok = 0 <= got <= bound
    print(f"    {'sqs.ReceiveMessage':<48} {want:>8} {got:>8}  {'ok' if ok else 'DIFFERS'} "
          f"(the table's {want} returned the wake-up: the log's batch; counted: the long polls sent in the window, "
          f"0 to {bound} for {PROCESS_LONG_POLLERS} pollers)")
    if not ok:
        failures.append("sqs.ReceiveMessage")
    for what, a, b in (
        ("DeleteMessageBatch: SDK counter vs batches in the log", counted.get("sqs.DeleteMessageBatch", 0),
         sum(bill.batches.values())),
        ("automation messages handed to the function: 1", bill.messages.get("automation", 0), 1),
        ("events the benchmark's rule received: each step's two and the execution's two", len(events),
         2 * len(steps) + 2),
    ):
        print(f"    cross-check {what}: {a} = {b}  {'ok' if a == b else 'DIFFERS'}")
        if a != b:
            failures.append(what)
    return failures


def print_per_step(bill, rows, steps):
    """AWS requests per step, by service, from the counted execution."""
    n = len(steps)
    counted = bill.billed()
    # ReceiveMessage: the one that returned the wake-up (the table's, which
    # the log's batch confirms), not the process's long polls sent in the
    # window (see report_check).
    run = Counter(counted)
    run["sqs.ReceiveMessage"] = sum(c for _, _, r, c in rows if r == "sqs.ReceiveMessage")
    fixed = Counter()
    for phase, _, request, count in rows:
        if phase in FIXED_PHASES:
            fixed[request] += count
    by_service = meter.by_service(run)
    print(f"AWS requests per execution of {n} steps, by service (ReceiveMessage: the one that returned the wake-up): "
          + meter.fmt_counts(by_service))
    print(f"  per step, the execution's own cost shared out: "
          + ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(by_service.items())))
    per_step = meter.by_service(run - fixed)
    print(f"  per step, without the execution's start and delivery ({sum(fixed.values())} requests, once each): "
          + ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(per_step.items())))
    apis = Counter(api for action, api in steps if action == "aws:executeAwsApi")
    print("  what one step costs (the table above, by step):")
    print("    aws:branch: no request of its own: it starts and ends inside the round of the step before it, and "
          "is written with it")
    for api in sorted(apis):
        own = ", ".join(f"{r} {k}" for r, k in API_STEP_COSTS[api])
        print(f"    aws:executeAwsApi {api}: 1 dynamodb.PutItem (its answer recorded), 1 dynamodb.GetItem (the run-as "
              f"user); the call itself: {own}")
    print("    no step sends the engine a wake-up (sqs.SendMessage), nor is received (ReceiveMessage) or deleted "
          "(DeleteMessageBatch) on its own: the whole execution is one delivery, with one Lambda invocation. "
          "A step that waits (aws:runCommand, aws:sleep, aws:approve) ends its delivery; its resumption costs a "
          "SendMessage, a ReceiveMessage, an invocation, a DeleteMessageBatch and the record's and runbook's reads "
          "(3 GetItem) again")
    print("    the events (each step's InProgress and Success, the execution's): published by the change-events "
          "function from the table's stream, up to 10 to a PutEvents: "
          f"{math.ceil((2 * n + 2) / 10)}-{2 * n + 2} PutEvents per execution, not counted above")
    print("    each rule that takes the events adds one delivery per event (a SendMessage billed to its queue's "
          f"owner): {2 * n + 2} per execution for a rule taking all of them")


# --- 2. latency ----------------------------------------------------------------------------------

def latency(ssm, runbook, node_id, parameter, runs):
    queue = EventQueue(runbook)
    records, wall, api_steps, branch_steps, hops, totals, distinct = [], [], [], [], [], [], []
    try:
        # One execution first: what a first call pays once is not a step's.
        warm = start_steps(ssm, runbook, node_id, parameter)
        e, _ = wait_final(ssm, warm)
        require_success(e, 2 * PAIRS)
        queue.drain(warm, expect=4 * PAIRS + 2)
        for _ in range(runs):
            sent = time.time()
            execution_id = start_steps(ssm, runbook, node_id, parameter)
            e, seen = wait_final(ssm, execution_id)
            require_success(e, 2 * PAIRS)
            steps = e["StepExecutions"]
            for a, b in zip(steps, steps[1:]):
                records.append(epoch(b["ExecutionStartTime"]) - epoch(a["ExecutionEndTime"]))
            distinct.append(len({epoch(s[k]) for s in steps for k in ("ExecutionStartTime", "ExecutionEndTime")}))
            events = queue.drain(execution_id, expect=4 * PAIRS + 2)
            at = {}
            for t, ev in events:
                d = ev["detail"]
                if d["ExecutionId"] == execution_id and ev["detail-type"] == STEP_EVENT:
                    at[(d["StepName"], d["Status"])] = t
                elif d["ExecutionId"] == execution_id and d["Status"] == "Success":
                    at[("", "Success")] = t
            names = [s["StepName"] for s in steps]
            missing = [(n, st) for n in names for st in ("InProgress", "Success") if (n, st) not in at]
            if missing or ("", "Success") not in at:
                raise BenchFailed(f"execution {execution_id}: events missing at the benchmark's rule: "
                                  f"{missing or 'the execution Success'}")
            for a, b in zip(names, names[1:]):
                wall.append(at[(b, "InProgress")] - at[(a, "Success")])
            for s in steps:
                d = at[(s["StepName"], "Success")] - at[(s["StepName"], "InProgress")]
                (api_steps if s["Action"] == "aws:executeAwsApi" else branch_steps).append(d)
            hops.append(at[(names[0], "InProgress")] - sent)
            totals.append((at[("", "Success")] - sent, seen - sent))
    finally:
        queue.remove()
    r50, r99 = p50_p99(records)
    w50, w99 = p50_p99(wall)
    print(f"step-to-step latency, {len(records)} gaps ({runs} executions x {2 * PAIRS - 1}), one step's end to the "
          f"next step's start:")
    print(f"  from the records (StepExecutions ExecutionEndTime -> next ExecutionStartTime): "
          f"p50 {r50 * 1000:.1f} ms, p99 {r99 * 1000:.1f} ms")
    if max(distinct) <= 2:
        print(f"  NOTE: each execution's {4 * PAIRS} step times hold at most {max(distinct)} distinct value(s): the "
              "engine stamps every step of one delivery with the time the delivery began, so the records put "
              "every step at that instant; the figure above is the records' and says nothing about time spent")
    print(f"  wall clock (step events' arrival at the benchmark's rule, SentTimestamp, ms, LocalStack delivering from a "
          f"thread per PutEvents; the end of one step and the start of the next are published back to back): "
          f"p50 {w50 * 1000:.1f} ms, p99 {w99 * 1000:.1f} ms" + (f"; {sum(1 for w in wall if w < 0)} negative "
          "(deliveries out of order)" if min(wall) < 0 else ""))
    a50, a99 = p50_p99(api_steps)
    b50, b99 = p50_p99(branch_steps)
    print(f"  step duration, wall clock (its InProgress event -> its Success event): aws:executeAwsApi p50 "
          f"{a50 * 1000:.1f} ms, p99 {a99 * 1000:.1f} ms; aws:branch p50 {b50 * 1000:.1f} ms, p99 {b99 * 1000:.1f} ms")
    h50, h99 = p50_p99(hops)
    t50 = statistics.median(t[0] for t in totals)
    s50 = statistics.median(t[1] for t in totals)
    print(f"  StartAutomationExecution -> first step started (the queue hop a waiting step also pays to resume): "
          f"p50 {h50 * 1000:.0f} ms, p99 {h99 * 1000:.0f} ms")
    print(f"  StartAutomationExecution -> execution Success: median {t50 * 1000:.0f} ms (its event), "
          f"{s50 * 1000:.0f} ms seen final (GetAutomationExecution polled every {POLL_SECONDS * 1000:.0f} ms)")


# --- 3. rate control -----------------------------------------------------------------------------

def rate_controlled_start(ssm, runbook, targets, max_concurrency):
    return ssm.start_automation_execution(
        DocumentName=runbook, TargetParameterName="InstanceId", Targets=targets,
        MaxConcurrency=max_concurrency, MaxErrors="0",
    )["AutomationExecutionId"]


def not_supported(e):
    err = e.response["Error"]
    return err["Code"] == "InvalidAutomationExecutionParametersException" and NOT_SUPPORTED in err["Message"]


def rate_controlled_run(ssm, runbook, targets, agents, max_concurrency):
    """One rate-controlled execution to final: (seconds to seen final,
    seconds to the parent's ExecutionEndTime, child durations, most
    children running at once). Raises BenchFailed unless the parent and
    every child end Success."""
    sent = time.time()
    parent_id = rate_controlled_start(ssm, runbook, targets, max_concurrency)
    parent, seen = wait_final(ssm, parent_id, interval=0.5)
    pages = ssm.get_paginator("describe_automation_executions").paginate(
        Filters=[{"Key": "ParentExecutionId", "Values": [parent_id]}])
    children = [c for page in pages for c in page["AutomationExecutionMetadataList"]]
    bad = Counter(c["AutomationExecutionStatus"] for c in children if c["AutomationExecutionStatus"] != "Success")
    if parent["AutomationExecutionStatus"] != "Success" or bad or len(children) != agents:
        raise BenchFailed(f"rate-controlled execution {parent_id} ended {parent['AutomationExecutionStatus']} "
                          f"({parent.get('FailureMessage', '')}); {len(children)} children listed of {agents}; "
                          f"not Success: {dict(bad) or 'none'}")
    spans = [(epoch(c["ExecutionStartTime"]), epoch(c["ExecutionEndTime"])) for c in children]
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, d in edges:  # an end at the same instant as a start comes first
        running += d
        peak = max(peak, running)
    if peak > int(max_concurrency):
        raise BenchFailed(f"{parent_id}: {peak} children ran at once, more than MaxConcurrency {max_concurrency}")
    return seen - sent, epoch(parent["ExecutionEndTime"]) - sent, [e - s for s, e in spans], peak


def rate_control(fleet, runbook, agents, max_concurrency, runs, start_batch=25):
    """Returns False when the API does not take rate-controlled starts yet
    (said, with its words), True when the figure was printed."""
    ssm = fleet.ssm
    # Asked first, on targets that match no node, before starting any agent.
    try:
        probe = rate_controlled_start(ssm, runbook, [{"Key": "tag:suite", "Values": [uuid.uuid4().hex]}],
                                      max_concurrency)
        wait_final(ssm, probe, timeout=60, interval=0.5)
    except ClientError as e:
        if not_supported(e):
            print(f"rate-controlled automation over {agents} agents (MaxConcurrency {max_concurrency}): NOT AVAILABLE: "
                  f"StartAutomationExecution refuses rate-controlled starts: {e.response['Error']['Code']}: "
                  f"{e.response['Error']['Message']}")
            return False
        # Refusing targets that match nothing is the API's right; the real start below decides.
    except BenchFailed:
        pass
    tag = f"auto{agents}"
    activation = fleet.activation(tag, agents)
    t = time.monotonic()
    names = [f"{tag}-{i:04d}" for i in range(agents)]
    for b in range(0, agents, start_batch):
        batch = names[b:b + start_batch]
        for name in batch:
            a = QuietAgent(name, fleet.workdir / name, fleet.api_url, fleet.env["AWS_ENDPOINT_URL"], activation)
            fleet.agents[name] = a
            a.start()
        fleet.wait_online(*batch, timeout=300)
    print(f"{agents} agents registered and online in {time.monotonic() - t:.0f} s")
    results = []
    for _ in range(runs):
        try:
            results.append(rate_controlled_run(ssm, runbook, fleet.targets(tag), agents, max_concurrency))
        except ClientError as e:
            if not_supported(e):
                print(f"rate-controlled automation: NOT AVAILABLE: {e.response['Error']['Message']}")
                return False
            raise BenchFailed(f"StartAutomationExecution with Targets refused: {e}") from e
    seen = [r[0] for r in results]
    ended = [r[1] for r in results]
    durations = sorted(d for r in results for d in r[2])
    print(f"rate-controlled automation over {agents} agents (MaxConcurrency {max_concurrency}, MaxErrors 0, one "
          f"aws:runCommand step each), {runs} runs, every parent and child Success: time to final from just before "
          f"the start: median {statistics.median(ended):.1f} s by the parent's ExecutionEndTime (runs "
          f"{', '.join(f'{x:.1f}' for x in ended)}), median {statistics.median(seen):.1f} s seen final "
          f"(GetAutomationExecution polled every 0.5 s)")
    print(f"  child duration (records, start to end) p50 {statistics.median(durations):.2f} s, "
          f"p99 {percentile(durations, 0.99):.2f} s; most children running at once (records): "
          f"{', '.join(str(r[3]) for r in results)}")
    return True


# --- main ----------------------------------------------------------------------------------------

def main_control_plane():
    """(pid, binary) of the control plane `make up` (or bench/release.sh)
    started, from its pid file."""
    try:
        pid = int((LOCAL / "run" / "steward-local.pid").read_text().strip())
        return pid, os.path.basename(os.path.dirname(os.readlink(f"/proc/{pid}/exe")))
    except (OSError, ValueError):
        return None, None


def same_control_plane(before):
    """Fails the benchmark when the control plane the figures were taken on
    was stopped or replaced during the run (another user of the stack may
    restart it, e.g. after a build): its figures would be another build's."""
    now = main_control_plane()
    if now != before or before[0] is None:
        raise BenchFailed(f"the control plane was stopped or replaced during the run (pid {before[0]}, "
                          f"{before[1]} build, now pid {now[0]}, {now[1]} build): its figures are not one "
                          "control plane's; run again when nobody restarts it")


def cleanup(what, call, **kwargs):
    try:
        call(**kwargs)
    except (ClientError, BotoCoreError) as e:
        print(f"warning: {what} not removed: {e}", file=sys.stderr)


HOW = f"""How automation is counted and timed:
  The count: one execution of the 20-step runbook in a control plane process of the benchmark's own
    (steward-local, its queues the benchmark's own, nothing else reaching it), every service from that
    process's SDK counters (SQS, EventBridge, DynamoDB, KMS...; counted when sent) and its invocations from
    its log; its idle long polls (each of its {PROCESS_LONG_POLLERS} pollers, at most one per 20 s) are bounded, not counted. EventBridge's
    deliveries depend on the rules on the bus and are stated per rule. The benchmark's polls go to the
    main API and are not in the count. The count is checked against a table written from the code.
  Latency: the execution's own StepExecutions times, and the wall clock of its step events' arrival
    at a rule of the benchmark's. Other clients on the same stack make the times noisy."""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20, help="executions timed for the step latency")
    ap.add_argument("--agents", type=int, default=100, help="nodes of the rate-controlled execution (0: skip it)")
    ap.add_argument("--max-concurrency", default="10")
    ap.add_argument("--rate-runs", type=int, default=3, help="rate-controlled executions timed")
    ap.add_argument("--verify", action="store_true", help="the count check alone")
    args = ap.parse_args()
    print(meter.HOW)
    print(HOW)
    print()
    uid = uuid.uuid4().hex[:8]
    steps_name = f"StewardBench-Steps-{uid}"
    per_node_name = f"StewardBench-PerNode-{uid}"
    parameter = f"/steward-bench/automation/{uid}/flag"
    ok = True
    available = True
    plane = main_control_plane()
    print(f"main control plane: pid {plane[0]}, {plane[1]} build")
    with tempfile.TemporaryDirectory() as work:
        fleet = Fleet(work)
        ssm = fleet.ssm
        private = None
        try:
            ssm.put_parameter(Name=parameter, Value="on", Type="String")
            create_runbook(ssm, steps_name, steps_runbook())
            create_runbook(ssm, per_node_name, per_node_runbook())
            # One node for DescribeInstanceInformation to find.
            act = fleet.activation("autosteps", 1)
            agent = QuietAgent("steps-0", fleet.workdir / "steps-0", fleet.api_url, fleet.env["AWS_ENDPOINT_URL"], act)
            fleet.agents["steps-0"] = agent
            agent.start()
            (node_id,) = fleet.wait_online("steps-0", timeout=120)

            private = PrivateControlPlane(work)
            bill, rows, steps, events, execution_id = check_count(private, node_id, parameter, steps_name)
            failures = report_check(bill, rows, steps, events, execution_id)
            private.stop()
            private = None
            if failures:
                print(f"check: FAILED: the count differs from the requests added up by hand: {', '.join(failures)}")
                sys.exit(1)
            print("check: OK, the count matches the requests added up by hand")
            print_per_step(bill, rows, steps)
            if args.verify:
                return
            print()
            latency(ssm, steps_name, node_id, parameter, args.runs)
            same_control_plane(plane)
            if args.agents:
                print()
                available = rate_control(fleet, per_node_name, args.agents, args.max_concurrency, args.rate_runs)
                same_control_plane(plane)
        except BenchFailed as e:
            print(f"error: {e}", file=sys.stderr)
            ok = False
        except BotoCoreError as e:
            print(f"error: a request failed ({e}); was the control plane restarted during the run? "
                  f"(it was pid {plane[0]}, now {main_control_plane()[0]})", file=sys.stderr)
            ok = False
        finally:
            if private:
                private.stop()
            fleet.stop()
            for name in (steps_name, per_node_name):
                cleanup(f"runbook {name}", ssm.delete_document, Name=name)
            cleanup(f"parameter {parameter}", ssm.delete_parameter, Name=parameter)
    if not ok:
        sys.exit(1)
    if not available:
        print("note: the rate-controlled figure is not available (see above); every other figure is.")


if __name__ == "__main__":
    main()
