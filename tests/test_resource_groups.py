"""SendCommand to an AWS Resource Groups group: its tag query picks the nodes."""

import json
import uuid

import botocore.exceptions
import pytest

from fleet import Fleet, invocations, localstack_client, wait_command_final


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("fleet"))
    f.add("dev1", f.activation("dev", 1))
    f.add("prod1", f.activation("prod", 1))
    try:
        f.wait_online("dev1", "prod1")
        yield f
    finally:
        f.stop()


@pytest.fixture(scope="module")
def groups():
    client = localstack_client("resource-groups")
    created = []

    def create(name, types, tag_filters):
        query = {"ResourceTypeFilters": types, "TagFilters": tag_filters}
        client.create_group(Name=name, ResourceQuery={"Type": "TAG_FILTERS_1_0", "Query": json.dumps(query)})
        created.append(name)
        return name

    yield create
    for name in created:
        client.delete_group(Group=name)


def group_target(name):
    return [{"Key": "resource-groups:Name", "Values": [name]}]


def test_a_group_targets_the_nodes_its_tag_query_selects(fleet, groups):
    name = groups(
        f"e2e-dev-{fleet.suite}",
        ["AWS::EC2::Instance"],
        [{"Key": "suite", "Values": [fleet.suite]}, {"Key": "env", "Values": ["dev"]}],
    )
    cmd = fleet.ssm.send_command(
        DocumentName="AWS-RunShellScript",
        Targets=group_target(name),
        Parameters={"commands": ["echo in the group"]},
    )["Command"]
    assert cmd["Targets"] == group_target(name)
    final = wait_command_final(fleet.ssm, cmd["CommandId"])
    assert final["Status"] == "Success" and final["TargetCount"] == 1, final
    ran = invocations(fleet.ssm, cmd["CommandId"])
    assert [i["InstanceId"] for i in ran] == [fleet.agents["dev1"].instance_id()]
    assert "in the group" in ran[0]["CommandPlugins"][0]["Output"]

    # A type filter that excludes nodes leaves the group with none.
    none = fleet.ssm.send_command(
        DocumentName="AWS-RunShellScript",
        Targets=group_target(name) + [{"Key": "resource-groups:ResourceTypeFilters", "Values": ["AWS::S3::Bucket"]}],
        Parameters={"commands": ["echo never"]},
    )["Command"]
    assert none["TargetCount"] == 0


def test_a_missing_group_is_an_invalid_target_and_sends_nothing(fleet):
    comment = f"e2e missing group {uuid.uuid4().hex[:8]}"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fleet.ssm.send_command(
            DocumentName="AWS-RunShellScript",
            Targets=group_target(f"no-such-group-{fleet.suite}"),
            Parameters={"commands": ["echo never"]},
            Comment=comment,
        )
    assert e.value.response["Error"]["Code"] == "InvalidTarget"
    assert "does not exist" in e.value.response["Error"]["Message"]
    pages = fleet.ssm.get_paginator("list_commands").paginate()
    assert not [c for p in pages for c in p["Commands"] if c.get("Comment") == comment]
