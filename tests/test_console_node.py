"""The web console's node page, in headless Chromium against the local stack,
with real agents: a node opened from the fleet, its facts, its tags edited,
the commands sent to it, the way to run one on it, and what a scoped key
sees. Also the fleet's tag and patch columns. Screenshots go to
test-output/console/ (tests/console.py)."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from console import WAIT_MS, admin_key, assert_accessible, console_url, filter_fleet_by_tag, screenshot, sign_in
from fleet import online_fleet, restricted_key, ssm_client, wait_command_final, wait_for


@pytest.fixture(scope="module")
def fleet(stack, tmp_path_factory):
    with online_fleet(tmp_path_factory.mktemp("fleet"), dev=["dev1", "dev2"]) as f:
        yield f


def section(page, name):
    return page.get_by_role("region", name=name, exact=True)


def open_node_from_fleet(page, fleet, name):
    """Signs in, filters the fleet to this suite and opens `name`'s node by its link."""
    node = fleet.agents[name].instance_id()
    sign_in(page, *admin_key())
    filter_fleet_by_tag(page, f"suite={fleet.suite}")
    page.get_by_role("link", name=node).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(node, timeout=WAIT_MS)
    return node


def test_open_a_node_from_the_fleet_and_see_its_facts(fleet, page):
    node = open_node_from_fleet(page, fleet, "dev1")
    info = fleet.ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [node]}])["InstanceInformationList"][0]
    facts = section(page, "Information").locator("dl.facts")
    expect(facts).to_contain_text(info["PlatformName"], timeout=WAIT_MS)
    expect(facts).to_contain_text(info["AgentVersion"])
    expect(facts).to_contain_text("Online")
    expect(page).to_have_url(console_url() + f"#/nodes/{node}")
    # Its tags from the activation, and the sections that have nothing yet.
    expect(section(page, "Tags")).to_contain_text(fleet.suite, timeout=WAIT_MS)
    expect(section(page, "Patch state")).to_contain_text("No patch state", timeout=WAIT_MS)
    expect(section(page, "Applications").get_by_role("status")).to_have_count(0, timeout=WAIT_MS)
    screenshot(page, "node-facts")
    assert_accessible(page)


def test_the_fleet_shows_tags_and_patch_columns(fleet, page):
    sign_in(page, *admin_key())
    filter_fleet_by_tag(page, f"suite={fleet.suite}")
    node = fleet.agents["dev2"].instance_id()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=node))
    expect(row.locator(".tag", has_text=f"suite={fleet.suite}")).to_be_visible(timeout=WAIT_MS)
    expect(row.locator(".tag", has_text="env=dev")).to_be_visible()
    expect(page.get_by_role("columnheader", name="Patch")).to_be_visible()
    expect(page.get_by_role("columnheader", name="Tags")).to_be_visible()
    screenshot(page, "node-fleet-columns")
    assert_accessible(page)


def test_add_and_remove_a_tag(fleet, page):
    node = open_node_from_fleet(page, fleet, "dev1")
    ssm = ssm_client()
    key, value = f"console-{uuid.uuid4().hex[:8]}", "blue"
    tags = section(page, "Tags")
    expect(tags.get_by_role("table")).to_be_visible(timeout=WAIT_MS)
    tags.get_by_label("Tag key").fill(key)
    tags.get_by_label("Tag value").fill(value)
    tags.get_by_role("button", name="Add tag").click()
    row = tags.get_by_role("row").filter(has_text=key)
    expect(row).to_contain_text(value, timeout=WAIT_MS)

    def stored():
        return {t["Key"]: t["Value"] for t in ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=node)["TagList"]}

    assert stored().get(key) == value
    screenshot(page, "node-tag-added")
    assert_accessible(page)

    tags.get_by_role("button", name=f"Remove tag {key}").click()
    expect(tags.get_by_role("row").filter(has_text=key)).to_have_count(0, timeout=WAIT_MS)
    assert key not in stored()
    # The suite's own tags are untouched.
    assert stored().get("suite") == fleet.suite
    screenshot(page, "node-tag-removed")
    assert_accessible(page)


def test_a_command_sent_to_the_node_is_listed_with_its_status(fleet, page):
    node = fleet.agents["dev2"].instance_id()
    ssm = ssm_client()
    command_id = ssm.send_command(
        InstanceIds=[node], DocumentName="AWS-RunShellScript", Parameters={"commands": ["echo hi"]},
        Comment="console node page",
    )["Command"]["CommandId"]
    assert wait_command_final(ssm, command_id)["Status"] == "Success"
    open_node_from_fleet(page, fleet, "dev2")
    commands = section(page, "Recent commands")
    link = commands.get_by_role("link", name=command_id)
    expect(link).to_be_visible(timeout=WAIT_MS)
    expect(link).to_have_attribute("href", f"#/commands/{command_id}")
    row = commands.get_by_role("row").filter(has=page.get_by_role("link", name=command_id))
    expect(row).to_contain_text("AWS-RunShellScript")
    expect(row.locator(".status-Success")).to_have_text("Success")
    screenshot(page, "node-commands")
    assert_accessible(page)


