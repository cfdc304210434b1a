"""Idle cost per node: what one managed node that runs nothing costs the
stack's owner in AWS requests, in US dollars per node-month (730 hours),
against the target (<= $0.06) and beside SSM's advanced tier for
on-premises nodes (about $5 per node-month).

Measured on the local stack with real release agents, requests counted as
bench/meter.py counts them (the requests a deployed stack is billed for),
in windows of whole minutes (IDLE_PERIOD_SECONDS, the period of every idle
source: the scheduler tick, 20 s long polls, the demo fleet's heartbeats;
see scale_bench.py). Four windows, in this order:

1. Stack idle (S): before any agent of the benchmark runs: the pollers'
   long polls, the scheduler ticks, the demo fleet of `make up`.
2. Heartbeat probe (H): PROBE_AGENTS agents of the benchmark's with a
   heartbeat every PROBE_HEARTBEAT_SECONDS, started and settled before
   the window. Their heartbeats in it are the ingest messages of H minus
   those of S (the demo fleet's). Cost of one heartbeat, by request:
   (H - S) without sqs.ReceiveMessage, divided by those heartbeats; plus
   one sqs.ReceiveMessage per ingest batch (the poller's poll that
   returned it; long polls cannot be told apart by queue in LocalStack's
   log, so this one is counted from the batches).
3. Credential fetch probe (C): the same probe agents restarted just after
   the mark: each new process fetches its SQS credentials
   (Steward.GetNodeCredentials, an API invocation) and heartbeats once at
   start. Cost of one fetch: the requests a fetch can make (its API
   invocation; DynamoDB, STS and KMS, which the API function calls for it)
   in C - S, less the heartbeats of C at the cost from H, divided by the
   fetches (the API log's GetNodeCredentials). Queue traffic in C (SQS,
   the pollers' batches) is the agents' polls and heartbeats, not counted
   to the fetch.
4. Idle with agents (W): the scale run's N agents (the release binary,
   with the agent's own default heartbeat: no --heartbeat-seconds is
   passed), after they are online and SETTLE_SECONDS more, before any
   command is sent.

Per node, per hour, by part:
- long polls: (W - S) sqs.ReceiveMessage, less the ingest batches W adds
  (heartbeats, counted in part 2), / N, scaled to an hour: measured;
- heartbeats: the per-heartbeat cost (H) x 3600 / the default heartbeat,
  read from `steward-agent --help`. A window of a few minutes holds 0 or 1
  heartbeat per agent at the default (900 s), so counting them in W would
  be luck, not a rate;
- credential refreshes: the per-fetch cost (C) x refreshes per hour (the
  credentials last NODE_CREDENTIALS_SECONDS, core/src/fleet/ops/
  credentials.rs, and the agent refreshes at 80% of that, agent/src/
  credentials.rs; both read from the source);
- residual: what else W holds over S (neither long polls, nor heartbeats
  or fetches at their measured costs), per node-hour: printed, not added
  (it should be noise around 0; printed as is, never clamped).

The per-stack fixed idle cost (pollers and ticks, whatever the number of
nodes) is S less the demo fleet (its agents' long polls at the measured
per-node rate, its heartbeats at the measured per-heartbeat cost), printed
apart, with what differs deployed: locally the scheduler also ticks every
STEWARD_SCHEDULER_TICK_SECONDS (5 s) besides the rule's once a minute, and
Lambda's event source mappings poll with their own number of pollers.

Prices (PRICES, us-east-1, list prices beyond the free tier, as of
PRICES_AS_OF): each request is priced at its service's price. DynamoDB
on-demand bills request units: each request is counted as one unit (items
here are under 1 KB written and 4 KB read; a transactional write costs 2
units per item and an eventually consistent read half a unit: not applied).
Lambda: $0.20 per million requests, plus duration at an assumption stated
in LAMBDA_ASSUMED_* (128 MB, 25 ms per invocation), printed apart. STS is
not billed. SQS bills each 64 KB of a payload as one request: every message
here is smaller.
"""

