"""Patch baselines end to end, through boto3 and the real AWS CLI: create,
read, update, list and delete; ClientToken; the predefined baselines and
each system's default; patch groups and what falls back to the default;
tags; and every refusal by SSM's code and words, with nothing changed.

Defaults are account-wide: a test that registers one restores the
predefined default before it ends, whatever happens."""

import json
import uuid

import pytest

from fleet import aws, listed, profile, refused, restricted_client, ssm_client

pytestmark = pytest.mark.usefixtures("stack")

PREDEFINED = {"DEBIAN": "pb-0d3b2e7f5a1c94e60", "UBUNTU": "pb-07a1c5e9b3d2f8a41"}


def predefined_arn(os_name):
    return f"arn:aws:ssm:{profile()['region']}::patchbaseline/{PREDEFINED[os_name]}"


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def ssm():
    return ssm_client()


@pytest.fixture
def restore_defaults(ssm):
    yield
    for os_name in PREDEFINED:
        ssm.register_default_patch_baseline(BaselineId=predefined_arn(os_name))


def mine(ssm, prefix):
    """The account's baselines whose names start with `prefix`, every page."""
    return listed(
        ssm,
        "describe_patch_baselines",
        "BaselineIdentities",
        Filters=[{"Key": "NAME_PREFIX", "Values": [prefix]}, {"Key": "OWNER", "Values": ["Self"]}],
    )


RULES = {
    "PatchRules": [
        {
            "PatchFilterGroup": {"PatchFilters": [{"Key": "PRIORITY", "Values": ["Required", "Important"]}]},
            "ComplianceLevel": "HIGH",
            "ApproveAfterDays": 7,
            "EnableNonSecurity": False,
        }
    ]
}


def test_a_baseline_is_created_read_updated_listed_and_deleted(ssm):
    name = unique("e2e-life")
    created = aws(
        "ssm", "create-patch-baseline",
        "--name", name,
        "--operating-system", "UBUNTU",
        "--description", "security first",
        "--approval-rules", json.dumps(RULES),
        "--approved-patches", "openssl", "libssl*",
        "--rejected-patches", "telnet",
        "--rejected-patches-action", "BLOCK",
        "--tags", "Key=team,Value=ops",
    )
    bid = created["BaselineId"]
    assert bid.startswith("pb-") and len(bid) == 20

    got = ssm.get_patch_baseline(BaselineId=bid)
    assert got["Name"] == name
    assert got["OperatingSystem"] == "UBUNTU"
    assert got["Description"] == "security first"
    assert got["ApprovalRules"] == RULES
    assert got["ApprovedPatches"] == ["openssl", "libssl*"]
    assert got["RejectedPatches"] == ["telnet"]
    assert got["RejectedPatchesAction"] == "BLOCK"
    assert got["ApprovedPatchesComplianceLevel"] == "UNSPECIFIED"
    assert got["PatchGroups"] == []
    assert got["CreatedDate"] == got["ModifiedDate"]

    # Members not given are kept.
    updated = aws("ssm", "update-patch-baseline", "--baseline-id", bid, "--description", "second")
    assert updated["Description"] == "second"
    assert updated["ApprovedPatches"] == ["openssl", "libssl*"]
    got = ssm.get_patch_baseline(BaselineId=bid)
    assert got["Description"] == "second" and got["ApprovalRules"] == RULES
    assert got["ModifiedDate"] >= got["CreatedDate"]

    # Replace: what is not given takes CreatePatchBaseline's default.
    replaced = ssm.update_patch_baseline(BaselineId=bid, Name=name, Replace=True)
    assert "Description" not in replaced
    assert replaced["ApprovedPatches"] == [] and replaced["ApprovalRules"] == {"PatchRules": []}
    assert replaced["RejectedPatchesAction"] == "ALLOW_AS_DEPENDENCY"

    assert [b["BaselineId"] for b in mine(ssm, name)] == [bid]
    identity = mine(ssm, name)[0]
    assert identity == {
        "BaselineId": bid,
        "BaselineName": name,
        "OperatingSystem": "UBUNTU",
        "DefaultBaseline": False,
    }
    tags = aws("ssm", "list-tags-for-resource", "--resource-type", "PatchBaseline", "--resource-id", bid)
    assert tags["TagList"] == [{"Key": "team", "Value": "ops"}]

    assert ssm.delete_patch_baseline(BaselineId=bid)["BaselineId"] == bid
    msg = refused(ssm.get_patch_baseline, "DoesNotExistException", BaselineId=bid)
    assert msg == "Patch Baseline to be retrieved does not exist."
    assert mine(ssm, name) == []
    # Deleting what is gone answers as the first delete did.
    assert aws("ssm", "delete-patch-baseline", "--baseline-id", bid) == {"BaselineId": bid}


