#!/usr/bin/env python3
"""The web console's figures on the local stack (make bench-console):

- time to a usable fleet page with N registered nodes (default 500): from
  opening the console, signed in, to every node counted and the first page
  of the table drawn, in headless Chromium; with the longest main-thread
  task in that time (a frozen page shows as a long one);
- what the browser downloads on first load: the page and its assets as sent
  (gzip) and unpacked, from the browser's own resource timing.

The nodes are registered for real, each by `steward-agent register` with an
activation of the bench's own, then deregistered. The control plane running
is used as it is (make up)."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from playwright.sync_api import sync_playwright  # noqa: E402

from console import admin_key, console_url, launch  # noqa: E402
from fleet import BIN, deregister, profile, ssm_client, stack_env  # noqa: E402

# Sets the signed-in key in the tab's session storage before the console's
# own script runs, as a sign-in earlier in the tab would have.
SESSION_SCRIPT = "sessionStorage.setItem('steward.session', JSON.stringify(%s));"

# Records every long task (over 50 ms) of the main thread from the start.
LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__longTasks.push(e.duration); })
  .observe({ type: "longtask", buffered: true });
"""


def register_nodes(count: int, parallel: int, workdir: Path) -> tuple[dict, list[str]]:
    ssm = ssm_client()
    activation = ssm.create_activation(
        DefaultInstanceName="console-bench", IamRole="steward-node", RegistrationLimit=count,
        Tags=[{"Key": "bench", "Value": "console"}],
    )
    env = stack_env()

    def register(i: int) -> str:
        state = workdir / f"node{i}"
        subprocess.run(
            [str(BIN / "steward-agent"), "--state-dir", str(state), "--api-url", profile()["endpoint_url"],
             "--sqs-endpoint", env["AWS_ENDPOINT_URL"], "register", "--name", f"bench-{i}",
             "--activation-code", activation["ActivationCode"], "--activation-id", activation["ActivationId"]],
            check=True, capture_output=True, timeout=120,
        )
        out = subprocess.run([str(BIN / "steward-agent"), "--state-dir", str(state), "status"],
                             check=True, capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout)["InstanceId"]

    started = time.monotonic()
    with ThreadPoolExecutor(parallel) as pool:
        ids = list(pool.map(register, range(count)))
    print(f"registered {len(ids)} nodes in {time.monotonic() - started:.0f} s")
    return activation, ids


def measure(browser, expected_total: int) -> dict:
    key_id, secret, region = admin_key()
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(SESSION_SCRIPT % json.dumps(
        {"accessKeyId": key_id, "secretAccessKey": secret, "region": region}))
    context.add_init_script(LONG_TASKS)
    page = context.new_page()
    started = time.monotonic()
    page.goto(console_url() + "#/fleet")
    page.wait_for_function(
        "n => document.querySelector('[data-count=total]')?.textContent === String(n)"
        " && document.querySelectorAll('tbody tr').length > 0",
        arg=expected_total, timeout=300_000, polling=50,
    )
    usable = time.monotonic() - started
    rows = page.locator("tbody tr").count()
    resources = page.evaluate("""() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const files = performance.getEntriesByType('resource').filter(r => r.initiatorType !== 'fetch' && r.initiatorType !== 'xmlhttprequest');
      const all = [nav, ...files];
      return { count: all.length,
               transfer: all.reduce((s, r) => s + r.transferSize, 0),
               encoded: all.reduce((s, r) => s + r.encodedBodySize, 0),
               decoded: all.reduce((s, r) => s + r.decodedBodySize, 0),
               calls: performance.getEntriesByType('resource').filter(r => r.initiatorType === 'fetch').length };
    }""")
    long_tasks = page.evaluate("window.__longTasks")
    context.close()
    return {"usable_s": usable, "rows": rows, "resources": resources, "longest_task_ms": max(long_tasks, default=0.0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nodes", type=int, default=500, help="nodes to register (default 500)")
    ap.add_argument("--parallel", type=int, default=8, help="registrations at once")
    ap.add_argument("--runs", type=int, default=3, help="page loads measured")
    args = ap.parse_args()

    ssm = ssm_client()
    before = sum(len(p["InstanceInformationList"])
                 for p in ssm.get_paginator("describe_instance_information").paginate())
    with tempfile.TemporaryDirectory(prefix="console-bench-") as tmp:
        activation, ids = register_nodes(args.nodes, args.parallel, Path(tmp))
        try:
            total = before + len(ids)
            with sync_playwright() as p:
                browser = launch(p)
                try:
                    runs = [measure(browser, total) for _ in range(args.runs)]
                finally:
                    browser.close()
        finally:
            with ThreadPoolExecutor(args.parallel) as pool:
                list(pool.map(lambda node: deregister(ssm, node), ids))
            ssm.delete_activation(ActivationId=activation["ActivationId"])
            print(f"deregistered {len(ids)} nodes")

    first = runs[0]["resources"]
    times = [r["usable_s"] for r in runs]
    print()
    print(f"console, fleet page with {total} registered nodes ({args.nodes} the bench's), {args.runs} loads:")
    print(f"  time to a usable fleet page: median {statistics.median(times):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in times)}); {runs[0]['rows']} rows drawn, "
          f"{first['calls']} API calls")
    print(f"  longest main-thread task: {max(r['longest_task_ms'] for r in runs):.0f} ms")
    print(f"  first load: {first['count']} files, {first['transfer'] / 1024:.1f} KiB transferred "
          f"({first['encoded'] / 1024:.1f} KiB gzip bodies, {first['decoded'] / 1024:.1f} KiB unpacked)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