import re
import subprocess
import time
from collections import Counter
from pathlib import Path

import meter
import targets

ROOT = Path(__file__).resolve().parent.parent
HOURS_PER_MONTH = 730
TARGET_PER_NODE_MONTH = 0.06
# SSM's advanced-instances tier, on-premises nodes: $0.00695 per node-hour.
SSM_ADVANCED_PER_NODE_MONTH = 0.00695 * HOURS_PER_MONTH

PRICES_AS_OF = "2026-12-01, us-east-1"
SQS_PER_REQUEST = 0.40 / 1e6  # standard queue
DYNAMODB_PER_WRITE_UNIT = 0.625 / 1e6  # on-demand
DYNAMODB_PER_READ_UNIT = 0.125 / 1e6  # on-demand
LAMBDA_PER_REQUEST = 0.20 / 1e6
LAMBDA_PER_GB_SECOND = 0.0000166667  # x86_64
LAMBDA_ASSUMED_MEMORY_GB = 128 / 1024
LAMBDA_ASSUMED_SECONDS = 0.025
EVENTBRIDGE_PER_EVENT = 1.00 / 1e6  # custom events
KMS_PER_REQUEST = 0.03 / 1e4
S3_PER_PUT = 0.005 / 1e3  # PUT, COPY, POST, LIST
S3_PER_GET = 0.0004 / 1e3  # GET and the rest
STS_PER_REQUEST = 0.0  # not billed

PROBE_AGENTS = 10
PROBE_HEARTBEAT_SECONDS = 10
SETTLE_SECONDS = 20


def price(key):
    """The list price of one billed request, by meter.py's key."""
    service = key.split(".", 1)[0]
    if service == "dynamodb":
        return DYNAMODB_PER_READ_UNIT if "(read)" in key else DYNAMODB_PER_WRITE_UNIT
    if service == "lambda":
        return LAMBDA_PER_REQUEST
    return {"sqs": SQS_PER_REQUEST, "events": EVENTBRIDGE_PER_EVENT, "kms": KMS_PER_REQUEST,
            "s3": S3_PER_PUT if "Put" in key else S3_PER_GET, "sts": STS_PER_REQUEST}.get(service, 0.0)


def lambda_duration_cost(invocations):
    return invocations * LAMBDA_ASSUMED_MEMORY_GB * LAMBDA_ASSUMED_SECONDS * LAMBDA_PER_GB_SECOND


def dollars(counts):
    """(request cost, Lambda duration cost at the assumption) of `counts`."""
    req = sum(v * price(k) for k, v in counts.items())
    lam = sum(v for k, v in counts.items() if k.startswith("lambda."))
    return req, lambda_duration_cost(lam)


def fmt_rate(counts, digits=3):
    shown = 0.5 * 10 ** -digits
    return ", ".join(f"{k} {v:.{digits}f}" for k, v in sorted(counts.items()) if abs(v) >= shown) or "none"


def fetch_request(key):
    """Whether a credential fetch can make this request: its API invocation
    and what the API function calls for it (DynamoDB, STS, KMS). Queue
    traffic (SQS, the pollers' batches) in the fetch window is the agents'
    heartbeats and polls, not the fetch."""
    return key == "lambda.api Steward.GetNodeCredentials" or key.split(".", 1)[0] in ("dynamodb", "sts", "kms")


def long_poll_seconds():
    """The agent's long-poll wait, from its source (agent/src/queue.rs)."""
    hit = re.search(r"wait_time_seconds\((\d+)\)", (ROOT / "agent/src/queue.rs").read_text())
    return int(hit[1]) if hit else None


def default_heartbeat_seconds(agent_bin):
    """The agent's default heartbeat, as `steward-agent --help` states it."""
    out = subprocess.run([str(agent_bin), "--help"], capture_output=True, text=True, timeout=30).stdout
    hit = re.search(r"Seconds between heartbeats \[default: (\d+)\]", out)
    if not hit:
        raise SystemExit(f"error: `{agent_bin} --help` does not state the heartbeat's default")
    return int(hit[1])