def test_a_client_token_creates_one_baseline(ssm):
    name = unique("e2e-token")
    token = unique("tok")
    first = ssm.create_patch_baseline(Name=name, OperatingSystem="DEBIAN", ClientToken=token)
    again = ssm.create_patch_baseline(Name=name, OperatingSystem="DEBIAN", ClientToken=token)
    assert first["BaselineId"] == again["BaselineId"]
    msg = refused(
        ssm.create_patch_baseline,
        "IdempotentParameterMismatch",
        Name=name,
        OperatingSystem="DEBIAN",
        ClientToken=token,
        Description="other",
    )
    assert token in msg and first["BaselineId"] in msg
    assert [b["BaselineId"] for b in mine(ssm, name)] == [first["BaselineId"]]
    ssm.delete_patch_baseline(BaselineId=first["BaselineId"])


def test_bad_baselines_are_refused_in_ssms_words_and_nothing_is_stored(ssm):
    raw = ssm_client(validate=False)
    name = unique("e2e-bad")
    msg = refused(ssm.create_patch_baseline, "UnsupportedOperatingSystem", Name=name, OperatingSystem="AMAZON_LINUX_2023")
    assert msg == (
        "Patch baselines for AMAZON_LINUX_2023 are not supported: its packages are managed by dnf (or yum), "
        "which Steward's agent does not support yet. Give OperatingSystem DEBIAN or UBUNTU."
    )
    msg = refused(raw.create_patch_baseline, "ValidationException", Name="a b", OperatingSystem="UBUNTU")
    assert msg == (
        "1 validation error detected: Value 'a b' at 'name' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9_\\-.]{3,128}$"
    )
    msg = refused(
        raw.create_patch_baseline,
        "ValidationException",
        Name=name,
        OperatingSystem="UBUNTU",
        ApprovalRules={"PatchRules": [{"PatchFilterGroup": {"PatchFilters": []}, "ApproveAfterDays": 361}]},
    )
    assert msg == (
        "1 validation error detected: Value '361' at 'approvalRules.patchRules.1.member.approveAfterDays' "
        "failed to satisfy constraint: Member must have value less than or equal to 360"
    )
    msg = refused(
        ssm.create_patch_baseline,
        "ValidationException",
        Name=name,
        OperatingSystem="DEBIAN",
        ApprovedPatches=["curl.x86_64"],
    )
    assert msg.startswith("ApprovedPatches: 'curl.x86_64' is not a package name of DEBIAN.")
    assert mine(ssm, name) == []

    # A bad update changes nothing.
    bid = ssm.create_patch_baseline(Name=name, OperatingSystem="DEBIAN", Description="kept")["BaselineId"]
    try:
        refused(
            ssm.update_patch_baseline,
            "ValidationException",
            BaselineId=bid,
            GlobalFilters={"PatchFilters": [{"Key": "CLASSIFICATION", "Values": ["Security"]}]},
        )
        refused(ssm.update_patch_baseline, "ValidationException", BaselineId=bid, Replace=True, Description="x")
        assert ssm.get_patch_baseline(BaselineId=bid)["Description"] == "kept"
        msg = refused(ssm.update_patch_baseline, "DoesNotExistException", BaselineId="pb-0123456789abcdef0", Description="x")
        assert msg == "Patch Baseline to be retrieved does not exist."
    finally:
        ssm.delete_patch_baseline(BaselineId=bid)


