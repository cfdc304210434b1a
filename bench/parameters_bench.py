"""Parameter Store figures for the closing note: GetParameter and
GetParametersByPath latency over 1,000 parameters, AWS requests (KMS,
DynamoDB) per operation, and DynamoDB capacity units per operation computed
from the stored items' sizes.

Requests are counted by the SDK clients of a control plane process of the
benchmark's own: `steward-local --no-pollers` on a free port, serving the
API alone. Nothing else runs in it (no queue pollers, no scheduler, no
agent's heartbeat reaches it), so the difference of its counters over a
measurement is the measured calls' requests, and nothing else.

Two caches change what a call costs, and are stated with each figure:
- the data-key cache (STEWARD_DATA_KEY_CACHE_SECONDS, 300 s, 1,024 keys):
  a SecureString version's data key is decrypted by KMS on its first read in
  a process, then served from memory. "cold" reads each read a version not
  read before in this process (one Decrypt each); "warm" reads read one
  version again (no KMS call). SSM's standard tier decrypts on every read;
  a Lambda's cache is per instance and empty after each cold start.
- the access-key cache (60 s): a process's first signed request reads the
  key and its user (2 GetItem) and decrypts the key's secret (1 KMS
  Decrypt); later ones within 60 s do not. It is shown as the first call.

Run through `make bench` (bench/run.sh) with the stack up (`make up`).
Prints figures; asserts nothing about time.
"""

import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import botocore.config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fleet import BIN, localstack_client, profile, stack_env  # noqa: E402

COUNT = 1000
SAMPLES = 300


class PrivateApi:
    """steward-local serving the API alone, for counting."""

    def __init__(self, workdir):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, **stack_env(), "STEWARD_API_PORT": str(self.port)}
        self.log = Path(workdir) / "steward-local-api.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "steward-local"), "--no-pollers", "--api-port", str(self.port)],
                env=env, stdout=out, stderr=out, start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while "api on" not in self.log.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"error: the benchmark's own control plane did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        self.url = f"http://127.0.0.1:{self.port}"

    def ssm(self):
        p = profile()
        return boto3.client(
            "ssm", endpoint_url=self.url, region_name=p["region"],
            aws_access_key_id=p["aws_access_key_id"], aws_secret_access_key=p["aws_secret_access_key"],
            config=botocore.config.Config(retries={"max_attempts": 1}),
        )

    def metrics(self):
        with urllib.request.urlopen(self.url + "/_steward/metrics", timeout=5) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


API = None


def delta(before, after):
    out = {}
    for service, ops in after["requests"].items():
        for op, n in ops.items():
            d = n - before["requests"].get(service, {}).get(op, 0)
            if d:
                out[f"{service}.{op}"] = d
    for k, n in after["sealer"].items():
        d = n - before["sealer"].get(k, 0)
        if d:
            out[f"data-key cache.{k}"] = d
    return out


def fmt(per_call):
    aws = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per_call.items()) if not k.startswith("data-key")) or "none"
    cache = ", ".join(f"{k.split('.', 1)[1]} {v:.2f}" for k, v in sorted(per_call.items()) if k.startswith("data-key"))
    return aws + (f" | data-key cache per call: {cache}" if cache else "")


def measured(label, calls, fn):
    """Runs fn `calls` times; prints p50/p99 and AWS requests per call."""
    before = API.metrics()
    times = []
    for i in range(calls):
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1000)
    per_call = {k: v / calls for k, v in delta(before, API.metrics()).items()}
    times.sort()
    p50 = statistics.median(times)
    p99 = times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)]
    print(f"{label:<52} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  | AWS requests per call: {fmt(per_call)}")
    return per_call


def item_sizes(name):
    """DynamoDB's size of each stored item of a parameter (names + values)."""
    env = stack_env()
    items = localstack_client("dynamodb").query(
        TableName=env["STEWARD_PARAMETERS_TABLE"],
        KeyConditionExpression="#n = :n",
        ExpressionAttributeNames={"#n": "Name"},
        ExpressionAttributeValues={":n": {"S": name}},
    )["Items"]

    def size(v):
        (kind, val), = v.items()
        if kind in ("S", "N"):
            return len(str(val).encode())
        if kind == "B":
            return len(val)
        if kind == "BOOL" or kind == "NULL":
            return 1
        if kind in ("SS", "NS"):
            return sum(len(x.encode()) for x in val)
        if kind == "L":
            return 3 + sum(1 + size(x) for x in val)
        if kind == "M":
            return 3 + sum(len(k.encode()) + 1 + size(x) for k, x in val.items())
        return 0

    return {int(i["Version"]["N"]): sum(len(k.encode()) + size(v) for k, v in i.items()) for i in items}


def main():
    global API
    with tempfile.TemporaryDirectory() as work:
        API = PrivateApi(work)
        try:
            run(API.ssm())
        finally:
            API.stop()