def credential_refreshes_per_hour():
    """(refreshes per hour, lifetime s, refresh fraction) from the source."""
    life = re.search(r"NODE_CREDENTIALS_SECONDS: i32 = (\d+)",
                     (ROOT / "core/src/fleet/ops/credentials.rs").read_text())
    frac = re.search(r"life \* ([0-9.]+)", (ROOT / "agent/src/credentials.rs").read_text())
    if not life or not frac:
        raise SystemExit("error: cannot read the credentials' lifetime or the agent's refresh point from the source")
    lifetime, fraction = int(life[1]), float(frac[1])
    return 3600 / (lifetime * fraction), lifetime, fraction


def window(seconds):
    """Billed requests over `seconds` from now (a Bill)."""
    m = meter.mark()
    time.sleep(max(0.0, m.at + seconds - time.monotonic()))
    return meter.since(m)


def rates(bill, seconds=None):
    """A window's billed requests scaled to `seconds` (default: its own)."""
    f = (seconds or bill.window) / bill.window
    return Counter({k: v * f for k, v in bill.billed().items()})


def diff(a, b):
    return Counter({k: a.get(k, 0) - b.get(k, 0) for k in set(a) | set(b)})


def heartbeats_in(bill, base, seconds):
    """Ingest messages and batches in `bill` over those of `base`, both
    scaled to `seconds`."""
    f, g = seconds / bill.window, seconds / base.window
    return (bill.messages.get("ingest", 0) * f - base.messages.get("ingest", 0) * g,
            bill.batches.get("ingest", 0) * f - base.batches.get("ingest", 0) * g)


RM = "sqs.ReceiveMessage"


