"""Patch Manager on a real Debian root (tests/debian_node.py), through boto3
and the AWS CLI: a baseline registered for the node's patch group (its
PatchGroup tag), AWS-RunPatchBaseline Scan reporting each fixture update
with its classification, Install upgrading the approved ones for real (dpkg
in the root shows it) and leaving the rejected one, InstalledPendingReboot
under NoReboot until the node reboots and scans again, the node's patch
state and patches read back with SSM's operations, its Patch compliance
turning COMPLIANT with the state-change events on the bus, and an Install
with RebootIfNeeded that reboots the node and finishes after the reboot.

The reboot itself: the root's reboot/shutdown/systemctl are recorders
(infra/debian-root.sh), so the test sees that the agent asked for a reboot,
then reboots the node by restarting its namespaces on the same disk (/run
is a new tmpfs, so /var/run/reboot-required is gone, as after a real boot).
"""

import uuid

import pytest

from debian_node import build_fixture_repo, started_node
from fleet import aws, drain, event_queue, invocations, listed, ssm_client, wait_command_final, wait_for

SECURITY = "steward-fixture-security"
REJECTED = "steward-fixture-rejected"
REBOOT = "steward-fixture-reboot"


@pytest.fixture
def patch_group():
    """Makes a patch group of the test's own, with a baseline that approves
    every update at once (security or not) except the rejected fixture;
    `action` is the baseline's RejectedPatchesAction. Removed afterwards."""
    ssm = ssm_client()
    made = []

    def make(action="ALLOW_AS_DEPENDENCY"):
        group = f"e2e-patching-{uuid.uuid4().hex[:8]}"
        baseline = ssm.create_patch_baseline(
            Name=f"e2e-debian-{uuid.uuid4().hex[:8]}",
            OperatingSystem="DEBIAN",
            ApprovalRules={"PatchRules": [{
                "PatchFilterGroup": {"PatchFilters": [
                    {"Key": "PRIORITY", "Values": ["Required", "Important", "Standard", "Optional", "Extra"]},
                ]},
                "ComplianceLevel": "HIGH",
                "ApproveAfterDays": 0,
                "EnableNonSecurity": True,
            }]},
            RejectedPatches=[REJECTED],
            RejectedPatchesAction=action,
        )["BaselineId"]
        ssm.register_patch_baseline_for_patch_group(BaselineId=baseline, PatchGroup=group)
        made.append((group, baseline))
        return group, baseline

    yield make
    for group, baseline in made:
        ssm.deregister_patch_baseline_for_patch_group(BaselineId=baseline, PatchGroup=group)
        ssm.delete_patch_baseline(BaselineId=baseline)


def run_patch_baseline(node, operation, reboot="NoReboot", timeout=600):
    ssm = ssm_client()
    cmd = ssm.send_command(
        DocumentName="AWS-RunPatchBaseline",
        InstanceIds=[node.instance_id()],
        Parameters={"Operation": [operation], "RebootOption": [reboot]},
        TimeoutSeconds=timeout,
    )["Command"]
    wait_command_final(ssm, cmd["CommandId"], timeout=timeout)
    [inv] = invocations(ssm, cmd["CommandId"])
    return cmd["CommandId"], inv


def patch_state(node, snapshot):
    """The node's InstancePatchState once its report of `snapshot` is in."""
    ssm = ssm_client()

    def probe():
        states = ssm.describe_instance_patch_states(InstanceIds=[node.instance_id()])["InstancePatchStates"]
        return states[0] if states and states[0]["SnapshotId"] == snapshot else None

    return wait_for(f"patch state of {snapshot}", probe, timeout=60)


def patches(node, **filters):
    ssm = ssm_client()
    out = []
    for page in ssm.get_paginator("describe_instance_patches").paginate(
        InstanceId=node.instance_id(),
        Filters=[{"Key": k, "Values": v} for k, v in filters.items()],
        PaginationConfig={"PageSize": 10},
    ):
        out.extend(page["Patches"])
    return {p["KBId"]: p for p in out}


