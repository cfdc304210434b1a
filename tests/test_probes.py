"""Probes of the API's security and robustness, end to end: boto3, raw
signed and unsigned HTTP requests and the real AWS CLI against the running
stack, with a real agent where a command must run.

Each test would have failed before its fix: a policy bypassed through what
a document writes, resources matched without their case, policy elements
ignored, 500s for long inputs, signatures that did not bind the region or
the operation, and a wrongly typed member read anyway."""

import base64
import json
import os
import urllib.error
import urllib.request
import uuid

import botocore.config
import pytest
import requests
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from fleet import (
    aws,
    code,
    iam_client,
    key_client,
    online_fleet,
    profile,
    refused,
    restricted_key,
    ssm_client,
    wait_command_final,
)

pytestmark = pytest.mark.usefixtures("stack")

JSON_11 = "application/x-amz-json-1.1"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with online_fleet(tmp_path_factory.mktemp("probes"), probes=["node"]) as f:
        yield f


@pytest.fixture(scope="module")
def admin():
    return ssm_client()


@pytest.fixture(scope="module")
def raw_admin():
    return ssm_client(validate=False)


@pytest.fixture
def root():
    return f"/e2e-probe-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def users():
    """Makes IAM users with one inline policy and a key; deletes them after."""
    made = []

    def make(policy, user_name="probe"):
        name, key_id, secret = restricted_key(policy, user_name)
        made.append((name, key_id))
        return key_id, secret

    yield make
    iam = iam_client()
    for name, key_id in made:
        try:
            iam.delete_access_key(UserName=name, AccessKeyId=key_id)
            for policy in iam.list_user_policies(UserName=name)["PolicyNames"]:
                iam.delete_user_policy(UserName=name, PolicyName=policy)
            iam.delete_user(UserName=name)
        except ClientError as e:
            # A test may have removed its user already; anything else is a failure.
            if e.response["Error"]["Code"] != "NoSuchEntity":
                raise


def node_id(fleet):
    return fleet.agents["node"].instance_id()


def node_commands(ssm, instance_id):
    """Every command the node has, all pages of ListCommands."""
    pages = ssm.get_paginator("list_commands").paginate(InstanceId=instance_id)
    return {c["CommandId"] for page in pages for c in page["Commands"]}


def all_output(ssm, command_id):
    """Every plugin's output of every invocation of the command, joined."""
    pages = ssm.get_paginator("list_command_invocations").paginate(CommandId=command_id, Details=True)
    return "\n".join(
        p.get("Output", "") for page in pages for inv in page["CommandInvocations"] for p in inv["CommandPlugins"]
    )


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- 1. a policy is not bypassed through documents -------------------------------------


def shell_document(run_command, working_directory=None, parameters=None):
    inputs = {"runCommand": run_command}
    if working_directory is not None:
        inputs["workingDirectory"] = working_directory
    doc = {
        "schemaVersion": "2.2",
        "description": "probe",
        "mainSteps": [{"action": "aws:runShellScript", "name": "run", "inputs": inputs}],
    }
    if parameters:
        doc["parameters"] = parameters
    return json.dumps(doc)


def nested_documents(target):
    """A child whose parameter's default is a reference to `target`, and a
    parent that runs the child through aws:runDocument without giving it."""
    child = shell_document(
        ["echo child {{ word }}"],
        parameters={"word": {"type": "String", "default": f"{{{{ssm:{target}}}}}"}},
    )

    def parent(child_name):
        return json.dumps(
            {
                "schemaVersion": "2.2",
                "description": "probe parent",
                "mainSteps": [
                    {
                        "action": "aws:runDocument",
                        "name": "nested",
                        "inputs": {"documentType": "SSMDocument", "documentPath": child_name},
                    }
                ],
            }
        )

    return child, parent