class IdleCost:
    """The four windows and what is made of them (see the module's doc)."""

    def __init__(self, idle_seconds):
        self.idle_seconds = idle_seconds
        self.stack = self.probe = self.fetch = self.with_agents = None
        self.per_heartbeat = None
        self.per_fetch = None
        self.fetches = 0

    def measure_stack(self):
        print(f"idle cost: stack idle window ({self.idle_seconds} s, nothing of the benchmark's running) ...", flush=True)
        self.stack = window(self.idle_seconds)
        print("  stack idle, billed: " + meter.fmt_counts(self.stack.by_service()))

    def measure_probe(self, agents, restart):
        """`agents`: the probe agents, running and settled; `restart()`
        restarts them all."""
        print(f"idle cost: heartbeat probe ({len(agents)} agents, heartbeat every {PROBE_HEARTBEAT_SECONDS} s, "
              f"window {self.idle_seconds} s) ...", flush=True)
        self.probe = window(self.idle_seconds)
        s = self.idle_seconds
        delta = diff(rates(self.probe, s), rates(self.stack, s))
        hb, batches = heartbeats_in(self.probe, self.stack, s)
        if hb <= 0:
            print(f"  no heartbeat of the probe counted ({hb:.1f}): per-heartbeat cost not measured")
            self.per_heartbeat = None
        else:
            per = Counter({k: v / hb for k, v in delta.items() if k != RM})
            per[RM] = batches / hb
            self.per_heartbeat = per
            print(f"  {hb:.0f} heartbeats in {batches:.0f} ingest batches; one heartbeat costs: {fmt_rate(per)}")
        print(f"idle cost: credential fetch probe ({len(agents)} agents restarted at the mark, window {s} s) ...",
              flush=True)
        m = meter.mark()
        restart()
        time.sleep(max(0.0, m.at + s - time.monotonic()))
        self.fetch = meter.since(m)
        self.fetches = self.fetch.api.get("Steward.GetNodeCredentials", 0)
        if self.fetches and self.per_heartbeat is not None:
            delta = diff(rates(self.fetch, s), rates(self.stack, s))
            hb, _ = heartbeats_in(self.fetch, self.stack, s)
            per = Counter()
            for k, v in delta.items():
                if fetch_request(k):
                    per[k] = (v - hb * self.per_heartbeat.get(k, 0)) / self.fetches
            self.per_fetch = per
            print(f"  {self.fetches} GetNodeCredentials, {hb:.0f} heartbeats (removed at their measured cost); "
                  f"one fetch costs (its API invocation, and DynamoDB, STS and KMS requests in the window beyond the heartbeats'; "
                  f"queue traffic is not the fetch's): {fmt_rate(per)}")
        else:
            print(f"  {self.fetches} GetNodeCredentials counted: per-fetch cost not measured")

    def measure_with_agents(self, n):
        print(f"idle cost: idle window with the {n} agents ({self.idle_seconds} s) ...", flush=True)
        self.with_agents = window(self.idle_seconds)
        print("  idle with agents, billed: " + meter.fmt_counts(self.with_agents.by_service()))

    def report(self, n, heartbeat_seconds, demo_agents):
        """Prints the per-node and the per-stack idle cost; records the
        per-node figure against its target."""
        s = self.idle_seconds
        hour = 3600 / s
        month = HOURS_PER_MONTH
        print(f"Idle cost (prices: {PRICES_AS_OF}; DynamoDB requests counted as request units; Lambda $0.20 per "
              f"million requests, duration apart at an assumed {LAMBDA_ASSUMED_MEMORY_GB * 1024:.0f} MB x "
              f"{LAMBDA_ASSUMED_SECONDS * 1000:.0f} ms per invocation; {month} hours a month):")
        if self.per_heartbeat is None:
            targets.missing("idle cost per node", f"<= ${TARGET_PER_NODE_MONTH} per node-month",
                            "no heartbeat was counted in the probe window")
            return
        delta = diff(rates(self.with_agents, s), rates(self.stack, s))
        hb_w, batches_w = heartbeats_in(self.with_agents, self.stack, s)
        polls = (delta.get(RM, 0) - batches_w) / n * hour
        long_poll = Counter({RM: polls})
        heartbeat = Counter({k: v * 3600 / heartbeat_seconds for k, v in self.per_heartbeat.items()})
        refresh_rate, lifetime, fraction = credential_refreshes_per_hour()
        refresh = Counter({k: v * refresh_rate for k, v in (self.per_fetch or {}).items()})
        fetches_w = self.with_agents.api.get("Steward.GetNodeCredentials", 0)
        residual = Counter()
        for k, v in delta.items():
            if k == RM:
                continue
            r = v - hb_w * self.per_heartbeat.get(k, 0) - fetches_w * (self.per_fetch or {}).get(k, 0)
            residual[k] = r / n * hour
        parts = [
            ("long polls (measured in W - S)", long_poll),
            (f"heartbeats (per-heartbeat cost x 3600 / {heartbeat_seconds} s, the agent's default)", heartbeat),
            (f"credential refreshes (per-fetch cost x {refresh_rate:.2f}/h: {lifetime} s credentials, "
             f"refreshed at {fraction:.0%})", refresh),
        ]
        wait = long_poll_seconds()
        others = {k: v for k, v in self.with_agents.api.items() if k != "Steward.GetNodeCredentials"}
        if others or any(k != "Steward.GetNodeCredentials" for k in self.stack.api):
            print(f"  WARNING: other clients used the stack during the windows (API calls: "
                  f"{meter.fmt_counts(Counter(others) + self.stack.api)}): their requests are in the differences "
                  "(the residual shows them); run on a quiet stack for clean figures")
        print(f"  per node, from {n} agents: W - S over {s} s; {hb_w:.1f} heartbeats and {fetches_w} credential "
              f"fetches of the agents fell in W (counted at their measured costs in the residual's stead)")
        total_req = total_dur = 0.0
        for label, per_hour in parts:
            req, dur = dollars(per_hour)
            total_req += req * month
            total_dur += dur * month
            print(f"    {label}: per node-hour {fmt_rate(per_hour)}; ${req * month:.4f} per node-month"
                  + (f" (+ ${dur * month:.4f} Lambda duration)" if dur else ""))
        rreq, rdur = dollars(residual)
        if wait:
            print(f"    (an idle agent's long polls end empty after {wait} s, agent/src/queue.rs: "
                  f"{3600 / wait:.0f} a node-hour expected)")
        print(f"    residual, not added (W - S beyond the parts; noise around 0 expected): per node-hour "
              f"{fmt_rate(residual)}; ${rreq * month:.4f} per node-month (+ ${rdur * month:.4f} Lambda duration)")
        if not self.per_fetch:
            print("    (credential refreshes not measured: left out of the total)")
        lp_req, _ = dollars(long_poll)
        hb_req, hb_dur = dollars(heartbeat)
        targets.info("idle cost per node: long-poll share", f"${lp_req * month:.4f} per node-month",
                     f"{polls:.0f} long polls per node-hour")
        targets.info("idle cost per node: heartbeat share", f"${(hb_req + hb_dur) * month:.4f} per node-month",
                     f"default heartbeat {heartbeat_seconds} s")
        if self.per_fetch:
            cr_req, cr_dur = dollars(refresh)
            targets.info("idle cost per node: credential-refresh share", f"${(cr_req + cr_dur) * month:.4f} per node-month",
                         f"{refresh_rate:.2f} refreshes per node-hour")
        targets.check("idle cost per node (requests)", total_req, TARGET_PER_NODE_MONTH, "per node-month", 4,
                      f"SSM advanced tier on-premises: about ${SSM_ADVANCED_PER_NODE_MONTH:.2f} per node-month",
                      prefix="$")
        targets.check("idle cost per node (requests + assumed Lambda duration)", total_req + total_dur,
                      TARGET_PER_NODE_MONTH, "per node-month", 4, prefix="$")
        targets.info("SSM advanced tier, on-premises node (for comparison)",
                     f"${SSM_ADVANCED_PER_NODE_MONTH:.2f} per node-month", "$0.00695 per node-hour")

        # The per-stack fixed part: S less the demo fleet's agents.
        stack_hour = Counter({k: v * hour for k, v in rates(self.stack, s).items()})
        demo_hb = self.stack.messages.get("ingest", 0) * 3600 / self.stack.window
        demo = Counter({RM: polls * demo_agents})
        for k, v in self.per_heartbeat.items():
            demo[k] += v * demo_hb
        fixed = diff(stack_hour, demo)
        freq, fdur = dollars(fixed)
        ticks = self.stack.batches.get("scheduler", 0) * 3600 / self.stack.window
        print(f"  per stack, whatever the nodes (S less the demo fleet: {demo_agents} agents' long polls at the "
              f"per-node rate, {demo_hb:.0f} heartbeats an hour at the per-heartbeat cost): per hour "
              f"{fmt_rate(fixed, 1)}")
        targets.info("idle cost per stack (pollers, ticks), local", f"${freq * month:.2f} per month",
                     f"+ ${fdur * month:.2f} Lambda duration; {ticks:.0f} scheduler ticks an hour here (local tick "
                     "every STEWARD_SCHEDULER_TICK_SECONDS besides the rule's 60 an hour deployed); the local "
                     "pollers' long polls, not Lambda's event source mappings'")
        if ticks > 0:
            per_tick = Counter({k: v / ticks for k, v in fixed.items() if k != RM})
            deployed = Counter({k: v * 60 for k, v in per_tick.items()})
            deployed[RM] = fixed.get(RM, 0)
            dreq, ddur = dollars(deployed)
            print(f"  one tick costs {fmt_rate(per_tick)}; at the deployed rule's 60 ticks an hour, with the local "
                  f"pollers' long polls ({fixed.get(RM, 0):.0f} an hour): ${dreq * month:.2f} per month "
                  f"(+ ${ddur * month:.3f} Lambda duration)")