def test_predefined_baselines_are_each_systems_default_until_another_is_registered(ssm, restore_defaults):
    for os_name, pid in PREDEFINED.items():
        default = ssm.get_default_patch_baseline(OperatingSystem=os_name)
        assert default == {"BaselineId": predefined_arn(os_name), "OperatingSystem": os_name} | {
            "ResponseMetadata": default["ResponseMetadata"]
        }
        for given in (pid, predefined_arn(os_name)):
            got = ssm.get_patch_baseline(BaselineId=given)
            assert got["BaselineId"] == predefined_arn(os_name)
            assert got["OperatingSystem"] == os_name
        assert got["Name"] == ("AWS-DebianDefaultPatchBaseline" if os_name == "DEBIAN" else "AWS-UbuntuDefaultPatchBaseline")
    aws_owned = listed(
        ssm, "describe_patch_baselines", "BaselineIdentities", Filters=[{"Key": "OWNER", "Values": ["AWS"]}]
    )
    assert sorted(b["BaselineId"] for b in aws_owned) == sorted(predefined_arn(o) for o in PREDEFINED)
    assert all(b["DefaultBaseline"] for b in aws_owned)

    name = unique("e2e-default")
    bid = ssm.create_patch_baseline(Name=name, OperatingSystem="UBUNTU")["BaselineId"]
    assert aws("ssm", "register-default-patch-baseline", "--baseline-id", bid) == {"BaselineId": bid}
    assert aws("ssm", "get-default-patch-baseline", "--operating-system", "UBUNTU") == {
        "BaselineId": bid,
        "OperatingSystem": "UBUNTU",
    }
    assert ssm.get_default_patch_baseline(OperatingSystem="DEBIAN")["BaselineId"] == predefined_arn("DEBIAN")
    assert mine(ssm, name)[0]["DefaultBaseline"] is True
    # A group with no baseline of its own gets the default.
    group = unique("e2e-nogroup")
    fallback = ssm.get_patch_baseline_for_patch_group(PatchGroup=group, OperatingSystem="UBUNTU")
    assert (fallback["BaselineId"], fallback["PatchGroup"], fallback["OperatingSystem"]) == (bid, group, "UBUNTU")

    msg = refused(ssm.delete_patch_baseline, "ResourceInUseException", BaselineId=bid)
    assert msg == (
        "PatchBaseline to be deleted is the default patch baseline for OperatingSystem UBUNTU. "
        "Register another default (RegisterDefaultPatchBaseline) first."
    )
    assert ssm.get_patch_baseline(BaselineId=bid)["Name"] == name

    # Back to AWS's, by its ARN as SSM says; then the baseline may go.
    ssm.register_default_patch_baseline(BaselineId=predefined_arn("UBUNTU"))
    assert ssm.get_default_patch_baseline(OperatingSystem="UBUNTU")["BaselineId"] == predefined_arn("UBUNTU")
    ssm.delete_patch_baseline(BaselineId=bid)

    msg = refused(ssm.delete_patch_baseline, "InvalidResourceId", BaselineId=predefined_arn("DEBIAN"))
    assert msg == f"Patch baseline {predefined_arn('DEBIAN')} is predefined by AWS and cannot be deleted."
    msg = refused(ssm.get_default_patch_baseline, "UnsupportedOperatingSystem", OperatingSystem="WINDOWS")
    assert msg.startswith("Patch baselines for WINDOWS are not supported")