def shapes(key, root, env, made):
    """The ways of sending a reference to `<root>/<env>/db-url`, as
    SendCommand arguments (without targets). Documents are created by `key`
    (their names are appended to `made`)."""
    target = f"{root}/{env}/db-url"
    ref = f"{{{{ssm:{target}}}}}"

    def create(content):
        name = unique(f"Probe-{env}")
        key.create_document(Name=name, Content=content, DocumentFormat="JSON", DocumentType="Command")
        made.append(name)
        return name

    own = create(shell_document([f"echo own {ref}"]))
    split = create(
        shell_document(
            ["echo split {{a}}{{b}}"],
            parameters={"a": {"type": "String"}, "b": {"type": "String"}},
        )
    )
    child_content, parent_content = nested_documents(target)
    child = create(child_content)
    parent = create(parent_content(child))
    workdir = create(shell_document(["pwd"], working_directory=ref))
    return {
        "parameter": dict(DocumentName="AWS-RunShellScript", Parameters={"commands": [f"echo param {ref}"]}),
        "document text": dict(DocumentName=own),
        "split across parameters": dict(
            DocumentName=split, Parameters={"a": [f"{{{{ssm:{root}/{env}"], "b": ["/db-url}}"]}
        ),
        "nested default": dict(DocumentName=parent),
        "document workingDirectory": dict(DocumentName=workdir),
        "workingDirectory parameter": dict(
            DocumentName="AWS-RunShellScript", Parameters={"commands": ["pwd"], "workingDirectory": [ref]}
        ),
    }


def test_references_a_key_may_not_read_are_refused_however_a_document_forms_them(fleet, admin, root, users, tmp_path):
    prod_value = f"postgres://prod-{uuid.uuid4().hex}"
    # The dev value is a directory, so it also serves as a working directory.
    dev_dir = tmp_path / f"dev-{uuid.uuid4().hex[:8]}"
    dev_dir.mkdir()
    dev_value = str(dev_dir.resolve())
    admin.put_parameter(Name=f"{root}/prod/db-url", Type="String", Value=prod_value)
    admin.put_parameter(Name=f"{root}/dev/db-url", Type="String", Value=dev_value)
    key = key_client(
        "ssm",
        *users(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": [
                            "ssm:SendCommand",
                            "ssm:CreateDocument",
                            "ssm:ListCommands",
                            "ssm:ListCommandInvocations",
                            "ssm:GetCommandInvocation",
                        ],
                        "Resource": "*",
                    },
                    {
                        "Effect": "Allow",
                        "Action": "ssm:GetParameters",
                        "Resource": f"arn:aws:ssm:*:*:parameter{root}/dev/*",
                    },
                ],
            },
            "doc-prober",
        ),
    )
    node = node_id(fleet)
    made = []
    outputs = []
    try:
        prod = shapes(key, root, "prod", made)
        dev = shapes(key, root, "dev", made)
        before = node_commands(admin, node)
        for shape, request in prod.items():
            with pytest.raises(ClientError) as e:
                key.send_command(InstanceIds=[node], **request)
            assert code(e) == "AccessDeniedException", (shape, e.value.response)
            assert prod_value not in e.value.response["Error"]["Message"]
        assert node_commands(admin, node) == before, "a refused send created a command"

        expected = {
            "parameter": f"param {dev_value}",
            "document text": f"own {dev_value}",
            "split across parameters": f"split {dev_value}",
            "nested default": f"child {dev_value}",
            "document workingDirectory": dev_value,
            "workingDirectory parameter": dev_value,
        }
        for shape, request in dev.items():
            cid = key.send_command(InstanceIds=[node], **request)["Command"]["CommandId"]
            try:
                final = wait_command_final(key, cid)
            except AssertionError as e:
                invs = key.list_command_invocations(CommandId=cid, Details=True)["CommandInvocations"]
                raise AssertionError(f"{shape}: {e}; invocations: {invs!r}") from None
            out = all_output(key, cid)
            outputs.append(out)
            assert final["Status"] == "Success", (shape, final, out)
            assert expected[shape] in out, (shape, out)
            # What the record shows is the reference as written, never the value.
            assert dev_value not in json.dumps(key.list_commands(CommandId=cid), default=str)
    finally:
        for name in made:
            admin.delete_document(Name=name)
    for out in outputs:
        assert prod_value not in out
    for cid in node_commands(admin, node) - before:
        assert prod_value not in all_output(admin, cid)


# --- 2. resources match with their case ------------------------------------------------


