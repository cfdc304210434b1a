"""The console's Parameter Store and Documents pages, in headless Chromium
against the local stack: the hierarchy as a tree, a parameter's value (a
SecureString's only when asked, and refused to a key without kms:Decrypt),
the put form's checks, history, and creating and reading a document.
Screenshots go to test-output/console/ (tests/console.py)."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from botocore.exceptions import ClientError
from playwright.sync_api import expect

from console import WAIT_MS, admin_key, assert_accessible, screenshot, sign_in
from fleet import iam_client, restricted_key, ssm_client


@pytest.fixture(scope="module")
def ssm(stack):
    return ssm_client()


def _under(ssm, path):
    pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True)
    return [p["Name"] for page in pages for p in page["Parameters"]]


@pytest.fixture(scope="module")
def root(ssm):
    """A unique top folder with a few parameters, all deleted at the end."""
    top = f"console-e2e-{uuid.uuid4().hex[:10]}"
    path = f"/{top}"
    ssm.put_parameter(Name=f"{path}/app/db/url", Type="String", Value="postgres://db:5432/app", Description="the database")
    ssm.put_parameter(Name=f"{path}/app/db/password", Type="SecureString", Value="pw-" + uuid.uuid4().hex)
    ssm.put_parameter(Name=f"{path}/app/name", Type="String", Value="console-app")
    try:
        yield path
    finally:
        names = _under(ssm, path)
        for i in range(0, len(names), 10):
            ssm.delete_parameters(Names=names[i : i + 10])
        assert _under(ssm, path) == []


def _delete_user(name, key_id):
    iam = iam_client()
    iam.delete_access_key(UserName=name, AccessKeyId=key_id)
    iam.delete_user_policy(UserName=name, PolicyName="policy")
    iam.delete_user(UserName=name)


def _open_folder(page, label):
    """Opens a folder of the tree with the keyboard (its summary, Enter)."""
    summary = page.locator("summary", has_text=re.compile(r"^\s*" + re.escape(label) + r"/")).first
    summary.focus()
    page.keyboard.press("Enter")
    expect(summary.locator("xpath=..")).to_have_attribute("open", "", timeout=WAIT_MS)


def test_browse_the_tree_edit_a_value_and_see_its_history(ssm, root, page):
    name = f"{root}/app/db/url"
    sign_in(page, *admin_key(), route="#/parameters")
    expect(page.get_by_role("heading", name="Parameters", exact=True)).to_be_visible(timeout=WAIT_MS)
    tree = page.get_by_role("navigation", name="Parameter hierarchy")
    expect(tree).to_be_visible(timeout=WAIT_MS)
    # The folders are closed until opened with the keyboard; closing hides again.
    url_link = page.get_by_role("link", name="url", exact=True)
    expect(url_link).to_have_count(0)
    _open_folder(page, root[1:])
    _open_folder(page, "app")
    expect(page.get_by_role("link", name="name", exact=True)).to_be_visible()
    _open_folder(page, "db")
    expect(url_link).to_be_visible()
    expect(page.get_by_role("link", name="password", exact=True)).to_be_visible()
    screenshot(page, "parameters-tree")
    assert_accessible(page)
    db = page.locator("summary", has_text=re.compile(r"^\s*db/")).first
    db.focus()
    page.keyboard.press("Enter")
    expect(url_link).to_have_count(0)
    page.keyboard.press("Enter")
    expect(url_link).to_be_visible()

    # The name filter opens the folders leading to what it matches.
    page.get_by_label("Filter by name").fill(f"{root}/app/na")
    expect(page.get_by_role("link", name="name", exact=True)).to_be_visible(timeout=WAIT_MS)
    expect(url_link).to_have_count(0)
    page.get_by_label("Filter by name").fill(f"{root}/app/db/u")
    url_link.click()

    expect(page.get_by_role("heading", level=1)).to_contain_text(name, timeout=WAIT_MS)
    expect(page.locator("[data-value=plain]")).to_have_text("postgres://db:5432/app", timeout=WAIT_MS)
    expect(page.locator("[data-fact=type]")).to_have_text("String")
    expect(page.locator("[data-fact=version]")).to_have_text("1")
    expect(page.locator("dl.facts")).to_contain_text("the database")
    screenshot(page, "parameters-string")
    assert_accessible(page)

    page.get_by_role("link", name="Edit (new version)").click()
    value = page.get_by_label("Value", exact=True)
    expect(value).to_have_value("postgres://db:5432/app", timeout=WAIT_MS)
    expect(page.get_by_label("Overwrite the current value (a new version)")).to_be_checked()
    value.fill("postgres://db2:5432/app")
    screenshot(page, "parameters-edit")
    assert_accessible(page)
    page.get_by_role("button", name="Save new version").click()

    expect(page.locator("[data-fact=version]")).to_have_text("2", timeout=WAIT_MS)
    expect(page.locator("[data-value=plain]")).to_have_text("postgres://db2:5432/app")
    history = page.get_by_role("table", name=f"Versions of {name}")
    expect(history.locator("tbody tr")).to_have_count(2, timeout=WAIT_MS)
    expect(history.locator("tbody tr").first).to_contain_text("postgres://db2:5432/app")
    expect(history.locator("tbody tr").nth(1)).to_contain_text("postgres://db:5432/app")
    got = ssm.get_parameter(Name=name)["Parameter"]
    assert got["Version"] == 2 and got["Value"] == "postgres://db2:5432/app"

    # A label on version 1, seen in the history and through the API.
    page.get_by_label("Version", exact=True).select_option("1")
    page.get_by_label("Label", exact=True).fill("previous")
    page.get_by_role("button", name="Add label").click()
    expect(page.get_by_role("status").filter(has_text="previous")).to_be_visible(timeout=WAIT_MS)
    expect(history.locator("tbody tr").nth(1)).to_contain_text("previous", timeout=WAIT_MS)
    assert ssm.get_parameter(Name=f"{name}:previous")["Parameter"]["Value"] == "postgres://db:5432/app"
    screenshot(page, "parameters-history")
    assert_accessible(page)


def test_delete_a_parameter_after_a_confirm_step(ssm, root, page):
    name = f"{root}/app/name"
    sign_in(page, *admin_key(), route=f"#/parameters/view?name={name}")
    expect(page.locator("[data-value=plain]")).to_have_text("console-app", timeout=WAIT_MS)
    page.get_by_role("button", name="Delete parameter…").click()
    confirm = page.get_by_role("group", name="Confirm deletion")
    expect(confirm).to_contain_text(name)
    # Cancel keeps it.
    confirm.get_by_role("button", name="Cancel").click()
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "console-app"
    page.get_by_role("button", name="Delete parameter…").click()
    screenshot(page, "parameters-delete-confirm")
    page.get_by_role("button", name="Yes, delete this parameter").click()
    expect(page.get_by_role("heading", name="Parameters", exact=True)).to_be_visible(timeout=WAIT_MS)
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name=name)
    assert e.value.response["Error"]["Code"] == "ParameterNotFound"


def test_a_secure_string_is_hidden_until_asked(ssm, root, page):
    name = f"{root}/app/db/password"
    secret = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    sign_in(page, *admin_key(), route=f"#/parameters/view?name={name}")
    expect(page.locator("[data-fact=type]")).to_have_text("SecureString", timeout=WAIT_MS)
    expect(page.locator("[data-value=hidden]")).to_be_visible()
    history = page.get_by_role("table", name=f"Versions of {name}")
    expect(history).to_contain_text("hidden", timeout=WAIT_MS)
    assert secret not in page.content()
    screenshot(page, "parameters-secure-hidden")
    assert_accessible(page)
    page.get_by_role("button", name="Show value").click()
    expect(page.locator("[data-value=decrypted]")).to_have_text(secret, timeout=WAIT_MS)
    expect(history).to_contain_text(secret, timeout=WAIT_MS)
    screenshot(page, "parameters-secure-shown")
    page.get_by_role("button", name="Hide value").click()
    expect(page.locator("[data-value=hidden]")).to_be_visible()
    expect(page.get_by_text(secret)).to_have_count(0, timeout=WAIT_MS)


def test_a_key_without_decrypt_is_refused_visibly(ssm, root, page):
    name = f"{root}/app/db/password"
    secret = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    user, key_id, key_secret = restricted_key(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["ssm:DescribeParameters", "ssm:GetParameter*"], "Resource": "*"},
                {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"},
            ],
        },
        "console-params",
    )
    try:
        sign_in(page, key_id, key_secret, admin_key()[2], route=f"#/parameters/view?name={name}")
        expect(page.locator("[data-fact=type]")).to_have_text("SecureString", timeout=WAIT_MS)
        page.get_by_role("button", name="Show value").click()
        alert = page.get_by_role("alert").filter(has_text="could not be decrypted")
        expect(alert).to_contain_text("AccessDeniedException", timeout=WAIT_MS)
        expect(alert).to_contain_text("kms:Decrypt")
        expect(page.locator("[data-value=hidden]")).to_be_visible()
        assert secret not in page.content()
        screenshot(page, "parameters-decrypt-refused")
        assert_accessible(page)
    finally:
        _delete_user(user, key_id)


def test_the_form_checks_names_before_sending(ssm, root, page):
    reserved = f"aws-console-{uuid.uuid4().hex[:8]}"
    sign_in(page, *admin_key(), route="#/parameters/new")
    expect(page.get_by_role("heading", name="Create parameter")).to_be_visible(timeout=WAIT_MS)
    page.get_by_label("Name", exact=True).fill(reserved)
    page.get_by_label("Value", exact=True).fill("x")
    page.get_by_role("button", name="Create parameter").click()
    problems = page.locator("#param-problems")
    expect(problems).to_contain_text("Not sent", timeout=WAIT_MS)
    expect(problems).to_contain_text('cannot begin with "aws"')
    # The form refused it: the API was not asked (its refusal would name a code).
    expect(page.get_by_role("alert").filter(has_text="ValidationException")).to_have_count(0)
    expect(page.get_by_role("heading", name="Create parameter")).to_be_visible()
    screenshot(page, "parameters-name-refused")
    assert_accessible(page)
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name=reserved)
    assert e.value.response["Error"]["Code"] == "ParameterNotFound"

    # Too many levels, and a value over the Standard tier's 4096 characters.
    page.get_by_label("Name", exact=True).fill(root + "".join(f"/l{i}" for i in range(15)))
    page.get_by_label("Value", exact=True).fill("x" * 4097)
    page.get_by_role("button", name="Create parameter").click()
    expect(problems).to_contain_text("at most 15 levels", timeout=WAIT_MS)
    expect(problems).to_contain_text("4096")

    # The full ARN is what counts against 1011 characters, in the console as
    # in the API: one character over is refused before sending, and the API
    # refuses it too; the longest that fits is sent and accepted.
    arn_prefix = len(f"arn:aws:ssm:{ssm.meta.region_name}:") + 12 + len(":parameter/")
    longest = f"{root}/" + "a" * (1011 - arn_prefix - len(root))
    over = longest + "a"
    page.get_by_label("Name", exact=True).fill(over)
    page.get_by_label("Value", exact=True).fill("x")
    page.get_by_role("button", name="Create parameter").click()
    expect(problems).to_contain_text("would have 1012. Shorten the name by 1.", timeout=WAIT_MS)
    with pytest.raises(ClientError) as e:
        ssm.put_parameter(Name=over, Type="String", Value="x")
    assert e.value.response["Error"]["Code"] == "ValidationException"
    page.get_by_label("Name", exact=True).fill(longest)
    page.get_by_role("button", name="Create parameter").click()
    expect(page.locator("[data-fact=type]")).to_have_text("String", timeout=WAIT_MS)
    made = ssm.get_parameter(Name=longest)["Parameter"]
    assert made["Value"] == "x" and len(made["ARN"]) == 1011

    page.goto(page.url.split("#")[0] + "#/parameters/new")
    # A valid one is sent, and the API's own refusal (it exists) is shown.
    created = f"{root}/app/created"
    page.get_by_label("Name", exact=True).fill(created)
    page.get_by_label("Type", exact=True).select_option("StringList")
    page.get_by_label("Value", exact=True).fill("a,b,c")
    page.get_by_label("Description").fill("made in the console")
    page.get_by_role("button", name="Create parameter").click()
    expect(page.locator("[data-fact=type]")).to_have_text("StringList", timeout=WAIT_MS)
    got = ssm.get_parameter(Name=created)["Parameter"]
    assert got["Type"] == "StringList" and got["Value"] == "a,b,c" and got["Version"] == 1

    page.goto(page.url.split("#")[0] + "#/parameters/new")
    page.get_by_label("Name", exact=True).fill(created)
    page.get_by_label("Value", exact=True).fill("d")
    page.get_by_role("button", name="Create parameter").click()
    alert = page.get_by_role("alert").filter(has_text="ParameterAlreadyExists")
    expect(alert).to_be_visible(timeout=WAIT_MS)
    screenshot(page, "parameters-already-exists")
    assert ssm.get_parameter(Name=created)["Parameter"]["Value"] == "a,b,c"


COMMAND_DOC = {
    "schemaVersion": "2.2",
    "description": "Says hello from the console test.",
    "parameters": {"who": {"type": "String", "default": "world"}},
    "mainSteps": [{"action": "aws:runShellScript", "name": "hello", "inputs": {"runCommand": ["echo hello {{ who }}"]}}],
}


def test_create_a_document_list_it_and_read_it_as_yaml(ssm, page):
    name = f"console-e2e-doc-{uuid.uuid4().hex[:10]}"
    try:
        sign_in(page, *admin_key(), route="#/documents/new")
        expect(page.get_by_role("heading", name="Create document")).to_be_visible(timeout=WAIT_MS)
        page.get_by_label("Name", exact=True).fill(name)
        page.get_by_label("Type", exact=True).select_option("Command")
        page.get_by_label("Format", exact=True).select_option("JSON")
        # Content the API refuses first: its refusal is shown, nothing is made.
        page.get_by_label("Content", exact=True).fill("{ not json")
        page.get_by_role("button", name="Create document").click()
        expect(page.get_by_role("alert").filter(has_text="InvalidDocumentContent")).to_be_visible(timeout=WAIT_MS)
        screenshot(page, "documents-invalid-content")
        assert_accessible(page)
        page.get_by_label("Content", exact=True).fill(json.dumps(COMMAND_DOC, indent=2))
        page.get_by_role("button", name="Create document").click()

        expect(page.get_by_role("heading", level=1)).to_contain_text(name, timeout=WAIT_MS)
        content = page.locator("pre.output")
        expect(content).to_have_attribute("data-format", "YAML", timeout=WAIT_MS)
        expect(content).to_contain_text("schemaVersion: '2.2'", timeout=WAIT_MS)
        expect(content).to_contain_text("- echo hello {{ who }}")
        expect(page.locator("dl.facts")).to_contain_text("Command")
        run = page.get_by_role("link", name="Run this document")
        expect(run).to_have_attribute("href", f"#/run?document={name}")
        screenshot(page, "documents-document")
        assert_accessible(page)
        page.get_by_label("Content format").select_option("JSON")
        expect(content).to_have_attribute("data-format", "JSON", timeout=WAIT_MS)
        expect(content).to_contain_text('"schemaVersion"', timeout=WAIT_MS)

        # A second version: the default (1) is shown until another is picked.
        second = dict(COMMAND_DOC, description="The second version.")
        ssm.update_document(Name=name, Content=json.dumps(second), DocumentFormat="JSON", DocumentVersion="$LATEST")
        page.reload()
        versions = page.get_by_role("table", name=f"Versions of {name}")
        expect(versions.locator("tbody tr")).to_have_count(2, timeout=WAIT_MS)
        expect(content).to_contain_text("Says hello from the console test.", timeout=WAIT_MS)
        versions.get_by_role("button", name="Show version 2").click()
        expect(content).to_contain_text("The second version.", timeout=WAIT_MS)
        expect(page.get_by_role("heading", name="Content (version 2)")).to_be_visible()
        versions.get_by_role("button", name="Show version 1").click()
        expect(content).to_contain_text("Says hello from the console test.", timeout=WAIT_MS)
        screenshot(page, "documents-versions")

        page.get_by_role("link", name="← All documents").click()
        expect(page.get_by_role("heading", name="Documents", exact=True)).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_label("Owner")).to_have_value("Self")
        expect(page.get_by_role("link", name=name)).to_be_visible(timeout=WAIT_MS)
        # Amazon's documents do not include it; its own are there.
        page.get_by_label("Owner").select_option("Amazon")
        expect(page.get_by_role("link", name="AWS-RunShellScript", exact=True)).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_role("link", name=name)).to_have_count(0)
        page.get_by_label("Owner").select_option("Self")
        page.get_by_label("Document type").select_option("Command")
        page.get_by_label("Name contains").fill(name)
        expect(page.get_by_role("link", name=name)).to_be_visible(timeout=WAIT_MS)
        expect(page.locator("#doc-shown")).to_contain_text("1 of")
        screenshot(page, "documents-list")
        assert_accessible(page)
    finally:
        try:
            ssm.delete_document(Name=name)
        except ClientError as e:
            assert e.response["Error"]["Code"] == "InvalidDocument"
