"""Parameter Store figures for the closing note: GetParameter and
GetParametersByPath latency over 1,000 parameters, AWS requests (KMS,
DynamoDB) per operation counted by the control plane's SDK clients, and
DynamoDB capacity units per operation computed from the stored items' sizes.

Run through `make bench` (bench/run.sh) with the stack and control plane up
(`make up`). Prints figures; asserts nothing about time.
"""

import json
import math
import statistics
import sys
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fleet import localstack_client, profile, ssm_client, stack_env  # noqa: E402

COUNT = 1000
SAMPLES = 300


def metrics():
    url = profile()["endpoint_url"].rstrip("/") + "/_steward/metrics"
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def delta(before, after):
    out = {}
    for service, ops in after["requests"].items():
        for op, n in ops.items():
            d = n - before["requests"].get(service, {}).get(op, 0)
            if d:
                out[f"{service}.{op}"] = d
    return out


def measured(label, calls, fn):
    """Runs fn `calls` times; prints p50/p99 and AWS requests per call."""
    before = metrics()
    times = []
    for i in range(calls):
        t = time.perf_counter()
        fn(i)
        times.append((time.perf_counter() - t) * 1000)
    per_call = {k: v / calls for k, v in delta(before, metrics()).items()}
    times.sort()
    p50 = statistics.median(times)
    p99 = times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)]
    requests = ", ".join(f"{k} {v:.2f}" for k, v in sorted(per_call.items())) or "none"
    print(f"{label:<44} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  | AWS requests per call: {requests}")
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
    ssm = ssm_client()
    root = f"/bench-{uuid.uuid4().hex[:8]}"
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
    measured("GetParameter SecureString WithDecryption", SAMPLES,
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

    pages_before = metrics()
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
    per_call = {k: v / calls for k, v in delta(pages_before, metrics()).items()}
    print(
        f"GetParametersByPath recursive over {total} parameters: {calls} pages of <=10 in {whole:.2f} s; "
        f"per page p50 {statistics.median(page_times):.2f} ms p99 {page_times[math.ceil(0.99 * len(page_times)) - 1]:.2f} ms; "
        f"AWS requests per page: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(per_call.items()))
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
