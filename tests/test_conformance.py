"""SSM's exact answers, end to end through boto3 and the real AWS CLI: the
page sizes, default key, data types, validation messages, document formats,
document tags and name spellings that SSM's API reference (and moto's SSM
tests) state."""

import json
import uuid

import pytest
import yaml

from fleet import aws, refused, ssm_client

pytestmark = pytest.mark.usefixtures("stack")


@pytest.fixture(scope="module")
def ssm():
    return ssm_client()


@pytest.fixture(scope="module")
def raw():
    return ssm_client(validate=False)


@pytest.fixture
def root():
    return f"/e2e-conf-{uuid.uuid4().hex[:10]}"


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"




def path_filter(root):
    return [{"Key": "Path", "Values": [root]}]


# --- Parameter Store ----------------------------------------------------------------


def test_describe_parameters_answers_10_by_default_with_a_next_token(ssm, root):
    names = [f"{root}/p{i:02d}" for i in range(12)]
    for n in names:
        ssm.put_parameter(Name=n, Type="String", Value="v")
    try:
        first = ssm.describe_parameters(ParameterFilters=path_filter(root))
        assert len(first["Parameters"]) == 10
        assert first.get("NextToken")
        rest = ssm.describe_parameters(ParameterFilters=path_filter(root), NextToken=first["NextToken"])
        assert len(rest["Parameters"]) == 2 and not rest.get("NextToken")
        seen = [p["Name"] for p in first["Parameters"] + rest["Parameters"]]
        assert sorted(seen) == names

        # The AWS CLI's own first page, without its paginator.
        page = aws(
            "ssm", "describe-parameters", "--parameter-filters", f"Key=Path,Values={root}", "--no-paginate"
        )
        assert len(page["Parameters"]) == 10 and page.get("NextToken")
        # With its paginator, everything.
        every = aws("ssm", "describe-parameters", "--parameter-filters", f"Key=Path,Values={root}")
        assert sorted(p["Name"] for p in every["Parameters"]) == names
    finally:
        ssm.delete_parameters(Names=names[:10])
        ssm.delete_parameters(Names=names[10:])


def test_a_secure_string_without_key_id_reports_alias_aws_ssm(ssm, root):
    name = f"{root}/secret"
    plain = f"{root}/plain"
    value = f"s3cr3t-{uuid.uuid4().hex}"
    ssm.put_parameter(Name=name, Type="SecureString", Value=value)
    ssm.put_parameter(Name=plain, Type="String", Value="not secret")
    try:
        [meta] = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
        assert meta["Type"] == "SecureString" and meta["KeyId"] == "alias/aws/ssm"
        [version] = ssm.get_parameter_history(Name=name)["Parameters"]
        assert version["KeyId"] == "alias/aws/ssm"
        assert value not in json.dumps(version, default=str)

        by_key = ssm.describe_parameters(
            ParameterFilters=path_filter(root) + [{"Key": "KeyId", "Values": ["alias/aws/ssm"]}]
        )["Parameters"]
        assert [p["Name"] for p in by_key] == [name]
        cli = aws("ssm", "describe-parameters", "--parameter-filters",
                  f"Key=Path,Values={root}", "Key=KeyId,Values=alias/aws/ssm")["Parameters"]
        assert [p["Name"] for p in cli] == [name] and cli[0]["KeyId"] == "alias/aws/ssm"

        assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == value
        assert ssm.get_parameter(Name=name)["Parameter"]["Value"] != value
    finally:
        ssm.delete_parameters(Names=[name, plain])


def test_data_type_aws_ec2_image(ssm, raw, root):
    name = f"{root}/ami"
    out = ssm.put_parameter(Name=name, Type="String", Value="ami-0123456789abcdef0", DataType="aws:ec2:image")
    assert out["Version"] == 1
    got = ssm.get_parameter(Name=name)["Parameter"]
    assert got["DataType"] == "aws:ec2:image" and got["Value"] == "ami-0123456789abcdef0"
    [meta] = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"]
    assert meta["DataType"] == "aws:ec2:image"
    found = ssm.describe_parameters(
        ParameterFilters=path_filter(root) + [{"Key": "DataType", "Values": ["aws:ec2:image"]}]
    )["Parameters"]
    assert [p["Name"] for p in found] == [name]

    for bad in ["not-an-ami", "ami-", "ami-xyz12345", "ami-0123456789abcdefg", "AMI-0123456789abcdef0"]:
        refused(ssm.put_parameter, "ValidationException",
                Name=f"{root}/bad", Type="String", Value=bad, DataType="aws:ec2:image")
    # An overwrite with a bad value changes nothing either.
    refused(ssm.put_parameter, "ValidationException",
            Name=name, Value="not-an-ami", Overwrite=True, DataType="aws:ec2:image")
    cli = aws("ssm", "put-parameter", "--name", f"{root}/bad", "--type", "String",
              "--value", "not-an-ami", "--data-type", "aws:ec2:image", check=False)
    assert cli.returncode != 0 and "ValidationException" in cli.stderr
    refused(ssm.get_parameter, "ParameterNotFound", Name=f"{root}/bad")
    assert ssm.get_parameter(Name=name)["Parameter"]["Version"] == 1
    ssm.delete_parameter(Name=name)


