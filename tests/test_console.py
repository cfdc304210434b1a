"""The web console, in headless Chromium against the local stack, with real
agents: sign-in, the fleet, its filters, a node, and what a key's policy
refuses. Screenshots go to test-output/console/ (tests/console.py)."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from console import WAIT_MS, admin_key, assert_accessible, console_url, filter_fleet_by_tag, screenshot, sign_in
from fleet import dev_prod_fleet, restricted_key


@pytest.fixture(scope="module")
def fleet(stack, tmp_path_factory):
    with dev_prod_fleet(tmp_path_factory.mktemp("fleet")) as f:
        yield f


def test_sign_in_with_a_key_and_see_the_fleet(fleet, page):
    sign_in(page, *admin_key())
    expect(page.get_by_role("heading", name="Fleet")).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_text("nodes shown")).to_be_visible(timeout=WAIT_MS)
    assert int(page.locator("[data-count=online]").inner_text()) >= 3
    # Other tests' nodes may fill the first display page: the search finds ours.
    for name in ("dev1", "dev2", "prod1"):
        node = fleet.agents[name].instance_id()
        page.get_by_label("Search").fill(node)
        expect(page.get_by_role("link", name=node)).to_be_visible(timeout=WAIT_MS)
    page.get_by_label("Search").fill("")
    # The secret is in this tab's session storage only.
    stored = page.evaluate("JSON.stringify(Object.assign({}, sessionStorage))")
    assert admin_key()[1] in stored
    assert page.evaluate("localStorage.length") == 0
    assert page.context.cookies() == []
    screenshot(page, "fleet")
    assert_accessible(page)


def test_a_wrong_secret_is_refused_with_what_to_do(stack, page):
    key_id, _, region = admin_key()
    page.goto(console_url())
    page.get_by_label("Access key ID").fill(key_id)
    page.get_by_label("Secret access key").fill("not-the-secret-" + uuid.uuid4().hex)
    page.get_by_label("Region").fill(region)
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("InvalidSignatureException", timeout=WAIT_MS)
    expect(alert).to_contain_text("Sign in again")
    assert page.evaluate("sessionStorage.length") == 0
    screenshot(page, "sign-in-refused")
    assert_accessible(page)


def test_filter_the_fleet_by_tag(fleet, page):
    sign_in(page, *admin_key())
    filter_fleet_by_tag(page, f"suite={fleet.suite}")
    for name in ("dev1", "dev2", "prod1"):
        expect(page.get_by_role("link", name=fleet.agents[name].instance_id())).to_be_visible(timeout=WAIT_MS)
    filter_fleet_by_tag(page, "env=prod")
    expect(page.get_by_role("link", name=fleet.agents["prod1"].instance_id())).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("link", name=fleet.agents["dev1"].instance_id())).to_have_count(0)
    screenshot(page, "fleet-filtered-by-tag")


def test_the_console_is_used_with_the_keyboard(fleet, page):
    page.goto(console_url())
    key_id, secret, region = admin_key()
    page.keyboard.press("Tab")
    page.keyboard.type(key_id)
    page.keyboard.press("Tab")
    page.keyboard.type(secret)
    page.keyboard.press("Tab")
    page.keyboard.press("Control+a")
    page.keyboard.type(region)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Fleet")).to_be_visible(timeout=WAIT_MS)
    # Tab reaches the navigation's links and the fleet's controls.
    focused = set()
    for _ in range(30):
        page.keyboard.press("Tab")
        focused.add(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    assert {"Fleet", "fleet-search", "fleet-tag"} <= focused, focused


def test_a_scoped_key_sees_its_refusals(fleet, page):
    # Allowed to sign in (and list nodes), refused compliance.
    _, key_id, secret = restricted_key(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ssm:DescribeInstanceInformation", "Resource": "*"}]},
        "console-scoped",
    )
    sign_in(page, key_id, secret, admin_key()[2])
    node = fleet.agents["dev1"].instance_id()
    page.get_by_label("Search").fill(node)
    expect(page.get_by_role("link", name=node)).to_be_visible(timeout=WAIT_MS)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("AccessDeniedException", timeout=WAIT_MS)
    expect(alert).to_contain_text("ListResourceComplianceSummaries")
    screenshot(page, "scoped-key-refused")