def patch_compliance(node):
    """The node's Patch compliance summary (ListResourceComplianceSummaries)."""
    found = listed(ssm_client(), "list_resource_compliance_summaries", "ResourceComplianceSummaryItems",
                   Filters=[{"Key": "ComplianceType", "Values": ["Patch"], "Type": "EQUAL"},
                            {"Key": "ResourceId", "Values": [node.instance_id()], "Type": "EQUAL"}])
    return found[0] if found else None


def compliance_after(node, snapshot):
    """The Patch compliance summary once it is the one of `snapshot`."""
    def probe():
        c = patch_compliance(node)
        return c if c and c["ExecutionSummary"].get("ExecutionId") == snapshot else None

    return wait_for(f"patch compliance of {snapshot}", probe, timeout=60)


def test_scan_then_install_on_a_real_debian_root(tmp_path, patch_group):
    group, baseline = patch_group()
    node = started_node(tmp_path, "patching", tags=[("PatchGroup", group)])
    sqs, events = event_queue({
        "detail-type": ["Configuration Compliance State Change"],
        "detail": {"resource-id": [node.instance_id()], "compliance-type": ["Patch"]},
    })
    try:
        repo = build_fixture_repo(node)
        installed = {name: p["installed"] for name, p in repo.packages.items()}

        # Scan: the approved updates are Missing, each with its classification;
        # the rejected one is not asked for. Nothing is installed.
        command, inv = run_patch_baseline(node, "Scan")
        assert inv["Status"] == "Success", inv
        state = patch_state(node, command)
        assert state["BaselineId"] == baseline
        assert state["PatchGroup"] == group
        assert state["Operation"] == "Scan"
        assert state["MissingCount"] == 2, state
        assert state["FailedCount"] == 0
        missing = patches(node, State=["Missing"])
        assert set(missing) == {SECURITY, REBOOT}, missing
        assert missing[SECURITY]["Classification"] == "Security"
        assert missing[REBOOT]["Classification"] != "Security"
        assert missing[SECURITY]["Severity"].lower() == repo.packages[SECURITY]["priority"].lower()
        assert set(patches(node, Classification=["Security"], State=["Missing"])) == {SECURITY}
        # Rejected, and allowed only as a dependency: its installed version is
        # not governed by the baseline, and its update is not asked for.
        assert patches(node, KBId=[REJECTED])[REJECTED]["State"] == "InstalledOther"
        assert {n: node.dpkg_version(n) for n in installed} == installed
        # The whole package list is reported, not only the updates.
        assert state["InstalledOtherCount"] + state["InstalledCount"] > 50, state
        # Patch compliance: non-compliant, at the rule's level, the missing
        # updates the non-compliant items.
        c = compliance_after(node, command)
        assert c["Status"] == "NON_COMPLIANT", c
        assert c["OverallSeverity"] == "HIGH", c
        items = listed(ssm_client(), "list_compliance_items", "ComplianceItems",
                       ResourceIds=[node.instance_id()], ResourceTypes=["ManagedInstance"],
                       Filters=[{"Key": "ComplianceType", "Values": ["Patch"], "Type": "EQUAL"},
                                {"Key": "Status", "Values": ["NON_COMPLIANT"], "Type": "EQUAL"}])
        assert {i["Id"] for i in items} == {SECURITY, REBOOT}, items
        assert {i["Details"]["PatchState"] for i in items} == {"Missing"}
        assert all(i["Details"]["PatchBaselineId"] == baseline for i in items)

        # Install, no reboot: the approved updates are installed for real,
        # the rejected one is not; the one asking for a reboot is pending.
        command, inv = run_patch_baseline(node, "Install", reboot="NoReboot")
        assert inv["Status"] == "Success", inv
        assert node.dpkg_version(SECURITY) == repo.packages[SECURITY]["version"]
        assert node.dpkg_version(REBOOT) == repo.packages[REBOOT]["version"]
        assert node.dpkg_version(REJECTED) == installed[REJECTED]
        assert node.reboot_requests() == []
        state = patch_state(node, command)
        assert state["Operation"] == "Install"
        assert state["MissingCount"] == 0, state
        assert state["InstalledPendingRebootCount"] >= 1, state
        assert "LastNoRebootInstallOperationTime" in state
        assert REBOOT in patches(node, State=["InstalledPendingReboot"])
        # Pending a reboot is still non-compliant (SSM: until a reboot and a scan).
        assert compliance_after(node, command)["Status"] == "NON_COMPLIANT"

        # The AWS CLI reads the same state.
        cli = aws("ssm", "describe-instance-patch-states", "--instance-ids", node.instance_id())
        assert cli["InstancePatchStates"][0]["SnapshotId"] == command

        # After a reboot a scan finds nothing missing or pending.
        node.restart()
        node.wait_online(ssm_client())
        command, inv = run_patch_baseline(node, "Scan")
        assert inv["Status"] == "Success", inv
        state = patch_state(node, command)
        assert state["MissingCount"] == 0 and state["InstalledPendingRebootCount"] == 0, state
        assert state["FailedCount"] == 0
        group_state = ssm_client().describe_patch_group_state(PatchGroup=group)
        assert group_state["Instances"] == 1
        assert group_state["InstancesWithMissingPatches"] == 0
        assert compliance_after(node, command)["Status"] == "COMPLIANT"
        # One event per change of status: non-compliant at the first scan,
        # compliant after the reboot's scan; the Install changed nothing.
        seen = drain(sqs, events, lambda s: len(s) >= 2 and s, timeout=60)
        assert [e["detail"]["compliance-status"] for e in seen] == ["non_compliant", "compliant"], seen
        assert {e["detail"]["patch-baseline-id"] for e in seen} == {baseline}
        extra = sqs.receive_message(QueueUrl=events, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
        assert extra == []
    finally:
        node.stop()


def test_install_with_reboot_if_needed_reboots_and_finishes_after(tmp_path, patch_group):
    # BLOCK: the rejected package may not even stay as it is unnoticed.
    group, _ = patch_group("BLOCK")
    node = started_node(tmp_path, "rebooting", tags=[("PatchGroup", group)])
    try:
        repo = build_fixture_repo(node)
        ssm = ssm_client()
        command = ssm.send_command(
            DocumentName="AWS-RunPatchBaseline",
            InstanceIds=[node.instance_id()],
            Parameters={"Operation": ["Install"], "RebootOption": ["RebootIfNeeded"]},
            TimeoutSeconds=600,
        )["Command"]["CommandId"]
        # The update that needs a reboot gets in, and the agent asks for one.
        wait_for("a reboot request", lambda: node.reboot_requests() or None, timeout=300)
        assert node.dpkg_version(REBOOT) == repo.packages[REBOOT]["version"]
        # The agent reported In Progress before it asked; the report is
        # applied asynchronously, so it may land just after the request.
        wait_for(
            "the invocation In Progress",
            lambda: [i for i in invocations(ssm, command) if i["Status"] == "InProgress"] or None,
            timeout=60,
        )
        # The reboot: the agent starts again and finishes the step.
        node.restart()
        wait_command_final(ssm, command, timeout=300)
        [inv] = invocations(ssm, command)
        assert inv["Status"] == "Success", inv
        state = patch_state(node, f"{command}-rebooted")
        assert state["MissingCount"] == 0 and state["InstalledPendingRebootCount"] == 0, state
        assert patches(node, KBId=[REBOOT])[REBOOT]["State"] == "Installed"
        assert node.dpkg_version(REJECTED) == repo.packages[REJECTED]["installed"]
        # Installed before it was rejected, with BLOCK: InstalledRejected,
        # which keeps the node non-compliant (SSM's rule) until it is removed.
        assert patches(node, KBId=[REJECTED])[REJECTED]["State"] == "InstalledRejected"
        assert state["InstalledRejectedCount"] == 1, state
        assert compliance_after(node, f"{command}-rebooted")["Status"] == "NON_COMPLIANT"
    finally:
        node.stop()
