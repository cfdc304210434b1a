"""The web console's automation, compliance and maintenance window pages, in
headless Chromium against the local stack, with real agents: an approver
approves a waiting runbook from its execution page and sees its steps run,
a bystander's Approve is refused, the executions list filters by status,
a node's non-compliance is counted by severity, and a maintenance window is
listed with its next execution. Screenshots go to test-output/console/."""

from __future__ import annotations

import uuid
from datetime import datetime

import pytest
from playwright.sync_api import expect

from console import WAIT_MS, admin_key, assert_accessible, screenshot, sign_in
from fleet import key_client, online_fleet, restricted_key, wait_automation_final, wait_automation_status

APPROVAL_RUNBOOK = "Steward-RunCommandAfterApproval"

# What an approver needs, and no more: read the execution, signal it.
SIGNALLER = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["ssm:SendAutomationSignal", "ssm:GetAutomationExecution"],
                   "Resource": "*"}],
}

# What a runbook's run step takes once approved.
RUN_MS = 120_000


@pytest.fixture(scope="module")
def fleet(stack, tmp_path_factory):
    with online_fleet(tmp_path_factory.mktemp("console-automation"), console_automation=["node"]) as f:
        yield f


@pytest.fixture(scope="module")
def approver(stack):
    """An approver's user name, key id and secret (a user allowed only to
    read executions and signal them)."""
    return restricted_key(SIGNALLER, "console-approver")


def start_approval(fleet, approver_name, commands, message):
    """Starts the approval runbook naming `approver_name`, with boto3 as the
    admin; returns the execution id once it waits at its approve step."""
    eid = fleet.ssm.start_automation_execution(
        DocumentName=APPROVAL_RUNBOOK,
        Parameters={"Approvers": [approver_name], "InstanceIds": [fleet.agents["node"].instance_id()],
                    "Commands": commands, "Message": [message]},
    )["AutomationExecutionId"]
    waiting = wait_automation_status(fleet.ssm, eid, "Waiting")
    assert waiting["CurrentStepName"] == "approve" and waiting["CurrentAction"] == "aws:approve"
    return eid


def reject_if_waiting(approver_ssm, ssm, eid):
    """Leaves nothing waiting: rejects `eid` as its approver if it still waits."""
    status = ssm.get_automation_execution(AutomationExecutionId=eid)["AutomationExecution"]["AutomationExecutionStatus"]
    if status == "Waiting":
        approver_ssm.send_automation_signal(AutomationExecutionId=eid, SignalType="Reject",
                                            Payload={"Comment": ["console test cleanup"]})
        wait_automation_final(ssm, eid)


def as_console_shows(value: str) -> str:
    """An ISO time as the console's formatDate shows it."""
    t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t.strftime("%Y-%m-%d %H:%M:%S UTC")