def test_resources_match_case_sensitively(admin, users):
    hexid = uuid.uuid4().hex[:10]
    root = f"/E2E-Case-{hexid}"
    for name, value in [
        (f"{root}/dev/x", "dev"),
        (f"{root}/DEV/x", "upper"),
        (f"{root.lower()}/dev/x", "lower"),
    ]:
        admin.put_parameter(Name=name, Type="String", Value=value)
    key = key_client(
        "ssm",
        *users(
            {
                "Statement": [
                    {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": f"arn:aws:ssm:*:*:parameter{root}/dev/*"}
                ]
            },
            "case",
        ),
    )
    try:
        assert key.get_parameter(Name=f"{root}/dev/x")["Parameter"]["Value"] == "dev"
        refused(key.get_parameter, "AccessDeniedException", Name=f"{root}/DEV/x")
        refused(key.get_parameter, "AccessDeniedException", Name=f"{root.lower()}/dev/x")
    finally:
        admin.delete_parameters(Names=[f"{root}/dev/x", f"{root}/DEV/x", f"{root.lower()}/dev/x"])


# --- 3. policy elements ----------------------------------------------------------------


def test_not_resource_on_an_allow_is_evaluated(admin, root, users):
    admin.put_parameter(Name=f"{root}/open/x", Type="String", Value="open")
    admin.put_parameter(Name=f"{root}/secret/x", Type="String", Value="closed")
    admin.put_parameter(Name=f"{root}/secretive", Type="String", Value="beside")
    key = key_client(
        "ssm",
        *users(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "ssm:GetParameter",
                        "NotResource": f"arn:aws:ssm:*:*:parameter{root}/secret/*",
                    }
                ]
            },
            "notresource",
        ),
    )
    assert key.get_parameter(Name=f"{root}/open/x")["Parameter"]["Value"] == "open"
    assert key.get_parameter(Name=f"{root}/secretive")["Parameter"]["Value"] == "beside"
    message = refused(key.get_parameter, "AccessDeniedException", Name=f"{root}/secret/x")
    assert "closed" not in message
    # NotResource allows only the action it names.
    refused(key.put_parameter, "AccessDeniedException", Name=f"{root}/open/y", Type="String", Value="y")
    admin.delete_parameters(Names=[f"{root}/open/x", f"{root}/secret/x", f"{root}/secretive"])


@pytest.mark.parametrize(
    "extra",
    [
        {"Condition": {"StringEquals": {"aws:username": "someone"}}},
        {"Principal": "*"},
        {"Principal": {"AWS": "arn:aws:iam::123456789012:root"}},
        {"Unexpected": "element"},
    ],
    ids=["Condition", "Principal-star", "Principal-arn", "unknown-element"],
)
def test_policy_elements_steward_does_not_evaluate_are_malformed(extra):
    iam = iam_client()
    user = unique("elements")
    iam.create_user(UserName=user)
    statement = {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*", **extra}
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    try:
        with pytest.raises(ClientError) as e:
            iam.put_user_policy(UserName=user, PolicyName="widened", PolicyDocument=document)
        assert code(e) == "MalformedPolicyDocument", e.value.response
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert iam.list_user_policies(UserName=user)["PolicyNames"] == []
        with pytest.raises(ClientError) as e:
            iam.get_user_policy(UserName=user, PolicyName="widened")
        assert code(e) == "NoSuchEntity"
        # The AWS CLI is refused the same way.
        proc = aws(
            "iam", "put-user-policy", "--user-name", user, "--policy-name", "widened",
            "--policy-document", document, check=False,
        )
        assert proc.returncode != 0 and "MalformedPolicyDocument" in proc.stderr
        assert aws("iam", "list-user-policies", "--user-name", user)["PolicyNames"] == []
    finally:
        iam.delete_user(UserName=user)


# --- 4. long inputs are 4xx, never 500 ------------------------------------------------------


SMALL_DOC = json.dumps(
    {
        "schemaVersion": "2.2",
        "description": "probe",
        "mainSteps": [{"action": "aws:runShellScript", "name": "run", "inputs": {"runCommand": ["true"]}}],
    }
)


def self_documents(ssm):
    pages = ssm.get_paginator("list_documents").paginate(Filters=[{"Key": "Owner", "Values": ["Self"]}])
    return {d["Name"] for page in pages for d in page["DocumentIdentifiers"]}


def validation_error(call, member, **kwargs):
    message = refused(call, "ValidationException", **kwargs)
    assert message.startswith("1 validation error detected: Value '"), message
    assert f"at '{member}'" in message, message
    return message


def test_3000_character_document_names_are_validation_errors(fleet, raw_admin):
    prefix = unique("Long")
    name = prefix + "a" * (3000 - len(prefix))
    assert len(name) == 3000
    ssm = raw_admin
    validation_error(ssm.create_document, "name", Name=name, Content=SMALL_DOC, DocumentFormat="JSON")
    validation_error(ssm.describe_document, "name", Name=name)
    validation_error(ssm.get_document, "name", Name=name)
    validation_error(ssm.update_document, "name", Name=name, Content=SMALL_DOC, DocumentVersion="$LATEST")
    validation_error(ssm.delete_document, "name", Name=name)
    validation_error(ssm.list_document_versions, "name", Name=name)
    validation_error(ssm.update_document_default_version, "name", Name=name, DocumentVersion="1")
    assert not any(d.startswith(prefix) for d in self_documents(ssm))

    node = node_id(fleet)
    before = node_commands(ssm, node)
    validation_error(
        ssm.send_command, "documentName", DocumentName=name, InstanceIds=[node], Parameters={"commands": ["true"]}
    )
    assert node_commands(ssm, node) == before


def test_a_3001_character_parameter_resource_id_is_an_invalid_resource_id(raw_admin, root):
    resource = root + "/" + "p" * (3001 - len(root) - 1)
    assert len(resource) == 3001
    ssm = raw_admin
    refused(
        ssm.add_tags_to_resource, "InvalidResourceId",
        ResourceType="Parameter", ResourceId=resource, Tags=[{"Key": "k", "Value": "v"}],
    )
    refused(ssm.remove_tags_from_resource, "InvalidResourceId", ResourceType="Parameter", ResourceId=resource, TagKeys=["k"])
    refused(ssm.list_tags_for_resource, "InvalidResourceId", ResourceType="Parameter", ResourceId=resource)
    found = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Option": "BeginsWith", "Values": [root]}])
    assert found["Parameters"] == []


def test_long_activation_ids(raw_admin):
    long_id = "a" * 3000
    message = refused(raw_admin.delete_activation, "ValidationException", ActivationId=long_id)
    assert message.startswith("1 validation error detected: Value '") and "at 'activationId'" in message
    out = raw_admin.describe_activations(Filters=[{"FilterKey": "ActivationIds", "FilterValues": [long_id]}])
    assert out["ActivationList"] == []


def test_unsigned_registration_with_a_long_activation_id_is_invalid_activation():
    body = json.dumps(
        {
            "ActivationId": "a" * 3000,
            "ActivationCode": "x",
            "PublicKey": base64.b64encode(os.urandom(32)).decode(),
        }
    ).encode()
    req = urllib.request.Request(
        profile()["endpoint_url"],
        data=body,
        method="POST",
        headers={"X-Amz-Target": "Steward.RegisterManagedInstance", "Content-Type": JSON_11},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, answer = resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        status, answer = e.code, json.loads(e.read())
    assert 400 <= status < 500, (status, answer)
    assert answer["__type"] == "InvalidActivation", answer


def test_100000_command_lines_are_invalid_parameters(fleet, raw_admin):
    node = node_id(fleet)
    before = node_commands(raw_admin, node)
    # 100,000 short lines: within the endpoint's 1 MiB body, far over a command's parameters.
    lines = ["true"] * 100_000
    refused(
        raw_admin.send_command, "InvalidParameters",
        DocumentName="AWS-RunShellScript", InstanceIds=[node], Parameters={"commands": lines},
    )
    assert node_commands(raw_admin, node) == before


# --- 5. SigV4 binds the region and the operation -----------------------------------------


def signed_request(target, body, sign_target=True, region=None):
    """A SigV4-signed SSM request for the admin key. With `sign_target`
    False, X-Amz-Target is added only after signing (so it is not among the
    signed headers)."""
    p = profile()
    headers = {"Content-Type": JSON_11}
    if sign_target:
        headers["X-Amz-Target"] = target
    req = AWSRequest(method="POST", url=p["endpoint_url"], data=body, headers=headers)
    creds = Credentials(p["aws_access_key_id"], p["aws_secret_access_key"])
    SigV4Auth(creds, "ssm", region or p["region"]).add_auth(req)
    if not sign_target:
        req.headers["X-Amz-Target"] = target
    return req


def send(req):
    prepared = req.prepare()
    resp = requests.post(prepared.url, data=prepared.body, headers=dict(prepared.headers), timeout=30)
    try:
        answer = resp.json()
    except ValueError:
        answer = {"raw": resp.text}
    return resp.status_code, answer


def test_a_signature_for_another_region_is_refused(admin, root):
    name = f"{root}/target"
    admin.put_parameter(Name=name, Type="String", Value="kept")
    p = profile()
    assert p["region"] != "eu-west-1"
    import boto3

    elsewhere = boto3.client(
        "ssm",
        endpoint_url=p["endpoint_url"],
        region_name="eu-west-1",
        aws_access_key_id=p["aws_access_key_id"],
        aws_secret_access_key=p["aws_secret_access_key"],
        config=botocore.config.Config(retries={"max_attempts": 1}),
    )
    refused(elsewhere.delete_parameter, "InvalidSignatureException", Name=name)
    refused(elsewhere.put_parameter, "InvalidSignatureException", Name=f"{root}/new", Type="String", Value="x")
    assert admin.get_parameter(Name=name)["Parameter"]["Value"] == "kept"
    refused(admin.get_parameter, "ParameterNotFound", Name=f"{root}/new")
    # Signed by hand for the other region: the same answer.
    status, answer = send(
        signed_request("AmazonSSM.DeleteParameter", json.dumps({"Name": name}), region="eu-west-1")
    )
    assert status == 400 and answer.get("__type") == "InvalidSignatureException", (status, answer)
    assert admin.get_parameter(Name=name)["Parameter"]["Value"] == "kept"
    admin.delete_parameter(Name=name)


def test_an_unsigned_target_cannot_replay_a_signed_body(admin, root):
    name = f"{root}/target"
    admin.put_parameter(Name=name, Type="String", Value="kept")
    body = json.dumps({"Name": name})
    # The control: the same body, with its target signed, is served.
    status, answer = send(signed_request("AmazonSSM.GetParameter", body))
    assert status == 200 and answer["Parameter"]["Value"] == "kept", answer

    # Signed without X-Amz-Target, sent as DeleteParameter: refused.
    status, answer = send(signed_request("AmazonSSM.DeleteParameter", body, sign_target=False))
    assert status == 400 and answer.get("__type") == "InvalidSignatureException", (status, answer)
    assert admin.get_parameter(Name=name)["Parameter"]["Value"] == "kept"

    # Signed as GetParameter, the target changed afterwards: the signature no longer matches.
    req = signed_request("AmazonSSM.GetParameter", body)
    req.headers.replace_header("X-Amz-Target", "AmazonSSM.DeleteParameter")
    status, answer = send(req)
    assert status == 400 and answer.get("__type") == "InvalidSignatureException", (status, answer)
    assert admin.get_parameter(Name=name)["Parameter"]["Value"] == "kept"
    admin.delete_parameter(Name=name)


# --- 6. a member of the wrong JSON type ---------------------------------------------------


def test_cloudwatch_output_config_of_a_wrong_type_is_a_serialization_error(fleet, raw_admin):
    node = node_id(fleet)
    before = node_commands(raw_admin, node)
    marker = unique("cw")
    # botocore cannot even serialize a string there: the request is signed by hand.
    for wrong in ["enabled", ["x"], 7]:
        body = json.dumps(
            {
                "DocumentName": "AWS-RunShellScript",
                "InstanceIds": [node],
                "Parameters": {"commands": [f"echo {marker}"]},
                "CloudWatchOutputConfig": wrong,
            }
        )
        status, answer = send(signed_request("AmazonSSM.SendCommand", body))
        assert status == 400 and answer.get("__type") == "SerializationException", (wrong, status, answer)
    # The control: the same request with an object is sent.
    body = json.dumps(
        {
            "DocumentName": "AWS-RunShellScript",
            "InstanceIds": [node],
            "Parameters": {"commands": [f"echo {marker}"]},
            "CloudWatchOutputConfig": {"CloudWatchOutputEnabled": False},
        }
    )
    assert node_commands(raw_admin, node) == before
    status, answer = send(signed_request("AmazonSSM.SendCommand", body))
    assert status == 200, answer
    final = wait_command_final(raw_admin, answer["Command"]["CommandId"])
    assert final["Status"] == "Success" and marker in all_output(raw_admin, final["CommandId"])
