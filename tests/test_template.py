"""template.yaml is valid, and the running local stack is what it declares."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"

_spec = importlib.util.spec_from_file_location("steward_provision", ROOT / "infra" / "provision.py")
provision = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(provision)

TEMPLATE_DATA = provision.load_template(TEMPLATE)
RESOURCES = TEMPLATE_DATA["Resources"]


def of_type(rtype: str) -> list[str]:
    return [lid for lid, r in RESOURCES.items() if r["Type"] == rtype]


def props(lid: str) -> dict:
    return RESOURCES[lid].get("Properties") or {}


# --- the template alone ------------------------------------------------------------


def test_cfn_lint_passes():
    exe = Path(sys.executable).with_name("cfn-lint")
    cmd = [str(exe)] if exe.exists() else [shutil.which("cfn-lint") or "cfn-lint"]
    # Informational checks too (stateful resources' deletion policies, ...).
    result = subprocess.run(cmd + [str(TEMPLATE), "--include-checks", "I"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, f"cfn-lint found problems:\n{result.stdout}{result.stderr}"


def test_sam_validate_lint_passes():
    # The SAM CLI infra/install.sh puts in .local/sam; it needs neither an
    # AWS account nor the network for this.
    sam = ROOT / ".local" / "sam" / "bin" / "sam"
    assert sam.exists(), "no .local/sam/bin/sam: run infra/install.sh"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(SAM_CLI_TELEMETRY="0", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true", HOME=str(ROOT / ".local" / "sam"))
    for extra in ([], ["--lint"]):
        result = subprocess.run(
            [str(sam), "validate", "--region", "us-east-1", "--template-file", str(TEMPLATE), *extra],
            capture_output=True, text=True, cwd=ROOT, env=env, timeout=300,
        )
        assert result.returncode == 0, f"sam validate {' '.join(extra)}:\n{result.stdout}{result.stderr}"
        assert "is a valid SAM Template" in result.stdout


def test_functions_get_exactly_the_documented_variables():
    glob = TEMPLATE_DATA["Globals"]["Function"]["Environment"]["Variables"]
    seen = set()
    for lid in of_type("AWS::Serverless::Function"):
        own = ((props(lid).get("Environment") or {}).get("Variables")) or {}
        names = set(glob) | set(own)
        assert names <= set(provision.REQUIRED_ENV), f"{lid}: undocumented variables {names - set(provision.REQUIRED_ENV)}"
        seen |= names
    assert seen == set(provision.REQUIRED_ENV)


def test_queue_visibility_covers_six_function_timeouts():
    default_timeout = TEMPLATE_DATA["Globals"]["Function"].get("Timeout", 3)
    checked = 0
    for lid in of_type("AWS::Serverless::Function"):
        timeout = props(lid).get("Timeout", default_timeout)
        for event in (props(lid).get("Events") or {}).values():
            if event["Type"] != "SQS":
                continue
            queue = event["Properties"]["Queue"]["Fn::GetAtt"][0]
            visibility = props(queue).get("VisibilityTimeout", 30)
            assert visibility >= 6 * timeout, f"{queue}: visibility {visibility}s < 6 x {lid} timeout {timeout}s"
            assert event["Properties"].get("FunctionResponseTypes") == ["ReportBatchItemFailures"]
            assert props(queue)["RedrivePolicy"]["maxReceiveCount"] == 5
            checked += 1
    assert checked >= 2


# --- the running stack against the template ---------------------------------------

# Types the local stack has no counterpart for (see infra/provision.py).
NOT_LOCAL = set(provision.SKIPPED_TYPES)


def _key_schema(ks):
    return [(k["AttributeName"], k["KeyType"]) for k in ks]


def _indexes(ixs):
    return sorted(
        (ix["IndexName"], tuple(_key_schema(ix["KeySchema"])), ix["Projection"]["ProjectionType"]) for ix in ixs or []
    )


def test_every_template_resource_is_checked_or_not_local():
    checked = {
        "AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::KMS::Key", "AWS::Events::EventBus", "AWS::S3::Bucket",
        "AWS::IAM::Role", "AWS::SQS::QueuePolicy", "AWS::Events::Rule",
    }
    unknown = {r["Type"] for r in RESOURCES.values()} - checked - NOT_LOCAL
    assert not unknown, f"extend this test to check {unknown} against the local stack"


def test_tables_match_template(stack):
    ddb = boto3.client("dynamodb")
    tables = of_type("AWS::DynamoDB::Table")
    # Every table of the template is checked below; these must be among them.
    assert {"NodesTable", "AutomationExecutionsTable", "PatchBaselinesTable"} <= set(tables)
    for lid in tables:
        name = stack.resource(lid)["physical_id"]
        assert name == f"steward-{lid}"
        desc = ddb.describe_table(TableName=name)["Table"]
        p = props(lid)
        assert _key_schema(desc["KeySchema"]) == _key_schema(p["KeySchema"]), lid
        assert _indexes(desc.get("GlobalSecondaryIndexes")) == _indexes(p.get("GlobalSecondaryIndexes")), lid
        have = {(a["AttributeName"], a["AttributeType"]) for a in desc["AttributeDefinitions"]}
        assert have == {(a["AttributeName"], a["AttributeType"]) for a in p["AttributeDefinitions"]}, lid
        assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST", lid


def test_queues_match_template(stack):
    sqs = boto3.client("sqs")
    arns = {}
    for lid in of_type("AWS::SQS::Queue"):
        name = stack.resource(lid)["physical_id"]
        assert name == f"steward-{lid}"
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        arns[lid] = attrs["QueueArn"]
        p = props(lid)
        for key in ("VisibilityTimeout", "MessageRetentionPeriod"):
            if key in p:
                assert int(attrs[key]) == p[key], f"{lid}.{key}"
        if "RedrivePolicy" in p:
            redrive = json.loads(attrs["RedrivePolicy"])
            dlq = p["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            assert int(redrive["maxReceiveCount"]) == p["RedrivePolicy"]["maxReceiveCount"], lid
            assert redrive["deadLetterTargetArn"] == stack.resource(dlq)["attributes"]["Arn"], lid
        else:
            assert "RedrivePolicy" not in attrs, lid
    assert stack.env["STEWARD_WORK_QUEUE_URL"] == stack.resource("WorkQueue")["ref"]
    assert stack.env["STEWARD_INGEST_QUEUE_URL"] == stack.resource("IngestQueue")["ref"]
    assert stack.env["STEWARD_NODE_DLQ_ARN"] == arns["NodeDeadLetterQueue"]


def test_kms_keys_match_template(stack):
    kms = boto3.client("kms")
    for lid in of_type("AWS::KMS::Key"):
        meta = kms.describe_key(KeyId=f"alias/steward-{lid}")["KeyMetadata"]
        p = props(lid)
        assert meta["KeySpec"] == p.get("KeySpec", "SYMMETRIC_DEFAULT"), lid
        assert meta["KeyUsage"] == p.get("KeyUsage", "ENCRYPT_DECRYPT"), lid
        assert meta["KeyState"] == "Enabled", lid
        assert meta["KeyId"] == stack.resource(lid)["ref"], lid
    assert stack.env["STEWARD_DATA_KEY_ID"] == stack.resource("DataKey")["ref"]
    assert stack.env["STEWARD_SIGNING_KEY_ID"] == stack.resource("CommandSigningKey")["ref"]


def test_event_bus_matches_template(stack):
    events = boto3.client("events")
    resolver = StackResolver(stack)
    for lid in of_type("AWS::Events::EventBus"):
        name = resolver.resolve(props(lid)["Name"])
        assert events.describe_event_bus(Name=name)["Name"] == name
        assert stack.resource(lid)["ref"] == name
    # The local stack's names stay what they were (its agents and tests use them).
    assert stack.env["STEWARD_EVENT_BUS"] == "steward"
    assert stack.env["STEWARD_NODE_QUEUE_PREFIX"] == "steward-node-"
    assert stack.env["STEWARD_OUTPUT_BUCKETS"] == ""


def test_schedule_rules_reach_their_queues(stack):
    events = boto3.client("events")
    for lid in of_type("AWS::Events::Rule"):
        p = props(lid)
        rule = events.describe_rule(Name=f"steward-{lid}", EventBusName=p.get("EventBusName", "default"))
        assert rule.get("ScheduleExpression") == p.get("ScheduleExpression"), lid
        targets = events.list_targets_by_rule(Rule=f"steward-{lid}", EventBusName=p.get("EventBusName", "default"))
        have = {(t["Id"], t["Arn"]) for t in targets["Targets"]}
        want = {(t["Id"], stack.resource(t["Arn"]["Fn::GetAtt"][0])["attributes"]["Arn"]) for t in p["Targets"]}
        assert have == want, lid


class StackResolver(provision.Provisioner):
    """The provisioner's own intrinsic functions (Ref, Fn::GetAtt, Fn::Sub),
    answered from the running stack's facts: nothing is created."""

    def __init__(self, stack):
        super().__init__(TEMPLATE_DATA)
        self.stack = stack

    def ensure(self, lid: str) -> dict:
        r = self.stack.resource(lid)
        return {"Ref": r["ref"], "attrs": r["attributes"]}