def test_an_approver_approves_a_waiting_runbook_and_sees_its_steps_run(fleet, page, approver, tmp_path):
    name, key_id, secret = approver
    marker = tmp_path / "approved"
    message = f"Write the console marker {uuid.uuid4().hex[:8]}?"
    eid = start_approval(fleet, name, [f"echo approved > {marker}"], message)
    try:
        sign_in(page, key_id, secret, admin_key()[2], route=f"#/automation/{eid}")
        expect(page.get_by_role("heading", level=1)).to_contain_text(eid, timeout=WAIT_MS)
        expect(page.locator("#execution-status")).to_have_text("Waiting", timeout=WAIT_MS)
        approval = page.get_by_role("region", name="Waiting for approval: step approve")
        expect(approval).to_be_visible(timeout=WAIT_MS)
        expect(approval).to_contain_text(message)
        expect(approval).to_contain_text(name)
        waiting_step = page.locator("li[data-step=approve]")
        expect(waiting_step).to_contain_text("aws:approve")
        expect(waiting_step).to_contain_text("Waiting")
        screenshot(page, "automation-waiting-for-approval")
        assert_accessible(page)

        page.get_by_label("Comment (optional)").fill("looks good from the console")
        approval.get_by_role("button", name="Approve").click()
        expect(page.locator("#execution-status")).to_have_text("Success", timeout=RUN_MS)
        # The timeline: the approve step's outputs, then the run step.
        approve_step = page.locator("li[data-step=approve]")
        expect(approve_step).to_contain_text("Success")
        expect(approve_step).to_contain_text("ApprovalStatus")
        expect(approve_step).to_contain_text("Approved")
        expect(approve_step).to_contain_text("looks good from the console")
        run_step = page.locator("li[data-step=run]")
        expect(run_step).to_contain_text("aws:runCommand")
        expect(run_step).to_contain_text("Success")
        expect(run_step).to_contain_text("CommandId")
        expect(page.get_by_role("region", name="Waiting for approval: step approve")).to_have_count(0)
        expect(page.get_by_role("button", name="Stop execution")).to_have_count(0)
        screenshot(page, "automation-approved-and-run")
        assert_accessible(page)
    finally:
        reject_if_waiting(key_client("ssm", key_id, secret), fleet.ssm, eid)

    done = wait_automation_final(fleet.ssm, eid)
    assert done["AutomationExecutionStatus"] == "Success"
    steps = {s["StepName"]: s for s in done["StepExecutions"]}
    assert steps["approve"]["Outputs"]["ApprovalStatus"] == ["Approved"]
    assert steps["run"]["Outputs"]["CommandId"][0] in page.locator("li[data-step=run]").inner_text()
    assert marker.read_text() == "approved\n"


def test_a_bystanders_approve_is_refused_and_the_execution_still_waits(fleet, page, approver, tmp_path):
    name, key_id, secret = approver
    _, other_id, other_secret = restricted_key(SIGNALLER, "console-bystander")
    marker = tmp_path / "never"
    eid = start_approval(fleet, name, [f"echo ran > {marker}"], "Only the approver may say yes.")
    try:
        sign_in(page, other_id, other_secret, admin_key()[2], route=f"#/automation/{eid}")
        approval = page.get_by_role("region", name="Waiting for approval: step approve")
        expect(approval).to_contain_text("Only the approver may say yes.", timeout=WAIT_MS)
        approval.get_by_role("button", name="Approve").click()
        alert = approval.get_by_role("alert")
        expect(alert).to_contain_text("InvalidAutomationSignalException", timeout=WAIT_MS)
        expect(alert).to_contain_text(name)
        expect(alert).to_contain_text("Sign in with an approver's key")
        expect(page.locator("#execution-status")).to_have_text("Waiting")
        screenshot(page, "automation-bystander-refused")
        assert_accessible(page)
        status = fleet.ssm.get_automation_execution(AutomationExecutionId=eid)["AutomationExecution"]
        assert status["AutomationExecutionStatus"] == "Waiting"

        # Its policy does not list executions either: the list says so.
        page.get_by_role("link", name="All executions").click()
        alert = page.get_by_role("alert")
        expect(alert).to_contain_text("AccessDeniedException", timeout=WAIT_MS)
        expect(alert).to_contain_text("DescribeAutomationExecutions")
        assert_accessible(page)
    finally:
        reject_if_waiting(key_client("ssm", key_id, secret), fleet.ssm, eid)
    done = wait_automation_final(fleet.ssm, eid)
    assert done["AutomationExecutionStatus"] == "Failed"
    assert not marker.exists()


