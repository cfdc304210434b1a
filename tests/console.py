"""Driving the web console (console/, served by the api function under
/console/) in a real headless browser: Debian's Chromium, through Playwright
(its own browser download is never used). Every test keeps a screenshot under
test-output/console/, and checks accessibility with axe-core."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fleet import profile

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output" / "console"
AXE = ROOT / "console" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium reaches for Google's hosts
# at every start, which a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# What a test waits for a page to show (the console's calls go to the local API).
WAIT_MS = 30_000


def console_url() -> str:
    return profile()["endpoint_url"].rstrip("/") + "/console/"


def admin_key() -> tuple[str, str, str]:
    p = profile()
    return p["aws_access_key_id"], p["aws_secret_access_key"], p["region"]


def launch(playwright):
    assert Path(CHROMIUM).exists(), "no chromium: run infra/install.sh"
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def sign_in(page, key_id: str, secret: str, region: str, route: str = "") -> None:
    """Signs in on the sign-in form, as a person would, then opens `route`
    (e.g. "#/fleet"); waits for the navigation bar."""
    page.goto(console_url() + route)
    page.get_by_label("Access key ID").fill(key_id)
    page.get_by_label("Secret access key").fill(secret)
    page.get_by_label("Region").fill(region)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("navigation", name="Main").wait_for(timeout=WAIT_MS)


def filter_fleet_by_tag(page, tag: str) -> None:
    """On the fleet page: the API's tag filter (`key` or `key=value`)."""
    page.get_by_label("Tag (key or key=value)").fill(tag)
    page.get_by_role("button", name="Apply tag filter").click()


def screenshot(page, name: str) -> Path:
    """Keeps a full-page screenshot for people to look at."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def accessibility_violations(page) -> list[dict]:
    """axe-core's WCAG 2 A and AA violations on the page as it is now:
    every control labelled, text contrast, landmarks and names."""
    assert AXE.exists(), "no console/node_modules/axe-core: run infra/console.sh install"
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the console's CSP (script-src
        # 'self') rightly refuses an injected <script>.
        page.evaluate(AXE.read_text() + "\n;0")
    result = page.evaluate(
        "async () => JSON.stringify(await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa']}}))"
    )
    return json.loads(result)["violations"]


def assert_accessible(page) -> None:
    violations = accessibility_violations(page)
    assert not violations, "axe-core found:\n" + "\n".join(
        f"- {v['id']} ({v['impact']}): {v['help']}: {[n['target'] for n in v['nodes']][:5]}" for v in violations
    )
