"""Documents end to end: stored, versioned Command documents through boto3 and
the AWS CLI, run on a real agent by SendCommand."""

import json
import uuid

import botocore.exceptions
import pytest

from fleet import Fleet, aws, invocations, wait_command_final

# Two steps, typed parameters (String with allowedPattern, Integer, Boolean,
# StringList); the second step runs only when `loud` is true.
V1 = """\
schemaVersion: '2.2'
description: Greets, then counts.
parameters:
  who:
    type: String
    description: Whom to greet.
    allowedPattern: '^[a-z]+$'
  times:
    type: Integer
    default: 2
  loud:
    type: Boolean
    default: true
  extra:
    type: StringList
    default: ["echo extra-one", "echo extra-two"]
mainSteps:
- action: aws:runShellScript
  name: greet
  inputs:
    runCommand:
    - echo "v1 hello {{ who }} x{{ times }}"
- action: aws:runShellScript
  name: count
  precondition:
    StringEquals:
    - platformType
    - Linux
  inputs:
    runCommand: '{{ extra }}'
"""

V2 = """\
schemaVersion: '2.2'
description: Version two.
parameters:
  who:
    type: String
    allowedPattern: '^[a-z]+$'
mainSteps:
- action: aws:runShellScript
  name: greet
  inputs:
    runCommand:
    - echo "v2 bye {{ who }}"
"""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("fleet"))
    act = f.activation("docs", 1)
    f.add("docs1", act)
    try:
        f.wait_online("docs1")
        yield f
    finally:
        f.stop()


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def error_code(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e.value.response["Error"]["Code"]


def run(fleet, name, params, version=None):
    ssm = fleet.ssm
    args = dict(DocumentName=name, InstanceIds=[fleet.agents["docs1"].instance_id()], Parameters=params)
    if version:
        args["DocumentVersion"] = version
    cmd = ssm.send_command(**args)["Command"]
    done = wait_command_final(ssm, cmd["CommandId"])
    assert done["Status"] == "Success", done
    [inv] = invocations(ssm, cmd["CommandId"])
    return done, {p["Name"]: p["Output"] for p in inv["CommandPlugins"]}


def test_multi_step_document_runs_on_an_agent(fleet):
    ssm = fleet.ssm
    name = unique("Greet")
    d = ssm.create_document(Name=name, Content=V1, DocumentFormat="YAML", DocumentType="Command")[
        "DocumentDescription"
    ]
    assert d["Owner"] != "Amazon" and d["DocumentVersion"] == "1" and d["SchemaVersion"] == "2.2"
    assert [(p["Name"], p["Type"]) for p in d["Parameters"]] == [
        ("who", "String"), ("times", "Integer"), ("loud", "Boolean"), ("extra", "StringList"),
    ]
    done, out = run(fleet, name, {"who": ["alice"], "times": ["3"]})
    assert done["DocumentVersion"] == "1"
    assert "v1 hello alice x3" in out["greet"]
    assert "extra-one" in out["count"] and "extra-two" in out["count"]
    ssm.delete_document(Name=name)


def test_versions_default_and_latest(fleet):
    ssm = fleet.ssm
    name = unique("Versions")
    ssm.create_document(Name=name, Content=V1, DocumentFormat="YAML", VersionName="first")
    up = ssm.update_document(Name=name, Content=V2, DocumentFormat="YAML", DocumentVersion="$LATEST")
    assert up["DocumentDescription"]["DocumentVersion"] == "2"
    assert up["DocumentDescription"]["DefaultVersion"] == "1"
    assert error_code(
        lambda: ssm.update_document(Name=name, Content=V2, DocumentFormat="YAML", DocumentVersion="$LATEST")
    ) == "DuplicateDocumentContent"

    # The default stays at 1: SendCommand without a version runs it.
    _, out = run(fleet, name, {"who": ["bob"]})
    assert "v1 hello bob x2" in out["greet"]
    done, out = run(fleet, name, {"who": ["bob"]}, version="$LATEST")
    assert done["DocumentVersion"] == "2" and "v2 bye bob" in out["greet"]

    moved = aws("ssm", "update-document-default-version", "--name", name, "--document-version", "2")
    assert moved["Description"]["DefaultVersion"] == "2"
    _, out = run(fleet, name, {"who": ["carol"]})
    assert "v2 bye carol" in out["greet"]

    listed = aws("ssm", "list-document-versions", "--name", name)["DocumentVersions"]
    assert [(v["DocumentVersion"], v["IsDefaultVersion"]) for v in listed] == [("1", False), ("2", True)]
    got = aws("ssm", "get-document", "--name", name, "--version-name", "first", "--document-format", "JSON")
    assert json.loads(got["Content"])["description"] == "Greets, then counts."

    # The default version cannot go alone; the others can, and then the whole document.
    assert error_code(lambda: ssm.delete_document(Name=name, DocumentVersion="2")) == "InvalidDocumentOperation"
    ssm.delete_document(Name=name, DocumentVersion="1")
    assert error_code(lambda: ssm.describe_document(Name=name, DocumentVersion="1")) == "InvalidDocumentVersion"
    aws("ssm", "delete-document", "--name", name)
    assert error_code(lambda: ssm.describe_document(Name=name)) == "InvalidDocument"


def test_bad_documents_and_parameters_are_refused(fleet):
    ssm = fleet.ssm
    bad = V1.replace("echo \"v1 hello {{ who }} x{{ times }}\"", "echo {{ nobody }}")
    for content, fmt in [(bad, "YAML"), ("{ not json", "JSON"), (V1, "JSON")]:
        name = unique("Bad")
        assert error_code(lambda: ssm.create_document(Name=name, Content=content, DocumentFormat=fmt)) == (
            "InvalidDocumentContent"
        )
        assert error_code(lambda: ssm.describe_document(Name=name)) == "InvalidDocument"
    # A plugin Steward does not run yet is refused, not ignored.
    download = {"schemaVersion": "2.2", "description": "d",
                "mainSteps": [{"action": "aws:downloadContent", "name": "get",
                               "inputs": {"sourceType": "S3", "sourceInfo": "{}"}}]}
    cli = aws("ssm", "create-document", "--name", unique("Bad"), "--content", json.dumps(download), check=False)
    assert "InvalidDocumentContent" in cli.stderr and "aws:downloadContent" in cli.stderr

    name = unique("Params")
    ssm.create_document(Name=name, Content=V1, DocumentFormat="YAML")
    target = [fleet.agents["docs1"].instance_id()]
    before = ssm.list_commands(InstanceId=target[0])["Commands"]
    for params in [
        {"who": ["Alice"]},  # fails allowedPattern
        {"who": ["bob"], "times": ["many"]},  # not an Integer
        {"who": ["bob"], "loud": ["yes"]},  # not a Boolean
        {"times": ["1"]},  # who is required
        {"who": ["bob"], "color": ["red"]},  # not declared
    ]:
        code = error_code(lambda: ssm.send_command(DocumentName=name, InstanceIds=target, Parameters=params))
        assert code == "InvalidParameters", params
    assert ssm.list_commands(InstanceId=target[0])["Commands"] == before
    assert error_code(
        lambda: ssm.send_command(DocumentName=name, InstanceIds=target, Parameters={"who": ["x"]}, DocumentVersion="7")
    ) == "InvalidDocumentVersion"
    ssm.delete_document(Name=name)


def test_list_documents_by_owner(fleet):
    ssm = fleet.ssm
    name = unique("Listed")
    ssm.create_document(
        Name=name, Content=V2, DocumentFormat="YAML", Tags=[{"Key": "team", "Value": "docs"}], DisplayName="Listed: v2"
    )

    def names(filters):
        pages = ssm.get_paginator("list_documents").paginate(Filters=filters)
        return {d["Name"]: d for p in pages for d in p["DocumentIdentifiers"]}

    amazon = names([{"Key": "Owner", "Values": ["Amazon"]}])
    assert {"AWS-RunShellScript", "Steward-CheckDiskSpace"} <= set(amazon) and name not in amazon
    assert amazon["AWS-RunShellScript"]["Owner"] == "Amazon"
    mine = names([{"Key": "Owner", "Values": ["Self"]}])
    assert name in mine and "AWS-RunShellScript" not in mine
    assert mine[name]["Tags"] == [{"Key": "team", "Value": "docs"}]
    assert mine[name]["DisplayName"] == "Listed: v2"
    assert ssm.describe_document(Name=name)["Document"]["DisplayName"] == "Listed: v2"
    cli = aws("ssm", "list-documents", "--filters", f"Key=Name,Values={name}")["DocumentIdentifiers"]
    assert [d["Name"] for d in cli] == [name]

    assert error_code(lambda: ssm.delete_document(Name="AWS-RunShellScript")) == "InvalidDocumentOperation"
    assert error_code(
        lambda: ssm.create_document(Name="AWS-Mine", Content=V2, DocumentFormat="YAML")
    ) == "ValidationException"
    ssm.delete_document(Name=name)
    assert name not in names([{"Key": "Owner", "Values": ["Self"]}])


CHILD = """\
schemaVersion: '2.2'
description: Echoes one word.
parameters:
  word:
    type: String
    allowedPattern: '^[a-z]+$'
mainSteps:
- action: aws:runShellScript
  name: say
  inputs:
    runCommand:
    - echo "child says {{ word }}"
"""

PARENT = """\
schemaVersion: '2.2'
description: A shell step, then a nested document.
parameters:
  who:
    type: String
mainSteps:
- action: aws:runShellScript
  name: first
  inputs:
    runCommand:
    - echo "parent for {{ who }}"
- action: aws:runDocument
  name: nested
  inputs:
    documentType: SSMDocument
    documentPath: CHILD_NAME
    documentParameters: '{"word": "{{ who }}"}'
"""


def test_a_nested_document(fleet):
    ssm = fleet.ssm
    child, parent = unique("Child"), unique("Parent")
    ssm.create_document(Name=child, Content=CHILD, DocumentFormat="YAML", DocumentType="Command")
    ssm.create_document(
        Name=parent, Content=PARENT.replace("CHILD_NAME", child), DocumentFormat="YAML", DocumentType="Command"
    )
    _, out = run(fleet, parent, {"who": ["carol"]})
    assert "parent for carol" in out["first"]
    assert "child says carol" in out["nested.say"]

    # The child's own rules apply to what the parent passes: nothing is sent.
    iid = fleet.agents["docs1"].instance_id()
    assert error_code(
        lambda: ssm.send_command(DocumentName=parent, InstanceIds=[iid], Parameters={"who": ["Not Lower"]})
    ) == "InvalidParameters"
    # A missing child is refused at SendCommand.
    ssm.delete_document(Name=child)
    assert error_code(
        lambda: ssm.send_command(DocumentName=parent, InstanceIds=[iid], Parameters={"who": ["carol"]})
    ) == "InvalidDocument"
    ssm.delete_document(Name=parent)