def run(ssm):
    print("How requests are counted: the SDK counters of the benchmark's own API-only control plane")
    print("(no pollers, no scheduler, no agents in it): per call = counter difference / calls, each service")
    print("and operation; 'data-key cache' lines are the SecureString sealer's KMS calls and cache hits.")
    ttl = {**stack_env(), **os.environ}.get("STEWARD_DATA_KEY_CACHE_SECONDS", "300")
    print(f"Caches: data keys {ttl} s, 1,024 keys (cold = a version not read before in this process, warm = read")
    print("again); access keys 60 s (a measurement crossing its expiry pays 2 GetItem + 1 KMS Decrypt once more).")
    root = f"/bench-{uuid.uuid4().hex[:8]}"
    before = API.metrics()
    ssm.describe_parameters(MaxResults=1)
    print(f"first signed call of the process (DescribeParameters, access-key cache empty): {fmt(delta(before, API.metrics()))}")
    print(f"creating {COUNT} parameters under {root}/ ...", flush=True)
    t = time.perf_counter()
    for i in range(COUNT):
        ssm.put_parameter(Name=f"{root}/svc{i % 10}/p{i:04d}", Type="String", Value=f"value-{i}")
    print(f"PutParameter x{COUNT}: {time.perf_counter() - t:.1f} s")

    measured("PutParameter String (overwrite)", SAMPLES // 3,
             lambda i: ssm.put_parameter(Name=f"{root}/svc0/p0000", Value=f"v{i}", Overwrite=True))
    measured("GetParameter String", SAMPLES, lambda i: ssm.get_parameter(Name=f"{root}/svc{i % 10}/p{i:04d}"))

    secret = f"{root}/secret"
    ssm.put_parameter(Name=secret, Type="SecureString", Value="bench-secret")
    measured("PutParameter SecureString (overwrite)", SAMPLES // 3,
             lambda i: ssm.put_parameter(Name=secret, Value=f"bench-secret-{i}", Overwrite=True))
    # Cold: each call reads a version this process never read (its data key
    # is not cached). Warm: one version, read again and again.
    cold = [f"{root}-cold/s{i:03d}" for i in range(SAMPLES // 3)]
    for name in cold:
        ssm.put_parameter(Name=name, Type="SecureString", Value="bench-secret")
    measured("GetParameter SecureString WithDecryption, cold", len(cold),
             lambda i: ssm.get_parameter(Name=cold[i], WithDecryption=True))
    ssm.get_parameter(Name=secret, WithDecryption=True)
    measured("GetParameter SecureString WithDecryption, warm", SAMPLES,
             lambda i: ssm.get_parameter(Name=secret, WithDecryption=True))
    measured("GetParameter SecureString without decryption", SAMPLES, lambda i: ssm.get_parameter(Name=secret))

    def by_path_one_level(_):
        token = None
        n = 0
        while True:
            kw = {"NextToken": token} if token else {}
            page = ssm.get_parameters_by_path(Path=f"{root}/svc3", **kw)
            n += len(page["Parameters"])
            token = page.get("NextToken")
            if not token:
                return n

    pages_before = API.metrics()
    t = time.perf_counter()
    total = 0
    token = None
    calls = 0
    page_times = []
    while True:
        kw = {"NextToken": token} if token else {}
        s = time.perf_counter()
        page = ssm.get_parameters_by_path(Path=root, Recursive=True, **kw)
        page_times.append((time.perf_counter() - s) * 1000)
        calls += 1
        total += len(page["Parameters"])
        token = page.get("NextToken")
        if not token:
            break
    whole = time.perf_counter() - t
    page_times.sort()
    per_call = {k: v / calls for k, v in delta(pages_before, API.metrics()).items()}
    print(
        f"GetParametersByPath recursive over {total} parameters: {calls} pages of <=10 in {whole:.2f} s; "
        f"per page p50 {statistics.median(page_times):.2f} ms p99 {page_times[math.ceil(0.99 * len(page_times)) - 1]:.2f} ms; "
        f"AWS requests per page: {fmt(per_call)}"
    )
    measured("GetParametersByPath one level (100 params, 10 pages)", 10, by_path_one_level)

    sizes = item_sizes(f"{root}/svc1/p0001")
    head, version = sizes.get(0, 0), sizes.get(1, 0)
    rcu = lambda b, consistent=True: math.ceil(b / 4096) * (1 if consistent else 0.5)  # noqa: E731
    wcu = lambda b: math.ceil(b / 1024)  # noqa: E731
    print(
        f"item sizes: head {head} B, version {version} B -> "
        f"GetParameter (latest) {rcu(head)} RCU (one consistent GetItem); "
        f"PutParameter {2 * (wcu(head) + wcu(version))} WCU (transaction of head + version, 2x); "
        f"GetParametersByPath page of 10 ~{math.ceil(10 * head / 4096) * 0.5:.1f} RCU (eventually consistent index Query)"
    )


if __name__ == "__main__":
    main()