def test_run_command_on_this_node_links_to_the_run_page(fleet, page):
    node = open_node_from_fleet(page, fleet, "dev1")
    run = page.get_by_role("link", name="Run command on this node")
    expect(run).to_have_attribute("href", f"#/run?target={node}", timeout=WAIT_MS)
    screenshot(page, "node-run-link")
    assert_accessible(page)
    run.click()
    expect(page).to_have_url(re.compile(re.escape(f"#/run?target={node}") + "$"), timeout=WAIT_MS)


def test_a_scoped_key_sees_its_refusal_in_each_section(fleet, page):
    node = fleet.agents["dev1"].instance_id()
    _, key_id, secret = restricted_key(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ssm:DescribeInstanceInformation", "Resource": "*"}]},
        "console-node-scoped",
    )
    sign_in(page, key_id, secret, admin_key()[2])
    page.get_by_label("Search").fill(node)
    page.get_by_role("link", name=node).click()
    expect(section(page, "Information").locator("dl.facts")).to_contain_text("Online", timeout=WAIT_MS)
    tags_alert = section(page, "Tags").get_by_role("alert")
    expect(tags_alert).to_contain_text("AccessDeniedException", timeout=WAIT_MS)
    expect(tags_alert).to_contain_text("ListTagsForResource")
    expect(section(page, "Recent commands").get_by_role("alert")).to_contain_text("AccessDeniedException", timeout=WAIT_MS)
    expect(section(page, "Patch state").get_by_role("alert")).to_contain_text("AccessDeniedException", timeout=WAIT_MS)
    screenshot(page, "node-scoped-key")
    assert_accessible(page)


def test_the_node_inventory_is_shown_by_type(fleet, page):
    node = fleet.agents["dev2"].instance_id()
    app = f"console-app-{uuid.uuid4().hex[:8]}"
    ssm = ssm_client()
    ssm.put_inventory(InstanceId=node, Items=[
        {"TypeName": "AWS:Application", "SchemaVersion": "1.1", "CaptureTime": "2026-12-01T10:00:00Z",
         "Content": [{"Name": app, "Version": "1.2.3", "Publisher": "Steward tests", "Architecture": "amd64"},
                     {"Name": "bash", "Version": "5.2.15", "Architecture": "amd64"}]},
        {"TypeName": "AWS:Network", "SchemaVersion": "1.0", "CaptureTime": "2026-12-01T10:00:00Z",
         "Content": [{"Name": "eth0", "IPV4": "192.0.2.2", "MacAddress": "02:00:00:00:00:02"}]},
    ])
    open_node_from_fleet(page, fleet, "dev2")
    apps = section(page, "Applications")
    row = apps.get_by_role("row").filter(has_text=app)
    expect(row).to_contain_text("1.2.3", timeout=WAIT_MS)
    expect(row).to_contain_text("Steward tests")
    expect(apps.get_by_role("columnheader", name="Version")).to_be_visible()
    expect(section(page, "Network interfaces").get_by_role("row").filter(has_text="eth0")).to_contain_text("02:00:00:00:00:02")
    expect(section(page, "Services")).to_contain_text("No AWS:Service inventory", timeout=WAIT_MS)
    screenshot(page, "node-inventory")
    assert_accessible(page)


def test_an_association_on_the_node_is_listed_with_its_status(fleet, page):
    node = fleet.agents["dev1"].instance_id()
    ssm = ssm_client()
    name = f"console-node-{uuid.uuid4().hex[:8]}"
    aid = ssm.create_association(
        Name="AWS-RunShellScript", AssociationName=name, Targets=[{"Key": "InstanceIds", "Values": [node]}],
        Parameters={"commands": ["echo associated"]},
    )["AssociationDescription"]["AssociationId"]
    try:
        def done():
            found = [s for s in ssm.describe_instance_associations_status(InstanceId=node)["InstanceAssociationStatusInfos"]
                     if s["AssociationId"] == aid and s["Status"] in ("Success", "Failed")]
            return found[0] if found else None

        status = wait_for(f"association {aid} on {node}", done, timeout=120, interval=2)
        open_node_from_fleet(page, fleet, "dev1")
        row = section(page, "Associations").get_by_role("row").filter(has_text=aid)
        expect(row).to_contain_text(name, timeout=WAIT_MS)
        expect(row.locator(f".status-{status['Status']}")).to_have_text(status["Status"])
        screenshot(page, "node-associations")
        assert_accessible(page)
    finally:
        ssm.delete_association(AssociationId=aid)
