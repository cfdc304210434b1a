"""Patch Manager on a real Debian root (tests/debian_node.py), through boto3
and the AWS CLI: a baseline registered for the node's patch group (its
PatchGroup tag), AWS-RunPatchBaseline Scan reporting each fixture update
with its classification, Install upgrading the approved ones for real (dpkg
in the root shows it) and leaving the rejected one, InstalledPendingReboot
under NoReboot until the node reboots and scans again, and the node's patch
state and patches read back with SSM's operations.
"""

import uuid

import pytest

from debian_node import build_fixture_repo, started_node
from fleet import aws, invocations, ssm_client, wait_command_final, wait_for

SECURITY = "steward-fixture-security"
REJECTED = "steward-fixture-rejected"
REBOOT = "steward-fixture-reboot"


@pytest.fixture
def patch_group():
    """A patch group of this test's own, with a baseline that approves every
    update at once (security or not) except the rejected fixture, which may
    not come in even as a dependency."""
    ssm = ssm_client()
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
        RejectedPatchesAction="BLOCK",
    )["BaselineId"]
    ssm.register_patch_baseline_for_patch_group(BaselineId=baseline, PatchGroup=group)
    yield group, baseline
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


def test_scan_then_install_on_a_real_debian_root(tmp_path, patch_group):
    group, baseline = patch_group
    node = started_node(tmp_path, "patching", tags=[("PatchGroup", group)])
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
        assert {n: node.dpkg_version(n) for n in installed} == installed
        # The whole package list is reported, not only the updates.
        assert state["InstalledOtherCount"] + state["InstalledCount"] > 50, state

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
    finally:
        node.stop()