def test_patch_groups_have_one_baseline_per_system_and_hold_it(ssm):
    group = unique("e2e-web")
    web = ssm.create_patch_baseline(Name=unique("e2e-web"), OperatingSystem="UBUNTU")["BaselineId"]
    other = ssm.create_patch_baseline(Name=unique("e2e-other"), OperatingSystem="UBUNTU")["BaselineId"]
    try:
        registered = aws(
            "ssm", "register-patch-baseline-for-patch-group", "--baseline-id", web, "--patch-group", group
        )
        assert registered == {"BaselineId": web, "PatchGroup": group}
        # A Debian baseline may join the same group.
        ssm.register_patch_baseline_for_patch_group(BaselineId=predefined_arn("DEBIAN"), PatchGroup=group)

        msg = refused(
            ssm.register_patch_baseline_for_patch_group, "AlreadyExistsException", BaselineId=other, PatchGroup=group
        )
        assert msg == f"Patch Group {group} already has a baseline registered for OperatingSystem UBUNTU."
        msg = refused(
            ssm.register_patch_baseline_for_patch_group,
            "DoesNotExistException",
            BaselineId="pb-0123456789abcdef0",
            PatchGroup=group,
        )
        assert msg == "Maintenance window pb-0123456789abcdef0 does not exist"

        assert ssm.get_patch_baseline(BaselineId=web)["PatchGroups"] == [group]
        assert ssm.get_patch_baseline(BaselineId=other)["PatchGroups"] == []
        for_group = aws(
            "ssm", "get-patch-baseline-for-patch-group", "--patch-group", group, "--operating-system", "UBUNTU"
        )
        assert for_group == {"BaselineId": web, "PatchGroup": group, "OperatingSystem": "UBUNTU"}
        for_debian = ssm.get_patch_baseline_for_patch_group(PatchGroup=group, OperatingSystem="DEBIAN")
        assert for_debian["BaselineId"] == predefined_arn("DEBIAN")

        mappings = listed(
            ssm, "describe_patch_groups", "Mappings", Filters=[{"Key": "NAME_PREFIX", "Values": [group]}]
        )
        assert sorted((m["PatchGroup"], m["BaselineIdentity"]["BaselineId"]) for m in mappings) == sorted(
            [(group, web), (group, predefined_arn("DEBIAN"))]
        )
        ubuntu_only = aws(
            "ssm", "describe-patch-groups", "--filters", f"Key=NAME_PREFIX,Values={group}",
            "Key=OPERATING_SYSTEM,Values=UBUNTU",
        )
        assert [m["BaselineIdentity"]["BaselineId"] for m in ubuntu_only["Mappings"]] == [web]

        msg = refused(ssm.delete_patch_baseline, "ResourceInUseException", BaselineId=web)
        assert msg == f"PatchBaseline to be deleted is used for Patch Group: {group}"
        assert ssm.get_patch_baseline(BaselineId=web)["PatchGroups"] == [group]

        msg = refused(
            ssm.deregister_patch_baseline_for_patch_group, "InvalidResourceId", BaselineId=other, PatchGroup=group
        )
        assert msg == f"Patch Group {group} is not registered with patch baseline {other}."
        assert ssm.deregister_patch_baseline_for_patch_group(BaselineId=web, PatchGroup=group)["PatchGroup"] == group
        ssm.deregister_patch_baseline_for_patch_group(BaselineId=predefined_arn("DEBIAN"), PatchGroup=group)
        fallback = ssm.get_patch_baseline_for_patch_group(PatchGroup=group, OperatingSystem="UBUNTU")
        assert fallback["BaselineId"] == ssm.get_default_patch_baseline(OperatingSystem="UBUNTU")["BaselineId"]
        assert listed(ssm, "describe_patch_groups", "Mappings", Filters=[{"Key": "NAME_PREFIX", "Values": [group]}]) == []
    finally:
        for bid in (web, other):
            for m in ssm.get_patch_baseline(BaselineId=bid)["PatchGroups"]:
                ssm.deregister_patch_baseline_for_patch_group(BaselineId=bid, PatchGroup=m)
            ssm.delete_patch_baseline(BaselineId=bid)


def test_listings_page_as_ssm_pages_them(ssm):
    prefix = unique("e2e-page")
    ids = [ssm.create_patch_baseline(Name=f"{prefix}-{i}", OperatingSystem="DEBIAN")["BaselineId"] for i in range(3)]
    try:
        pages = list(
            ssm.get_paginator("describe_patch_baselines").paginate(
                Filters=[{"Key": "NAME_PREFIX", "Values": [prefix]}], PaginationConfig={"PageSize": 1}
            )
        )
        seen = [b["BaselineId"] for p in pages for b in p["BaselineIdentities"]]
        assert sorted(seen) == sorted(ids)
        assert all(len(p["BaselineIdentities"]) <= 1 for p in pages)
        cli = aws(
            "ssm", "describe-patch-baselines", "--filters", f"Key=NAME_PREFIX,Values={prefix}", "--page-size", "2"
        )
        assert sorted(b["BaselineId"] for b in cli["BaselineIdentities"]) == sorted(ids)

        raw = ssm_client(validate=False)
        msg = refused(raw.describe_patch_baselines, "ValidationException", MaxResults=101)
        assert msg == (
            "1 validation error detected: Value '101' at 'maxResults' failed to satisfy constraint: "
            "Member must have value less than or equal to 100"
        )
        msg = refused(ssm.describe_patch_baselines, "ValidationException", Filters=[{"Key": "COLOR", "Values": ["x"]}])
        assert msg == "Filter key COLOR is not valid for DescribePatchBaselines; use NAME_PREFIX, OWNER or OPERATING_SYSTEM."
        refused(ssm.describe_patch_baselines, "InvalidNextToken", NextToken="not-a-token")
    finally:
        for bid in ids:
            ssm.delete_patch_baseline(BaselineId=bid)