def test_validation_messages_in_ssms_words(raw, root):
    name = f"{root}/typed"
    message = refused(raw.put_parameter, "ValidationException", Name=name, Value="1", Type="Number")
    assert message.startswith("1 validation error detected: "), message
    assert "at 'type'" in message and "Member must satisfy enum value set" in message, message

    message = refused(raw.put_parameter, "ValidationException", Name=name, Value="1", Type="Number", Tier="Gold")
    assert message.startswith("2 validation errors detected: "), message
    assert "at 'type'" in message and "at 'tier'" in message, message
    refused(raw.get_parameter, "ParameterNotFound", Name=name)

    message = refused(
        raw.describe_parameters, "ValidationException",
        ParameterFilters=[{"Key": "Name", "Option": "BeginsWithLonger", "Values": [root]}],
    )
    assert "parameterFilters.1.member.option" in message, message
    assert "Member must have length less than or equal to 10" in message, message


# --- documents ------------------------------------------------------------------------


YAML_DOC = """\
schemaVersion: '2.2'
description: Written in YAML.
parameters:
  word:
    type: String
    default: hello
mainSteps:
- action: aws:runShellScript
  name: say
  inputs:
    runCommand:
    - echo {{ word }}
"""


def test_get_document_answers_json_unless_yaml_is_asked(ssm):
    name = unique("Conf-Yaml")
    ssm.create_document(Name=name, Content=YAML_DOC, DocumentFormat="YAML", DocumentType="Command")
    try:
        got = ssm.get_document(Name=name)
        assert got["DocumentFormat"] == "JSON"
        assert json.loads(got["Content"]) == yaml.safe_load(YAML_DOC)

        as_yaml = ssm.get_document(Name=name, DocumentFormat="YAML")
        assert as_yaml["DocumentFormat"] == "YAML" and as_yaml["Content"] == YAML_DOC

        as_json = ssm.get_document(Name=name, DocumentFormat="JSON")
        assert as_json["DocumentFormat"] == "JSON" and json.loads(as_json["Content"]) == yaml.safe_load(YAML_DOC)

        cli = aws("ssm", "get-document", "--name", name)
        assert cli["DocumentFormat"] == "JSON" and json.loads(cli["Content"]) == yaml.safe_load(YAML_DOC)
    finally:
        ssm.delete_document(Name=name)


def test_documents_are_tagged_as_resources(ssm):
    name = unique("Conf-Tags")
    ssm.create_document(Name=name, Content=YAML_DOC, DocumentFormat="YAML", DocumentType="Command")
    try:
        assert ssm.list_tags_for_resource(ResourceType="Document", ResourceId=name)["TagList"] == []
        ssm.add_tags_to_resource(
            ResourceType="Document", ResourceId=name,
            Tags=[{"Key": "team", "Value": "blue"}, {"Key": "tier", "Value": "gold"}],
        )
        aws("ssm", "add-tags-to-resource", "--resource-type", "Document", "--resource-id", name,
            "--tags", "Key=owner,Value=ops")
        tags = ssm.list_tags_for_resource(ResourceType="Document", ResourceId=name)["TagList"]
        assert sorted((t["Key"], t["Value"]) for t in tags) == [("owner", "ops"), ("team", "blue"), ("tier", "gold")]

        ssm.remove_tags_from_resource(ResourceType="Document", ResourceId=name, TagKeys=["tier", "owner"])
        tags = ssm.list_tags_for_resource(ResourceType="Document", ResourceId=name)["TagList"]
        assert tags == [{"Key": "team", "Value": "blue"}]
        # The tags are the document's: ListDocuments shows them.
        listed = ssm.list_documents(Filters=[{"Key": "Name", "Values": [name]}])["DocumentIdentifiers"]
        assert [d["Tags"] for d in listed] == [[{"Key": "team", "Value": "blue"}]]

        # Amazon's documents are not the account's to tag.
        refused(ssm.add_tags_to_resource, "InvalidResourceId",
                ResourceType="Document", ResourceId="AWS-RunShellScript", Tags=[{"Key": "k", "Value": "v"}])
        refused(ssm.remove_tags_from_resource, "InvalidResourceId",
                ResourceType="Document", ResourceId="AWS-RunShellScript", TagKeys=["k"])
        refused(ssm.list_tags_for_resource, "InvalidResourceId", ResourceType="Document", ResourceId="AWS-RunShellScript")
    finally:
        ssm.delete_document(Name=name)
    refused(ssm.list_tags_for_resource, "InvalidResourceId", ResourceType="Document", ResourceId=name)


# --- names --------------------------------------------------------------------------


def test_a_top_level_name_with_and_without_its_slash_is_one_parameter(ssm):
    name = unique("conf-solo")
    ssm.put_parameter(Name=name, Type="String", Value="first")
    try:
        got = ssm.get_parameter(Name=f"/{name}")["Parameter"]
        assert got["Value"] == "first"
        refused(ssm.put_parameter, "ParameterAlreadyExists", Name=f"/{name}", Type="String", Value="second")
        assert ssm.get_parameter(Name=name)["Parameter"]["Value"] == "first"
        assert ssm.get_parameter(Name=name)["Parameter"]["Version"] == 1
    finally:
        ssm.delete_parameter(Name=name)