def test_the_executions_list_filters_by_status(fleet, page, approver, tmp_path):
    name, key_id, secret = approver
    approver_ssm = key_client("ssm", key_id, secret)
    waiting = start_approval(fleet, name, [f"echo x > {tmp_path / 'w'}"], "Still waiting.")
    rejected = start_approval(fleet, name, [f"echo x > {tmp_path / 'r'}"], "To be rejected.")
    try:
        approver_ssm.send_automation_signal(AutomationExecutionId=rejected, SignalType="Reject")
        assert wait_automation_final(fleet.ssm, rejected)["AutomationExecutionStatus"] == "Failed"

        sign_in(page, *admin_key(), route="#/automation")
        expect(page.get_by_role("heading", name="Automation", exact=True)).to_be_visible(timeout=WAIT_MS)
        page.get_by_label("Document name starts with").fill("Steward-RunCommandAfter")
        page.get_by_role("button", name="Apply filters").click()
        expect(page.get_by_role("link", name=waiting)).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_role("link", name=rejected)).to_be_visible(timeout=WAIT_MS)
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name=waiting))
        expect(row).to_contain_text(APPROVAL_RUNBOOK)
        expect(row.locator(".status-Waiting")).to_have_text("Waiting")
        screenshot(page, "automation-list")
        assert_accessible(page)

        page.get_by_label("Status").select_option("Waiting")
        expect(page.get_by_role("link", name=waiting)).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_role("link", name=rejected)).to_have_count(0, timeout=WAIT_MS)
        screenshot(page, "automation-list-waiting")

        page.get_by_label("Status").select_option("Failed")
        expect(page.get_by_role("link", name=rejected)).to_be_visible(timeout=WAIT_MS)
        expect(page.get_by_role("link", name=waiting)).to_have_count(0, timeout=WAIT_MS)

        # A link opens the execution.
        page.get_by_role("link", name=rejected).click()
        expect(page.locator("#execution-status")).to_have_text("Failed", timeout=WAIT_MS)
        expect(page.locator("li[data-step=approve]")).to_contain_text("Failed")
        expect(page.locator("li[data-step=run]")).to_have_count(0)
        assert_accessible(page)
    finally:
        reject_if_waiting(approver_ssm, fleet.ssm, waiting)


def test_compliance_counts_a_non_compliant_node_by_severity(fleet, page):
    node = fleet.agents["node"].instance_id()
    ctype = f"Custom:console_{uuid.uuid4().hex[:10]}"
    fleet.ssm.put_compliance_items(
        ResourceId=node, ResourceType="ManagedInstance", ComplianceType=ctype,
        ExecutionSummary={"ExecutionTime": datetime.now().astimezone(), "ExecutionType": "Command"},
        Items=[{"Id": "disk", "Title": "Disk is nearly full", "Severity": "HIGH", "Status": "NON_COMPLIANT"},
               {"Id": "ntp", "Title": "Clock is synchronised", "Severity": "LOW", "Status": "COMPLIANT"}],
    )
    try:
        sign_in(page, *admin_key(), route="#/compliance")
        expect(page.get_by_role("heading", name="Compliance", exact=True)).to_be_visible(timeout=WAIT_MS)
        row = page.locator(f'tr[data-type="{ctype}"]')
        expect(row.locator("td[data-col=HIGH]")).to_have_text("1", timeout=WAIT_MS)
        expect(row.locator("td[data-col=non-compliant]")).to_have_text("1")
        expect(row.locator("td[data-col=compliant]")).to_have_text("0")
        expect(row.locator("td[data-col=CRITICAL]")).to_have_text("0")

        page.get_by_label("Compliance type").select_option(ctype)
        expect(page.locator("tr[data-type]")).to_have_count(1, timeout=WAIT_MS)
        expect(page.locator("[data-count=HIGH]")).to_have_text("1", timeout=WAIT_MS)
        link = page.get_by_role("link", name=node)
        expect(link).to_be_visible(timeout=WAIT_MS)
        expect(link).to_have_attribute("href", f"#/nodes/{node}")
        node_row = page.get_by_role("row").filter(has=link)
        expect(node_row).to_contain_text("HIGH")
        expect(page.locator("#compliance-shown")).to_have_text("1 non-compliant summaries")
        screenshot(page, "compliance")
        assert_accessible(page)

        # Its overall severity is HIGH: a CRITICAL filter leaves it out.
        page.get_by_label("Overall severity of non-compliant nodes").select_option("CRITICAL")
        expect(page.locator("#compliance-shown")).to_have_text("0 non-compliant summaries", timeout=WAIT_MS)
        expect(page.get_by_role("link", name=node)).to_have_count(0)
    finally:
        # Its items cleared: the type has nothing non-compliant any more.
        fleet.ssm.put_compliance_items(
            ResourceId=node, ResourceType="ManagedInstance", ComplianceType=ctype,
            ExecutionSummary={"ExecutionTime": datetime.now().astimezone()}, Items=[], UploadType="COMPLETE",
        )