def test_patch_properties_name_apts_products_and_priorities(ssm):
    priorities = aws("ssm", "describe-patch-properties", "--operating-system", "DEBIAN", "--property", "PRIORITY")
    assert priorities["Properties"] == [
        {"Name": p} for p in ["Required", "Important", "Standard", "Optional", "Extra"]
    ]
    products = listed(
        ssm, "describe_patch_properties", "Properties", OperatingSystem="UBUNTU", Property="PRODUCT",
        PaginationConfig={"PageSize": 5},
    )
    assert {"Name": "Ubuntu22.04"} in products and {"Name": "Ubuntu24.04"} in products
    debian = ssm.describe_patch_properties(OperatingSystem="DEBIAN", Property="PRODUCT")["Properties"]
    assert {"Name": "Debian12"} in debian
    msg = refused(ssm.describe_patch_properties, "ValidationException", OperatingSystem="UBUNTU", Property="CLASSIFICATION")
    assert msg == "Property CLASSIFICATION is not a patch property of UBUNTU; UBUNTU has PRODUCT and PRIORITY."


def test_tags_on_baselines(ssm):
    bid = ssm.create_patch_baseline(Name=unique("e2e-tags"), OperatingSystem="DEBIAN")["BaselineId"]
    try:
        aws(
            "ssm", "add-tags-to-resource", "--resource-type", "PatchBaseline", "--resource-id", bid,
            "--tags", "Key=env,Value=prod", "Key=tier,Value=1",
        )
        ssm.remove_tags_from_resource(ResourceType="PatchBaseline", ResourceId=bid, TagKeys=["tier"])
        tags = ssm.list_tags_for_resource(ResourceType="PatchBaseline", ResourceId=bid)["TagList"]
        assert tags == [{"Key": "env", "Value": "prod"}]
        msg = refused(
            ssm.add_tags_to_resource,
            "InvalidResourceId",
            ResourceType="PatchBaseline",
            ResourceId=PREDEFINED["DEBIAN"],
            Tags=[{"Key": "a", "Value": "b"}],
        )
        assert msg == f'The resource ID "{PREDEFINED["DEBIAN"]}" is not valid. Verify the ID and try again.'
        refused(
            ssm.add_tags_to_resource,
            "ValidationException",
            ResourceType="PatchBaseline",
            ResourceId=bid,
            Tags=[{"Key": "aws:x", "Value": "b"}],
        )
        assert ssm.list_tags_for_resource(ResourceType="PatchBaseline", ResourceId=bid)["TagList"] == tags
    finally:
        ssm.delete_patch_baseline(BaselineId=bid)


def test_a_policy_reaches_only_the_baselines_it_names(ssm):
    bid = ssm.create_patch_baseline(Name=unique("e2e-auth"), OperatingSystem="UBUNTU", Description="kept")["BaselineId"]
    try:
        reader = restricted_client(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["ssm:GetPatchBaseline", "ssm:UpdatePatchBaseline"],
                        "Resource": f"arn:aws:ssm:*:*:patchbaseline/{bid}",
                    }
                ],
            },
            "patch-reader",
        )
        assert reader.get_patch_baseline(BaselineId=bid)["Description"] == "kept"
        refused(reader.create_patch_baseline, "AccessDeniedException", Name=unique("e2e-denied"), OperatingSystem="UBUNTU")
        refused(reader.delete_patch_baseline, "AccessDeniedException", BaselineId=bid)
        other = ssm.create_patch_baseline(Name=unique("e2e-auth2"), OperatingSystem="UBUNTU")["BaselineId"]
        try:
            refused(reader.update_patch_baseline, "AccessDeniedException", BaselineId=other, Description="x")
            assert "Description" not in ssm.get_patch_baseline(BaselineId=other)
        finally:
            ssm.delete_patch_baseline(BaselineId=other)
        assert ssm.get_patch_baseline(BaselineId=bid)["Description"] == "kept"
    finally:
        ssm.delete_patch_baseline(BaselineId=bid)
