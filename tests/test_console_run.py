"""The web console's Run command page, a command's page and the command
history, in headless Chromium against the local stack, with real agents:
a command run from the form generated from a document's parameters, values
refused before anything is sent, targets by tag with their match count, a
cancel, the history's filters, and a key whose policy refuses SendCommand.
Screenshots go to test-output/console/ (tests/console.py)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from playwright.sync_api import expect

from console import WAIT_MS, admin_key, assert_accessible, screenshot, sign_in
from fleet import dev_prod_fleet, iam_client, listed, restricted_key, ssm_client, wait_command_final, wait_for

COMMAND_URL = re.compile(r"#/commands/[0-9a-f-]{36}$")


@pytest.fixture(scope="module")
def fleet(stack, tmp_path_factory):
    with dev_prod_fleet(tmp_path_factory.mktemp("fleet")) as f:
        yield f


@pytest.fixture
def choice_document(stack):
    """A Command document of this test's own with a required allowedValues
    String, an Integer and a Boolean parameter; deleted afterwards."""
    ssm = ssm_client()
    name = f"e2e-console-choice-{uuid.uuid4().hex[:10]}"
    content = {
        "schemaVersion": "2.2",
        "description": "Says a level and a count (console test).",
        "parameters": {
            "level": {"type": "String", "description": "How loud.", "allowedValues": ["low", "high"]},
            "count": {"type": "Integer", "description": "How many times.", "default": 1},
            "shout": {"type": "Boolean", "description": "Upper case.", "default": False},
        },
        "mainSteps": [
            {
                "action": "aws:runShellScript",
                "name": "say",
                "inputs": {"runCommand": ["echo level={{ level }} count={{ count }} shout={{ shout }}"]},
            }
        ],
    }
    ssm.create_document(Name=name, Content=json.dumps(content), DocumentType="Command", DocumentFormat="JSON")
    try:
        yield name
    finally:
        ssm.delete_document(Name=name)


def commands_of(ssm, document, after):
    return listed(
        ssm,
        "list_commands",
        "Commands",
        Filters=[{"key": "DocumentName", "value": document}, {"key": "InvokedAfter", "value": after}],
    )


def now_iso():
    return (datetime.now(timezone.utc) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")


def open_run(page, route):
    sign_in(page, *admin_key(), route=route)
    expect(page.get_by_role("heading", name="Run command", level=1)).to_be_visible(timeout=WAIT_MS)


def pick_document(page, name):
    page.get_by_label("Document", exact=True).select_option(name, timeout=WAIT_MS)


def test_run_a_command_from_the_form(fleet, page):
    node = fleet.agents["dev1"].instance_id()
    marker = f"console-{uuid.uuid4().hex}"
    open_run(page, f"#/run?target={node}")
    expect(page.get_by_label("Node IDs (one per line)")).to_have_value(node)
    pick_document(page, "AWS-RunShellScript")
    commands = page.get_by_role("textbox", name="commands")
    commands.fill(f"echo {marker}")
    # The form is the document's: its declared parameters, defaults and the delivery settings.
    expect(page.get_by_label("Execution timeout (seconds)")).to_have_value("3600")
    expect(page.get_by_role("textbox", name="workingDirectory")).to_have_value("")
    expect(page.get_by_label("Concurrency (MaxConcurrency)")).to_have_value("50")
    expect(page.get_by_label("Error threshold (MaxErrors)")).to_have_value("0")
    expect(page.locator("#run-match")).to_contain_text("1 node matches", timeout=WAIT_MS)
    page.get_by_label("Comment").fill(marker[:40])
    screenshot(page, "run-form")
    assert_accessible(page)

    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(COMMAND_URL, timeout=WAIT_MS)
    command_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("heading", level=1)).to_contain_text(command_id)
    section = page.get_by_role("region", name=f"Node {node}")
    expect(section).to_contain_text("Success", timeout=WAIT_MS)
    output = page.get_by_role("log", name=f"Output of {node}")
    expect(output).to_contain_text(marker, timeout=WAIT_MS)
    expect(page.locator("#command-state")).to_contain_text("Finished: Success", timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Cancel command")).to_have_count(0)
    expect(page.locator("[data-count=completed]")).to_have_text("1")
    # What was sent is what the form said.
    sent = ssm_client().list_commands(CommandId=command_id)["Commands"][0]
    assert sent["Parameters"] == {"commands": [f"echo {marker}"]}, sent
    assert sent["InstanceIds"] == [node]
    assert sent["Comment"] == marker[:40]
    assert (sent["MaxConcurrency"], sent["MaxErrors"]) == ("50", "0")
    # The whole output, read with GetCommandInvocation.
    page.get_by_role("button", name=re.compile("Show standard output and error")).click()
    expect(page.get_by_role("log", name=f"Standard output of {node}")).to_contain_text(marker, timeout=WAIT_MS)
    screenshot(page, "run-command-page")
    assert_accessible(page)


def test_bad_values_are_refused_in_the_form(fleet, page, choice_document):
    ssm = ssm_client()
    since = now_iso()
    node = fleet.agents["dev2"].instance_id()
    marker = f"never-{uuid.uuid4().hex}"
    open_run(page, f"#/run?target={node}")
    pick_document(page, "AWS-RunShellScript")
    page.get_by_role("textbox", name="commands").fill(f"echo {marker}")
    timeout = page.get_by_label("Execution timeout (seconds)")
    timeout.fill("ten minutes")
    expect(page.locator("#run-match")).to_contain_text("1 node matches", timeout=WAIT_MS)
    page.get_by_role("button", name="Send").click()
    message = page.locator("#param-executionTimeout-error")
    expect(message).to_contain_text('"ten minutes" does not match the allowed pattern')
    expect(timeout).to_have_accessible_description(re.compile("does not match the allowed pattern"))
    expect(timeout).to_be_focused()
    expect(page.get_by_role("status").filter(has_text="Not sent")).to_be_visible()
    screenshot(page, "run-refused-pattern")
    assert_accessible(page)

    # A document's own constraints: a required choice left unchosen, a non-integer.
    page.goto(page.url.split("#")[0] + f"#/run?target={node}&document={choice_document}")
    level = page.get_by_label("level")
    expect(level).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_label("count")).to_have_value("1")
    expect(page.get_by_label("shout")).not_to_be_checked()
    page.get_by_label("count").fill("1.5")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#param-level-error")).to_have_text("Required: choose one of low, high.")
    expect(page.locator("#param-count-error")).to_contain_text('"1.5" is not a whole number')
    expect(page.get_by_label("count")).to_have_accessible_description(re.compile("not a whole number"))
    screenshot(page, "run-refused-values")
    assert_accessible(page)
    # Nothing was sent, of either document.
    assert commands_of(ssm, choice_document, since) == []
    assert not [c for c in commands_of(ssm, "AWS-RunShellScript", since) if marker in json.dumps(c["Parameters"])]

    # Corrected, the same form sends, with the values typed as the document says.
    level.select_option("high")
    page.get_by_label("count").fill("3")
    page.get_by_label("shout").check()
    expect(page.locator("#param-level-error")).to_have_count(0)
    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(COMMAND_URL, timeout=WAIT_MS)
    command_id = page.url.rsplit("/", 1)[1]
    expect(page.get_by_role("log", name=f"Output of {node}")).to_contain_text(
        "level=high count=3 shout=true", timeout=WAIT_MS
    )
    sent = wait_command_final(ssm, command_id)
    assert sent["Parameters"] == {"level": ["high"], "count": ["3"], "shout": ["true"]}, sent
    assert sent["Status"] == "Success"


def test_target_by_tag_shows_the_match_count(fleet, page):
    marker = f"tagged-{uuid.uuid4().hex}"
    open_run(page, "#/run")
    pick_document(page, "AWS-RunShellScript")
    page.get_by_role("textbox", name="commands").fill(f"echo {marker}")
    page.get_by_label("Tags", exact=True).check()
    page.get_by_label("Tag 1 key").fill("suite")
    page.get_by_label("Tag 1 value").fill(fleet.suite)
    expect(page.locator("#run-match")).to_contain_text("3 nodes match (3 online)", timeout=WAIT_MS)
    page.get_by_role("button", name="Add a tag").click()
    page.get_by_label("Tag 2 key").fill("env")
    page.get_by_label("Tag 2 value").fill("dev")
    expect(page.locator("#run-match")).to_contain_text("2 nodes match", timeout=WAIT_MS)
    screenshot(page, "run-by-tags")
    assert_accessible(page)
    page.get_by_label("Tag 2 value").fill("nowhere-" + marker)
    expect(page.locator("#run-match")).to_contain_text("No node matches", timeout=WAIT_MS)
    page.get_by_label("Tag 2 value").fill("dev")
    expect(page.locator("#run-match")).to_contain_text("2 nodes match", timeout=WAIT_MS)

    page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(COMMAND_URL, timeout=WAIT_MS)
    command_id = page.url.rsplit("/", 1)[1]
    for name in ("dev1", "dev2"):
        node = fleet.agents[name].instance_id()
        expect(page.get_by_role("log", name=f"Output of {node}")).to_contain_text(marker, timeout=WAIT_MS)
    expect(page.get_by_role("region", name=f"Node {fleet.agents['prod1'].instance_id()}")).to_have_count(0)
    sent = wait_command_final(ssm_client(), command_id)
    assert {(t["Key"], tuple(t["Values"])) for t in sent["Targets"]} == {
        ("tag:suite", (fleet.suite,)),
        ("tag:env", ("dev",)),
    }
    screenshot(page, "run-by-tags-command")


def test_cancel_a_running_command_from_its_page(fleet, page):
    ssm = ssm_client()
    node = fleet.agents["dev2"].instance_id()
    command_id = ssm.send_command(
        DocumentName="AWS-RunShellScript", InstanceIds=[node], Parameters={"commands": ["sleep 60"]}
    )["Command"]["CommandId"]
    sign_in(page, *admin_key(), route=f"#/commands/{command_id}")
    section = page.get_by_role("region", name=f"Node {node}")
    expect(section).to_contain_text("InProgress", timeout=WAIT_MS)
    expect(page.locator("#command-state")).to_contain_text("updating every 2 seconds")
    screenshot(page, "command-in-progress")
    assert_accessible(page)
    page.get_by_role("button", name="Cancel command").click()
    expect(page.locator("#command-state")).to_contain_text("Finished: Cancelled", timeout=WAIT_MS)
    expect(section).to_contain_text("Cancelled")
    expect(page.get_by_role("button", name="Cancel command")).to_have_count(0)
    assert wait_command_final(ssm, command_id)["Status"] == "Cancelled"
    screenshot(page, "command-cancelled")
    assert_accessible(page)


def test_history_lists_commands_and_filters_them(fleet, page):
    ssm = ssm_client()
    node = fleet.agents["prod1"].instance_id()
    ok = ssm.send_command(
        DocumentName="AWS-RunShellScript", InstanceIds=[node], Parameters={"commands": ["echo fine"]},
        Comment="console history ok",
    )["Command"]["CommandId"]
    bad = ssm.send_command(
        DocumentName="AWS-RunShellScript", InstanceIds=[node], Parameters={"commands": ["exit 3"]},
        Comment="console history bad",
    )["Command"]["CommandId"]
    assert wait_command_final(ssm, ok)["Status"] == "Success"
    assert wait_command_final(ssm, bad)["Status"] == "Failed"

    sign_in(page, *admin_key(), route="#/commands")
    expect(page.get_by_role("heading", name="Commands", level=1)).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("link", name=ok)).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_role("link", name=bad)).to_be_visible()
    screenshot(page, "history")
    assert_accessible(page)

    page.get_by_label("Document name").fill("AWS-RunShellScript")
    page.get_by_label("Status").select_option("Failed")
    page.get_by_role("button", name="Apply filters").click()
    # The unfiltered list goes first (ok leaves it), then the filtered one comes.
    expect(page.get_by_role("link", name=ok)).to_have_count(0, timeout=WAIT_MS)
    expect(page.get_by_role("link", name=bad)).to_be_visible(timeout=WAIT_MS)
    statuses = page.locator("table tbody tr td:nth-child(3)")
    expect(statuses).not_to_have_count(0)
    assert set(statuses.all_inner_texts()) == {"Failed"}

    page.get_by_label("Status").select_option("Success")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_role("link", name=bad)).to_have_count(0, timeout=WAIT_MS)
    expect(page.get_by_role("link", name=ok)).to_be_visible(timeout=WAIT_MS)
    screenshot(page, "history-filtered")

    # Invoked after a time still to come: nothing.
    page.get_by_label("Status").select_option("")
    page.get_by_label("Invoked after (UTC)").fill("2099-01-01T00:00")
    page.get_by_role("button", name="Apply filters").click()
    expect(page.get_by_text("No command matches these filters.")).to_be_visible(timeout=WAIT_MS)

    # Each command links to its page.
    page.get_by_label("Invoked after (UTC)").fill("")
    page.get_by_role("button", name="Apply filters").click()
    page.get_by_role("link", name=bad).click()
    expect(page).to_have_url(re.compile(f"#/commands/{bad}$"))
    expect(page.locator("#command-state")).to_contain_text("Finished: Failed", timeout=WAIT_MS)
    expect(page.locator("dl.facts")).to_contain_text("console history bad")

    # A command id no command has: the API's refusal, and the way back.
    page.goto(page.url.split("#")[0] + f"#/commands/{uuid.uuid4()}")
    expect(page.get_by_role("alert")).to_contain_text("InvalidCommandId", timeout=WAIT_MS)
    expect(page.get_by_role("link", name="See the command history")).to_be_visible()
    screenshot(page, "command-unknown")
    assert_accessible(page)


def test_a_key_without_send_command_sees_the_refusal(fleet, page):
    reads = [
        "ssm:DescribeInstanceInformation",
        "ssm:ListDocuments",
        "ssm:ListDocumentVersions",
        "ssm:DescribeDocument",
        "ssm:GetDocument",
        "ssm:ListCommands",
        "ssm:ListCommandInvocations",
    ]
    user, key_id, secret = restricted_key(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": reads, "Resource": "*"}]},
        "console-no-send",
    )
    try:
        refused_on_send(fleet, page, key_id, secret)
    finally:
        iam = iam_client()
        iam.delete_access_key(UserName=user, AccessKeyId=key_id)
        iam.delete_user_policy(UserName=user, PolicyName="policy")
        iam.delete_user(UserName=user)


def refused_on_send(fleet, page, key_id, secret):
    since = now_iso()
    node = fleet.agents["dev1"].instance_id()
    marker = f"refused-{uuid.uuid4().hex}"
    sign_in(page, key_id, secret, admin_key()[2], route=f"#/run?target={node}")
    expect(page.get_by_role("heading", name="Run command", level=1)).to_be_visible(timeout=WAIT_MS)
    pick_document(page, "AWS-RunShellScript")
    page.get_by_role("textbox", name="commands").fill(f"echo {marker}")
    expect(page.locator("#run-match")).to_contain_text("1 node matches", timeout=WAIT_MS)
    page.get_by_role("button", name="Send").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("AccessDeniedException", timeout=WAIT_MS)
    expect(alert).to_contain_text("SendCommand")
    expect(alert).to_contain_text("The command was not sent")
    # Still on the form, with what was typed.
    expect(page.get_by_role("textbox", name="commands")).to_have_value(f"echo {marker}")
    wait_for(
        "the refused command to be absent",
        lambda: not [c for c in commands_of(ssm_client(), "AWS-RunShellScript", since) if marker in json.dumps(c["Parameters"])],
        timeout=5,
    )
    screenshot(page, "run-refused-access")
    assert_accessible(page)