def test_a_maintenance_window_is_listed_with_its_next_execution(fleet, page):
    name = f"console-{uuid.uuid4().hex[:10]}"
    wid = fleet.ssm.create_maintenance_window(
        Name=name, Description="Made by the console's test", Schedule="cron(0 3 ? * * *)",
        Duration=2, Cutoff=1, AllowUnassociatedTargets=False,
    )["WindowId"]
    try:
        [listed] = fleet.ssm.describe_maintenance_windows(
            Filters=[{"Key": "Name", "Values": [name]}])["WindowIdentities"]
        upcoming = fleet.ssm.describe_maintenance_window_schedule(WindowId=wid, MaxResults=5)[
            "ScheduledWindowExecutions"]
        assert upcoming

        sign_in(page, *admin_key(), route="#/windows")
        expect(page.get_by_role("heading", name="Maintenance windows")).to_be_visible(timeout=WAIT_MS)
        page.get_by_label("Search").fill(name)
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name=name))
        expect(row).to_contain_text(wid, timeout=WAIT_MS)
        expect(row).to_contain_text("cron(0 3 ? * * *)")
        expect(row).to_contain_text("Yes")
        expect(page.locator(f'[data-next="{wid}"]')).to_have_text(as_console_shows(listed["NextExecutionTime"]))
        screenshot(page, "windows")
        assert_accessible(page)

        page.get_by_role("link", name=name).click()
        panel = page.get_by_role("region", name=f"{name} {wid}")
        expect(panel).to_be_visible(timeout=WAIT_MS)
        times = panel.get_by_role("list", name="Next executions").get_by_role("listitem")
        expect(times).to_have_count(len(upcoming), timeout=WAIT_MS)
        expect(times.first).to_have_text(as_console_shows(upcoming[0]["ExecutionTime"]))
        expect(panel).to_contain_text("This window has not run yet.")
        screenshot(page, "windows-schedule")
        assert_accessible(page)
    finally:
        fleet.ssm.delete_maintenance_window(WindowId=wid)


def test_a_running_execution_is_stopped_from_its_page(fleet, page, approver, tmp_path):
    name, key_id, secret = approver
    marker = tmp_path / "never"
    eid = start_approval(fleet, name, [f"echo ran > {marker}"], "Stopped before anyone decides.")
    try:
        sign_in(page, *admin_key(), route=f"#/automation/{eid}")
        expect(page.locator("#execution-status")).to_have_text("Waiting", timeout=WAIT_MS)
        page.get_by_role("button", name="Stop execution").click()
        expect(page.locator("#execution-status")).to_have_text("Cancelled", timeout=WAIT_MS)
        expect(page.get_by_role("button", name="Stop execution")).to_have_count(0)
        expect(page.get_by_role("region", name="Waiting for approval: step approve")).to_have_count(0)
        expect(page.locator("li[data-step=approve]")).to_contain_text("Cancelled")
        screenshot(page, "automation-stopped")
        assert_accessible(page)
    finally:
        reject_if_waiting(key_client("ssm", key_id, secret), fleet.ssm, eid)
    assert wait_automation_final(fleet.ssm, eid)["AutomationExecutionStatus"] == "Cancelled"
    assert not marker.exists()


def test_an_unknown_execution_says_so(stack, page):
    missing = str(uuid.uuid4())
    sign_in(page, *admin_key(), route=f"#/automation/{missing}")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("AutomationExecutionNotFoundException", timeout=WAIT_MS)
    expect(alert).to_contain_text("Pick one from the Automation page")
    expect(page.get_by_role("link", name="All executions")).to_be_visible()
    screenshot(page, "automation-not-found")
    assert_accessible(page)