def statements(document) -> set:
    """A policy's statements, each as the set of its elements (Effect,
    Action, Resource, Principal, Condition, ...) with every value a set: a
    lone value and a one-element list are the same, order does not matter,
    and a statement's Sid names it without changing what it allows."""

    def norm(value):
        if isinstance(value, dict):
            return frozenset((k, norm(v)) for k, v in value.items())
        # A policy's lists hold strings only.
        return frozenset(map(str, value if isinstance(value, list) else [value]))

    if isinstance(document, str):
        document = json.loads(document)
    return {norm({k: v for k, v in s.items() if k != "Sid"}) for s in document["Statement"]}


def test_queue_policies_are_applied(stack):
    sqs = boto3.client("sqs")
    resolver = StackResolver(stack)
    checked = 0
    for lid in of_type("AWS::SQS::QueuePolicy"):
        want = statements(resolver.resolve(props(lid)["PolicyDocument"]))
        for ref in props(lid)["Queues"]:
            url = stack.resource(ref["Ref"])["ref"]
            policy = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"]
            assert statements(policy) == want, lid
            checked += 1
    assert checked >= 1
    assert stack.env["STEWARD_SCHEDULER_QUEUE_URL"] == stack.resource("SchedulerQueue")["ref"]


def test_bucket_matches_template(stack):
    s3 = boto3.client("s3")
    for lid in of_type("AWS::S3::Bucket"):
        name = stack.resource(lid)["physical_id"]
        s3.head_bucket(Bucket=name)
        block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        assert block == props(lid)["PublicAccessBlockConfiguration"], lid
        rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
        want = props(lid)["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == want["SSEAlgorithm"], lid
        lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        want = StackResolver(stack).resolve(props(lid)["LifecycleConfiguration"]["Rules"])
        assert [(r["ID"], r["Status"], r["Expiration"]["Days"], r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
                for r in lifecycle] == [
            (w["Id"], w["Status"], int(w["ExpirationInDays"]), w["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
            for w in want
        ], lid
    assert stack.env["STEWARD_OUTPUT_BUCKET"] == "steward-output-local"


def test_roles_match_template(stack):
    iam = boto3.client("iam")
    resolver = StackResolver(stack)
    # The functions' own roles exist only when deployed (tests/test_template_iam.py checks them).
    for lid in sorted(set(of_type("AWS::IAM::Role")) - provision.function_roles(TEMPLATE_DATA)):
        name = f"steward-{lid}"
        role = iam.get_role(RoleName=name)["Role"]
        assert role["Arn"] == stack.resource(lid)["attributes"]["Arn"]
        want = resolver.resolve(props(lid))
        assert statements(role["AssumeRolePolicyDocument"]) == statements(want["AssumeRolePolicyDocument"]), lid
        # Each inline policy by what it allows; their names say nothing.
        have = Counter(
            frozenset(statements(iam.get_role_policy(RoleName=name, PolicyName=n)["PolicyDocument"]))
            for n in iam.list_role_policies(RoleName=name)["PolicyNames"]
        )
        assert have == Counter(frozenset(statements(p["PolicyDocument"])) for p in want.get("Policies", [])), lid
    assert stack.env["STEWARD_NODE_ROLE_ARN"] == stack.resource("NodeRole")["attributes"]["Arn"]


def test_admin_key_is_in_the_access_keys_table(stack):
    ddb = boto3.client("dynamodb")
    key_id = stack.facts["admin_access_key_id"]
    item = ddb.get_item(TableName=stack.env["STEWARD_ACCESS_KEYS_TABLE"], Key={"AccessKeyId": {"S": key_id}})["Item"]
    assert item["UserName"]["S"] == "admin" and item["Status"]["S"] == "Active"
    assert key_id.startswith("AKST") and len(key_id) == 20
    profile_key, profile_secret = provision.read_profile(ROOT / ".local/aws/config")
    assert profile_key == key_id
    plain = boto3.client("kms").decrypt(
        CiphertextBlob=base64.b64decode(item["SecretCiphertext"]["S"]),
        EncryptionContext={"steward:access-key-id": key_id},
    )["Plaintext"]
    assert plain.decode() == profile_secret


def test_stack_env_has_every_documented_variable(stack):
    # The provisioner refuses to write stack.env without them; this is the
    # one check that the file read here is such a file.
    assert [n for n in provision.REQUIRED_ENV if n not in stack.env] == []
    assert [n for n in provision.REQUIRED_ENV if not stack.env[n] and n not in provision.MAY_BE_EMPTY] == []


def test_the_local_api_trusts_the_test_identity_certificate_and_the_local_account(stack):
    # The template's EC2 registration parameters as provisioned locally: the
    # api function's own environment (no other function has them).
    functions = stack.facts["functions"]
    api = functions["Api"]
    assert api["STEWARD_ALLOWED_ACCOUNT_IDS"] == stack.facts["account"]
    cert = ROOT / ".local" / "ec2-identity" / "cert.pem"
    assert api["STEWARD_EC2_IDENTITY_CERTIFICATES"].split() == cert.read_text().split()
    assert [fn for fn, env in functions.items() if "STEWARD_EC2_IDENTITY_CERTIFICATES" in env] == ["Api"]
    assert stack.env["STEWARD_EC2_IDENTITY_CERTIFICATES"] == api["STEWARD_EC2_IDENTITY_CERTIFICATES"]
