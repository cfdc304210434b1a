#!/usr/bin/env python3
"""Provision the local stack from template.yaml.

Run with the project venv after `infra/stack.sh start`:

    .local/venv/bin/python infra/provision.py

Reads template.yaml (the single source of truth for resources) and creates
each resource it declares in the local emulators: DynamoDB tables in DynamoDB
Local, everything else in LocalStack. Idempotent: a resource that exists is
reused (and its settings re-applied where the API allows). Then it makes sure
the IAM user `admin` (inline policy allowing everything) and its access key
exist and writes:

    .local/stack.env     `export VAR=value` lines for the functions, tests, tools
    .local/stack.json    the same facts as JSON, plus resources and the admin key id
    .local/aws/config    profile `steward` pointing the AWS CLI at the local API

Local physical names: `steward-<LogicalId>` for tables and queues, the
template's Name for the bus, `steward-<name>-local` for buckets,
`steward-<LogicalId>` for IAM roles; KMS keys are found again by their alias
`alias/steward-<LogicalId>`.

Environment: STEWARD_LOCALSTACK_PORT (4566), STEWARD_DYNAMODB_PORT (8000),
STEWARD_API_PORT (7070), STEWARD_CONNECTION_LOST_SECONDS (30 locally).
"""

from __future__ import annotations

import base64
import configparser
import json
import os
import re
import secrets
import sys
import time
from pathlib import Path
from typing import Any, Callable

import boto3
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
TEMPLATE = ROOT / "template.yaml"

REGION = "us-east-1"
LOCALSTACK_PORT = int(os.environ.get("STEWARD_LOCALSTACK_PORT", "4566"))
DYNAMODB_PORT = int(os.environ.get("STEWARD_DYNAMODB_PORT", "8000"))
API_PORT = int(os.environ.get("STEWARD_API_PORT", "7070"))
LOCALSTACK_URL = f"http://127.0.0.1:{LOCALSTACK_PORT}"
DYNAMODB_URL = f"http://127.0.0.1:{DYNAMODB_PORT}"
API_URL = f"http://127.0.0.1:{API_PORT}"

PREFIX = "steward-"

# Template parameters whose local value differs from the template's default.
LOCAL_PARAMETERS = {
    "ConnectionLostSeconds": os.environ.get("STEWARD_CONNECTION_LOST_SECONDS", "30"),
}

# Every variable of docs/internals.md ("Function environment"). The template's
# functions must declare each of them; stack.env carries them all.
REQUIRED_ENV = [
    "STEWARD_NODES_TABLE",
    "STEWARD_TAG_INDEX_TABLE",
    "STEWARD_ACTIVATIONS_TABLE",
    "STEWARD_COMMANDS_TABLE",
    "STEWARD_INVOCATIONS_TABLE",
    "STEWARD_ACCESS_KEYS_TABLE",
    "STEWARD_WORK_QUEUE_URL",
    "STEWARD_INGEST_QUEUE_URL",
    "STEWARD_NODE_DLQ_ARN",
    "STEWARD_NODE_QUEUE_PREFIX",
    "STEWARD_OUTPUT_BUCKET",
    "STEWARD_DATA_KEY_ID",
    "STEWARD_SIGNING_KEY_ID",
    "STEWARD_EVENT_BUS",
    "STEWARD_NODE_ROLE_ARN",
    "STEWARD_CONNECTION_LOST_SECONDS",
    "STEWARD_PARAMETERS_TABLE",
    "STEWARD_DOCUMENTS_TABLE",
    "STEWARD_ACCOUNT_ID",
    "STEWARD_SCHEDULER_QUEUE_URL",
    "STEWARD_USERS_TABLE",
]

# Resource types that exist only in a deployed stack. They are reported and
# skipped; any other type without a handler below is an error.
SKIPPED_TYPES = {
    "AWS::Serverless::Function": "runs locally from the same code",
    "AWS::Lambda::Function": "runs locally from the same code",
    "AWS::Lambda::Permission": "functions are not deployed locally",
    "AWS::Lambda::Url": "the api runs on a local port",
    "AWS::Lambda::EventSourceMapping": "local pollers play the event source mappings",
    "AWS::IAM::Policy": "attaches to function roles, which exist only when deployed",
    "AWS::Logs::LogGroup": "functions log to the terminal locally",
}

ACCESS_KEY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
SECRET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+"
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


class ProvisionError(Exception):
    pass


# --- template -------------------------------------------------------------------


class TemplateLoader(yaml.SafeLoader):
    """SafeLoader that turns CloudFormation short-form tags into their long
    form: `!Ref X` -> {"Ref": "X"}, `!GetAtt A.B` -> {"Fn::GetAtt": ["A", "B"]},
    `!Sub ...` -> {"Fn::Sub": ...}, and so on for every `!Tag`."""


def _construct_intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


TemplateLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path = TEMPLATE) -> dict:
    with open(path) as f:
        return yaml.load(f, Loader=TemplateLoader)  # noqa: S506 (SafeLoader subclass)


# --- AWS clients ----------------------------------------------------------------


def client(service: str):
    endpoint = DYNAMODB_URL if service == "dynamodb" else LOCALSTACK_URL
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=30),
    )


def error_code(e: ClientError) -> str:
    return e.response.get("Error", {}).get("Code", "")


# --- provisioning -----------------------------------------------------------------


NO_VALUE = object()


class Provisioner:
    def __init__(self, template: dict):
        self.template = template
        self.resources: dict[str, dict] = template.get("Resources") or {}
        self.functions = {
            lid for lid, r in self.resources.items() if r.get("Type") == "AWS::Serverless::Function"
        }
        self.done: dict[str, dict] = {}
        self.in_progress: list[str] = []
        self.report: list[tuple[str, str, str, str]] = []  # (logical id, type, action, physical)
        self.skipped: list[tuple[str, str, str]] = []
        self.ddb = client("dynamodb")
        self.sqs = client("sqs")
        self.kms = client("kms")
        self.events = client("events")
        self.s3 = client("s3")
        self.iam = client("iam")
        self.account = client("sts").get_caller_identity()["Account"]
        self.parameters = self._parameters()
        self.handlers: dict[str, Callable[[str, dict], dict]] = {
            "AWS::DynamoDB::Table": self.table,
            "AWS::SQS::Queue": self.queue,
            "AWS::SQS::QueuePolicy": self.queue_policy,
            "AWS::KMS::Key": self.kms_key,
            "AWS::Events::EventBus": self.event_bus,
            "AWS::Events::Rule": self.event_rule,
            "AWS::S3::Bucket": self.bucket,
            "AWS::IAM::Role": self.role,
        }

    # --- parameters and intrinsic functions --------------------------------------

    def _parameters(self) -> dict[str, str]:
        values = {}
        for name, spec in (self.template.get("Parameters") or {}).items():
            if name in LOCAL_PARAMETERS:
                values[name] = str(LOCAL_PARAMETERS[name])
            elif "Default" in spec:
                values[name] = str(spec["Default"])
            else:
                raise ProvisionError(f"parameter {name} has no Default and no local value")
        return values

    def pseudo(self, name: str) -> Any:
        return {
            "AWS::Region": REGION,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::StackName": "steward",
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{self.account}:stack/steward/local",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": NO_VALUE,
        }[name]

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name.startswith("AWS::"):
            return self.pseudo(name)
        return self.ensure(name)["Ref"]

    def get_att(self, lid: str, attr: str) -> Any:
        if lid not in self.resources:
            implied = self.implied_attribute(lid, attr)
            if implied is not None:
                return implied
        res = self.ensure(lid)
        if attr not in res["attrs"]:
            raise ProvisionError(f"{lid}: attribute {attr} is not available locally")
        return res["attrs"][attr]

    def implied_attribute(self, lid: str, attr: str) -> Any:
        """Resources that SAM generates for a function. Locally the functions run
        with the stack's own credentials (the account root) and the api serves
        on a local port."""
        for fn in self.functions:
            if lid == f"{fn}Role" and attr == "Arn":
                return f"arn:aws:iam::{self.account}:root"
            if lid == f"{fn}Url" and attr == "FunctionUrl":
                return f"{API_URL}/"
        return None

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            out = [self.resolve(v) for v in value]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                lid, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(lid, attr)
            if key == "Fn::Sub":
                return self.sub(arg)
            if key == "Fn::Join":
                delim, items = arg
                return delim.join(str(v) for v in self.resolve(items))
            if key == "Fn::Select":
                index, items = self.resolve(arg)
                return items[int(index)]
            if key == "Fn::Split":
                delim, text = self.resolve(arg)
                return text.split(delim)
            if key == "Fn::Base64":
                return base64.b64encode(str(self.resolve(arg)).encode()).decode()
            if key.startswith("Fn::"):
                raise ProvisionError(f"intrinsic {key} is not supported locally")
        out = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    def sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}

        def repl(m: re.Match) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                lid, attr = name.split(".", 1)
                return str(self.get_att(lid, attr))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", repl, text)

    # --- driver ---------------------------------------------------------------------

    def run(self) -> None:
        for lid in self.resources:
            self.ensure(lid)

    def ensure(self, lid: str) -> dict:
        if lid in self.done:
            return self.done[lid]
        if lid not in self.resources:
            raise ProvisionError(f"reference to unknown resource {lid}")
        if lid in self.in_progress:
            raise ProvisionError("reference cycle: " + " -> ".join(self.in_progress + [lid]))
        rtype = self.resources[lid].get("Type", "")
        if rtype in SKIPPED_TYPES:
            self.skipped.append((lid, rtype, SKIPPED_TYPES[rtype]))
            self.done[lid] = {"Ref": None, "attrs": {}, "type": rtype, "skipped": True}
            return self.done[lid]
        handler = self.handlers.get(rtype)
        if handler is None:
            raise ProvisionError(
                f"{lid}: resource type {rtype} is not known to infra/provision.py; "
                "teach it to create the resource locally, or add the type to SKIPPED_TYPES "
                "if it has no local counterpart"
            )
        self.in_progress.append(lid)
        try:
            props = self.resolve(self.resources[lid].get("Properties") or {})
            result = handler(lid, props)
        except (ClientError, ParamValidationError) as e:
            raise ProvisionError(f"{lid} ({rtype}): {e}") from e
        finally:
            self.in_progress.pop()
        result["type"] = rtype
        self.done[lid] = result
        return result

    def note(self, lid: str, action: str, physical: str) -> None:
        self.report.append((lid, self.resources[lid]["Type"], action, physical))

    @staticmethod
    def check_props(lid: str, props: dict, handled: set[str], ignored: set[str]) -> None:
        unknown = set(props) - handled - ignored
        if unknown:
            raise ProvisionError(
                f"{lid}: properties {sorted(unknown)} are not applied locally by infra/provision.py; "
                "teach it to apply them (or list them as ignored locally)"
            )

    # --- DynamoDB -------------------------------------------------------------------

    def table(self, lid: str, p: dict) -> dict:
        self.check_props(
            lid, p,
            {"TableName", "BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes",
             "LocalSecondaryIndexes", "ProvisionedThroughput", "StreamSpecification", "TimeToLiveSpecification"},
            {"PointInTimeRecoverySpecification", "SSESpecification", "Tags", "DeletionProtectionEnabled",
             "TableClass", "ContributorInsightsSpecification"},
        )
        name = p.get("TableName") or PREFIX + lid
        billing = p.get("BillingMode", "PROVISIONED")
        args: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": p["AttributeDefinitions"],
            "KeySchema": p["KeySchema"],
            "BillingMode": billing,
        }
        throughput = p.get("ProvisionedThroughput") or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        if billing == "PROVISIONED":
            args["ProvisionedThroughput"] = throughput
        for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if p.get(kind):
                indexes = []
                for ix in p[kind]:
                    ix = {k: v for k, v in ix.items() if k in ("IndexName", "KeySchema", "Projection")}
                    if billing == "PROVISIONED" and kind == "GlobalSecondaryIndexes":
                        ix["ProvisionedThroughput"] = throughput
                    indexes.append(ix)
                args[kind] = indexes
        if p.get("StreamSpecification"):
            args["StreamSpecification"] = {"StreamEnabled": True, **p["StreamSpecification"]}
        try:
            desc = self.ddb.describe_table(TableName=name)["Table"]
            desc, added = self.add_missing_indexes(name, desc, args)
            self.check_table(lid, name, desc, args)
            action = f"indexed ({', '.join(added)})" if added else "exists"
        except ClientError as e:
            if error_code(e) != "ResourceNotFoundException":
                raise
            desc = self.ddb.create_table(**args)["TableDescription"]
            self.ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
            desc = self.ddb.describe_table(TableName=name)["Table"]
            action = "created"
        ttl = p.get("TimeToLiveSpecification")
        if ttl and ttl.get("Enabled") and action == "created":
            self.ddb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )
        self.note(lid, action, name)
        attrs = {"Arn": desc["TableArn"]}
        if desc.get("LatestStreamArn"):
            attrs["StreamArn"] = desc["LatestStreamArn"]
        return {"Ref": name, "attrs": attrs, "physical": name}

    @staticmethod
    def table_shape(desc: dict) -> dict:
        def keys(ks):
            return [(k["AttributeName"], k["KeyType"]) for k in ks]

        def indexes(ixs):
            return sorted(
                (ix["IndexName"], tuple(keys(ix["KeySchema"])), ix["Projection"]["ProjectionType"],
                 tuple(sorted(ix["Projection"].get("NonKeyAttributes", []))))
                for ix in ixs or []
            )

        return {
            "KeySchema": keys(desc["KeySchema"]),
            "AttributeDefinitions": sorted((a["AttributeName"], a["AttributeType"]) for a in desc["AttributeDefinitions"]),
            "GlobalSecondaryIndexes": indexes(desc.get("GlobalSecondaryIndexes")),
            "LocalSecondaryIndexes": indexes(desc.get("LocalSecondaryIndexes")),
        }

    def add_missing_indexes(self, name: str, desc: dict, wanted: dict) -> tuple[dict, list[str]]:
        """Creates the global secondary indexes the template added to a table
        that exists, so a running stack takes a new index without a restart.
        Anything else that differs is left to check_table."""
        have = {ix["IndexName"] for ix in desc.get("GlobalSecondaryIndexes") or []}
        missing = [ix for ix in wanted.get("GlobalSecondaryIndexes") or [] if ix["IndexName"] not in have]
        if not missing or self.table_shape(desc)["KeySchema"] != self.table_shape(wanted)["KeySchema"]:
            return desc, []
        for ix in missing:
            self.ddb.update_table(
                TableName=name,
                AttributeDefinitions=wanted["AttributeDefinitions"],
                GlobalSecondaryIndexUpdates=[{"Create": ix}],
            )
            for _ in range(100):
                desc = self.ddb.describe_table(TableName=name)["Table"]
                states = {i["IndexName"]: i.get("IndexStatus") for i in desc.get("GlobalSecondaryIndexes") or []}
                if states.get(ix["IndexName"]) == "ACTIVE":
                    break
                time.sleep(0.2)
        return desc, [ix["IndexName"] for ix in missing]

    def check_table(self, lid: str, name: str, desc: dict, wanted: dict) -> None:
        have, want = self.table_shape(desc), self.table_shape(wanted)
        if have != want:
            diff = {k: {"local": have[k], "template": want[k]} for k in want if have[k] != want[k]}
            raise ProvisionError(
                f"{lid}: table {name} exists with another schema than template.yaml: {diff}. "
                "DynamoDB Local is in memory: restart the stack (infra/stack.sh stop; infra/stack.sh start) "
                "and provision again"
            )

    # --- SQS --------------------------------------------------------------------------

    QUEUE_ATTRIBUTES = {
        "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
        "VisibilityTimeout", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled",
        "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit",
        "RedrivePolicy", "RedriveAllowPolicy",
    }

    def queue(self, lid: str, p: dict) -> dict:
        self.check_props(lid, p, self.QUEUE_ATTRIBUTES | {"QueueName"}, {"Tags"})
        name = p.get("QueueName") or PREFIX + lid + (".fifo" if p.get("FifoQueue") else "")
        attributes = {}
        for key in self.QUEUE_ATTRIBUTES & set(p):
            value = p[key]
            if isinstance(value, dict):
                value = json.dumps(value, separators=(",", ":"))
            elif isinstance(value, bool):
                value = "true" if value else "false"
            attributes[key] = str(value)
        try:
            url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            settable = {k: v for k, v in attributes.items() if k != "FifoQueue"}
            if settable:
                self.sqs.set_queue_attributes(QueueUrl=url, Attributes=settable)
            action = "exists"
        except ClientError as e:
            if error_code(e) not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
                raise
            url = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
            action = "created"
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.note(lid, action, name)
        return {"Ref": url, "attrs": {"Arn": arn, "QueueName": name, "QueueUrl": url}, "physical": name}

    def queue_policy(self, lid: str, p: dict) -> dict:
        self.check_props(lid, p, {"Queues", "PolicyDocument"}, set())
        policy = json.dumps(p["PolicyDocument"], separators=(",", ":"))
        for url in p["Queues"]:
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        self.note(lid, "applied", ", ".join(u.rsplit("/", 1)[-1] for u in p["Queues"]))
        return {"Ref": lid, "attrs": {}, "physical": lid}

    # --- KMS ----------------------------------------------------------------------------

    def kms_key(self, lid: str, p: dict) -> dict:
        self.check_props(
            lid, p,
            {"KeySpec", "KeyUsage", "Description", "KeyPolicy", "EnableKeyRotation", "RotationPeriodInDays",
             "Enabled", "Origin"},
            {"PendingWindowInDays", "Tags", "MultiRegion", "BypassPolicyLockoutSafetyCheck"},
        )
        if p.get("Origin", "AWS_KMS") != "AWS_KMS":
            raise ProvisionError(f"{lid}: only Origin AWS_KMS is supported locally")
        alias = f"alias/{PREFIX}{lid}"
        spec = p.get("KeySpec", "SYMMETRIC_DEFAULT")
        usage = p.get("KeyUsage", "ENCRYPT_DECRYPT")
        meta = None
        try:
            meta = self.kms.describe_key(KeyId=alias)["KeyMetadata"]
        except ClientError as e:
            if error_code(e) != "NotFoundException":
                raise
        if meta is not None:
            if meta.get("KeyState") != "Enabled" or meta.get("KeySpec") != spec or meta.get("KeyUsage") != usage:
                raise ProvisionError(
                    f"{lid}: {alias} names key {meta['KeyId']} ({meta.get('KeySpec')}, {meta.get('KeyUsage')}, "
                    f"{meta.get('KeyState')}), not an enabled {spec}/{usage} key; restart the stack"
                )
            action = "exists"
        else:
            args: dict[str, Any] = {"KeySpec": spec, "KeyUsage": usage}
            if p.get("Description"):
                args["Description"] = p["Description"]
            if p.get("KeyPolicy"):
                args["Policy"] = json.dumps(p["KeyPolicy"])
            meta = self.kms.create_key(**args)["KeyMetadata"]
            self.kms.create_alias(AliasName=alias, TargetKeyId=meta["KeyId"])
            action = "created"
        key_id = meta["KeyId"]
        if p.get("EnableKeyRotation"):
            rot: dict[str, Any] = {"KeyId": key_id}
            if p.get("RotationPeriodInDays"):
                rot["RotationPeriodInDays"] = int(p["RotationPeriodInDays"])
            self.kms.enable_key_rotation(**rot)
        if p.get("Enabled") is False:
            self.kms.disable_key(KeyId=key_id)
        self.note(lid, action, f"{alias} -> {key_id}")
        return {"Ref": key_id, "attrs": {"Arn": meta["Arn"], "KeyId": key_id}, "physical": key_id, "alias": alias}

    # --- EventBridge ---------------------------------------------------------------------

    def event_bus(self, lid: str, p: dict) -> dict:
        self.check_props(lid, p, {"Name", "Description"}, {"Tags", "DeadLetterConfig", "KmsKeyIdentifier", "Policy", "LogConfig"})
        name = p["Name"]
        try:
            arn = self.events.describe_event_bus(Name=name)["Arn"]
            action = "exists"
        except ClientError as e:
            if error_code(e) != "ResourceNotFoundException":
                raise
            args = {"Name": name}
            if p.get("Description"):
                args["Description"] = p["Description"]
            arn = self.events.create_event_bus(**args)["EventBusArn"]
            action = "created"
        self.note(lid, action, name)
        return {"Ref": name, "attrs": {"Arn": arn, "Name": name}, "physical": name}

    def event_rule(self, lid: str, p: dict) -> dict:
        self.check_props(
            lid, p,
            {"Name", "EventBusName", "EventPattern", "ScheduleExpression", "State", "Description", "Targets"},
            {"RoleArn", "Tags"},
        )
        name = p.get("Name") or PREFIX + lid
        bus = p.get("EventBusName", "default")
        bus = bus.rsplit("/", 1)[-1]  # an ARN is accepted as well as a name
        args: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": p.get("State", "ENABLED")}
        if "EventPattern" in p:
            pattern = p["EventPattern"]
            args["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        if "ScheduleExpression" in p:
            args["ScheduleExpression"] = p["ScheduleExpression"]
        if p.get("Description"):
            args["Description"] = p["Description"]
        try:
            self.events.describe_rule(Name=name, EventBusName=bus)
            action = "exists"
        except ClientError as e:
            if error_code(e) != "ResourceNotFoundException":
                raise
            action = "created"
        arn = self.events.put_rule(**args)["RuleArn"]
        if p.get("Targets"):
            self.events.put_targets(Rule=name, EventBusName=bus, Targets=p["Targets"])
        self.note(lid, action, f"{bus}/{name}")
        return {"Ref": name, "attrs": {"Arn": arn}, "physical": name}

    # --- S3 ---------------------------------------------------------------------------------

    def bucket(self, lid: str, p: dict) -> dict:
        self.check_props(
            lid, p,
            {"BucketName", "BucketEncryption", "PublicAccessBlockConfiguration", "OwnershipControls",
             "VersioningConfiguration"},
            {"Tags"},
        )
        base = re.sub(r"Bucket$", "", lid) or lid
        kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", base).lower()
        name = p.get("BucketName") or f"{PREFIX}{kebab}-local"
        try:
            self.s3.head_bucket(Bucket=name)
            action = "exists"
        except ClientError as e:
            if error_code(e) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            self.s3.create_bucket(Bucket=name)
            action = "created"
        if p.get("BucketEncryption"):
            # CloudFormation says ServerSideEncryptionByDefault where the API says
            # ApplyServerSideEncryptionByDefault
            rules = [
                {("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                 for k, v in rule.items()}
                for rule in p["BucketEncryption"]["ServerSideEncryptionConfiguration"]
            ]
            self.s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
        if p.get("PublicAccessBlockConfiguration"):
            self.s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=p["PublicAccessBlockConfiguration"]
            )
        if p.get("OwnershipControls"):
            self.s3.put_bucket_ownership_controls(Bucket=name, OwnershipControls=p["OwnershipControls"])
        if p.get("VersioningConfiguration"):
            self.s3.put_bucket_versioning(
                Bucket=name, VersioningConfiguration={"Status": p["VersioningConfiguration"]["Status"]}
            )
        self.note(lid, action, name)
        return {
            "Ref": name,
            "attrs": {
                "Arn": f"arn:aws:s3:::{name}",
                "DomainName": f"{name}.s3.amazonaws.com",
                "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com",
            },
            "physical": name,
        }

    # --- IAM -------------------------------------------------------------------------------

    def role(self, lid: str, p: dict) -> dict:
        self.check_props(
            lid, p,
            {"RoleName", "AssumeRolePolicyDocument", "Policies", "ManagedPolicyArns", "MaxSessionDuration",
             "Description", "Path"},
            {"Tags", "PermissionsBoundary"},
        )
        name = p.get("RoleName") or PREFIX + lid
        trust = json.dumps(p["AssumeRolePolicyDocument"])
        try:
            role = self.iam.get_role(RoleName=name)["Role"]
            self.iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
            update: dict[str, Any] = {"RoleName": name}
            if p.get("MaxSessionDuration"):
                update["MaxSessionDuration"] = int(p["MaxSessionDuration"])
            if p.get("Description"):
                update["Description"] = p["Description"]
            if len(update) > 1:
                self.iam.update_role(**update)
            action = "exists"
        except ClientError as e:
            if error_code(e) != "NoSuchEntity":
                raise
            args: dict[str, Any] = {"RoleName": name, "AssumeRolePolicyDocument": trust, "Path": p.get("Path", "/")}
            if p.get("MaxSessionDuration"):
                args["MaxSessionDuration"] = int(p["MaxSessionDuration"])
            if p.get("Description"):
                args["Description"] = p["Description"]
            role = self.iam.create_role(**args)["Role"]
            action = "created"
        for pol in p.get("Policies") or []:
            self.iam.put_role_policy(
                RoleName=name, PolicyName=pol["PolicyName"], PolicyDocument=json.dumps(pol["PolicyDocument"])
            )
        for arn in p.get("ManagedPolicyArns") or []:
            self.iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        self.note(lid, action, name)
        return {"Ref": name, "attrs": {"Arn": role["Arn"], "RoleId": role["RoleId"]}, "physical": name}

    # --- function environment ----------------------------------------------------------------

    def function_environments(self) -> dict[str, dict[str, str]]:
        glob = (((self.template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get(
            "Variables"
        ) or {}
        envs = {}
        for lid in sorted(self.functions):
            own = (((self.resources[lid].get("Properties") or {}).get("Environment") or {}).get("Variables")) or {}
            merged = {**glob, **own}
            envs[lid] = {k: str(self.resolve(v)) for k, v in merged.items()}
        return envs


# --- access key ------------------------------------------------------------------------------


def read_profile(path: Path) -> tuple[str, str] | None:
    if not path.exists():
        return None
    cp = configparser.ConfigParser()
    try:
        cp.read(path)
    except configparser.Error:
        return None
    section = "profile steward"
    if not cp.has_section(section):
        return None
    key_id = cp.get(section, "aws_access_key_id", fallback="")
    secret = cp.get(section, "aws_secret_access_key", fallback="")
    return (key_id, secret) if key_id and secret else None


ADMIN_POLICY_NAME = "steward-admin"
USER_ID_ALPHABET = ACCESS_KEY_ALPHABET


def ensure_user(users_table: str, user_name: str, policy_name: str, policy: dict, ddb: Any) -> None:
    """Creates the IAM user with one inline policy, as CreateUser and
    PutUserPolicy would; a user that exists is left as it is (an operator
    may have changed its policies since)."""
    item = {
        "UserKey": {"S": user_name.lower()},
        "Kind": {"S": "user"},
        "UserName": {"S": user_name},
        "UserId": {"S": "AIDA" + "".join(secrets.choice(USER_ID_ALPHABET) for _ in range(17))},
        "Path": {"S": "/"},
        "CreateDate": {"N": f"{time.time():.3f}"},
        "Policies": {"M": {policy_name: {"S": json.dumps(policy, separators=(",", ":"))}}},
        "KeyCount": {"N": "0"},
        "Revision": {"N": "1"},
    }
    try:
        ddb.put_item(TableName=users_table, Item=item, ConditionExpression="attribute_not_exists(UserKey)")
    except ClientError as e:
        if error_code(e) != "ConditionalCheckFailedException":
            raise


def _count_key(users_table: str, user_name: str) -> dict:
    """The user's side of a key's creation: one more key, within IAM's quota of 2."""
    return {
        "Update": {
            "TableName": users_table,
            "Key": {"UserKey": {"S": user_name.lower()}},
            "UpdateExpression": "SET KeyCount = KeyCount + :one, Revision = Revision + :one",
            "ConditionExpression": "attribute_exists(UserKey) AND KeyCount < :quota",
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":quota": {"N": "2"}},
        }
    }


def ensure_admin_key(
    table: str,
    users_table: str,
    data_key_id: str,
    config_path: Path,
    ddb: Any = None,
    kms: Any = None,
    user_name: str = "admin",
) -> tuple[str, str, str]:
    """Makes sure the IAM user `user_name` exists with an inline policy that
    allows everything, and that it has the access key the profile file names
    (reused if the table holds it, else created). Clients default to the
    local stack; infra/admin-key.py passes a deployed stack's."""
    ddb, kms = ddb or client("dynamodb"), kms or client("kms")
    ensure_user(users_table, user_name, ADMIN_POLICY_NAME, ADMIN_POLICY, ddb)
    existing = read_profile(config_path)
    if existing:
        key_id, secret = existing
        item = ddb.get_item(TableName=table, Key={"AccessKeyId": {"S": key_id}}, ConsistentRead=True).get("Item")
        mine = item and item.get("UserName", {}).get("S", "").lower() == user_name.lower()
        if mine and item.get("Status", {}).get("S") == "Active":
            try:
                plain = kms.decrypt(
                    CiphertextBlob=base64.b64decode(item["SecretCiphertext"]["S"]),
                    EncryptionContext={"steward:access-key-id": key_id},
                )["Plaintext"].decode()
            except ClientError:
                plain = None
            if plain == secret:
                if "Policy" in item:
                    migrate_legacy_key(table, users_table, user_name, key_id, ddb)
                return key_id, secret, "reused"
    key_id = "AKST" + "".join(secrets.choice(ACCESS_KEY_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(SECRET_ALPHABET) for _ in range(40))
    blob = kms.encrypt(
        KeyId=data_key_id,
        Plaintext=secret.encode(),
        EncryptionContext={"steward:access-key-id": key_id},
    )["CiphertextBlob"]
    key_item = {
        "AccessKeyId": {"S": key_id},
        "SecretCiphertext": {"S": base64.b64encode(blob).decode()},
        "UserName": {"S": user_name},
        "Status": {"S": "Active"},
        "CreateDate": {"N": f"{time.time():.3f}"},
    }
    try:
        ddb.transact_write_items(
            TransactItems=[
                _count_key(users_table, user_name),
                {"Put": {"TableName": table, "Item": key_item, "ConditionExpression": "attribute_not_exists(AccessKeyId)"}},
            ]
        )
    except ClientError as e:
        if error_code(e) == "TransactionCanceledException":
            raise ProvisionError(
                f"user {user_name} already has 2 access keys (IAM's quota); delete one with "
                f"`aws iam delete-access-key --user-name {user_name} --access-key-id <id>` and run again"
            ) from e
        raise
    return key_id, secret, "created"


def migrate_legacy_key(table: str, users_table: str, user_name: str, key_id: str, ddb: Any) -> None:
    """A key written before keys belonged to IAM users carried its own
    Policy: it becomes one of the user's keys (its policy is the user's)."""
    try:
        ddb.transact_write_items(
            TransactItems=[
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"AccessKeyId": {"S": key_id}},
                        "UpdateExpression": "REMOVE #p",
                        "ConditionExpression": "attribute_exists(#p)",
                        "ExpressionAttributeNames": {"#p": "Policy"},
                    }
                },
                {
                    "Update": {
                        "TableName": users_table,
                        "Key": {"UserKey": {"S": user_name.lower()}},
                        "UpdateExpression": "SET KeyCount = KeyCount + :one, Revision = Revision + :one",
                        "ConditionExpression": "attribute_exists(UserKey)",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
            ]
        )
    except ClientError as e:
        # Another run migrated it meanwhile.
        if error_code(e) != "TransactionCanceledException":
            raise


# --- output files -----------------------------------------------------------------------------


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def shell_quote(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_./:@%+=,-]*", value):
        return value
    return "'" + value.replace("'", "'\"'\"'") + "'"


def main() -> int:
    t0 = time.monotonic()
    template = load_template()
    try:
        prov = Provisioner(template)
        prov.run()
        envs = prov.function_environments()
    except EndpointConnectionError as e:
        print(f"provision: error: cannot reach the local stack ({e}); run infra/stack.sh start", file=sys.stderr)
        return 1
    except ProvisionError as e:
        print(f"provision: error: {e}", file=sys.stderr)
        return 1

    steward_env: dict[str, str] = {}
    for lid, env in envs.items():
        for k, v in env.items():
            if k in steward_env and steward_env[k] != v:
                print(f"provision: error: {k} differs between functions", file=sys.stderr)
                return 1
            steward_env[k] = v
    missing = [k for k in REQUIRED_ENV if k not in steward_env]
    if missing:
        print(f"provision: error: template.yaml gives no function these variables: {missing}", file=sys.stderr)
        return 1

    access_keys_table = steward_env["STEWARD_ACCESS_KEYS_TABLE"]
    config_path = LOCAL / "aws" / "config"
    try:
        key_id, secret, key_action = ensure_admin_key(
            access_keys_table, steward_env["STEWARD_USERS_TABLE"], steward_env["STEWARD_DATA_KEY_ID"], config_path
        )
    except (ClientError, ProvisionError) as e:
        print(f"provision: error: admin access key: {e}", file=sys.stderr)
        return 1

    env = {k: steward_env[k] for k in sorted(steward_env)}
    env.update(
        {
            "STEWARD_API_PORT": str(API_PORT),
            "AWS_ENDPOINT_URL": LOCALSTACK_URL,
            "AWS_ENDPOINT_URL_DYNAMODB": DYNAMODB_URL,
            # AWS_ENDPOINT_URL would otherwise send SSM calls to LocalStack, even
            # with the steward profile: env endpoints win over a profile's.
            "AWS_ENDPOINT_URL_SSM": API_URL,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }
    )
    lines = ["# Written by infra/provision.py from template.yaml; do not edit.", "# Source it: . .local/stack.env"]
    lines += [f"export {k}={shell_quote(v)}" for k, v in env.items()]
    write_private(LOCAL / "stack.env", "\n".join(lines) + "\n", 0o644)

    facts = {
        "region": REGION,
        "account": prov.account,
        "localstack_endpoint": LOCALSTACK_URL,
        "dynamodb_endpoint": DYNAMODB_URL,
        "api_endpoint": API_URL,
        "admin_access_key_id": key_id,
        "env": env,
        "functions": envs,
        "resources": {
            lid: {
                "type": r["type"],
                "physical_id": r.get("physical"),
                "ref": r["Ref"],
                "attributes": r["attrs"],
                **({"alias": r["alias"]} if "alias" in r else {}),
            }
            for lid, r in prov.done.items()
            if not r.get("skipped")
        },
    }
    write_private(LOCAL / "stack.json", json.dumps(facts, indent=2) + "\n", 0o644)

    write_private(
        config_path,
        "\n".join(
            [
                "# Written by infra/provision.py: the local Steward API and its admin key.",
                "# Use: AWS_CONFIG_FILE=.local/aws/config aws --profile steward ssm ...",
                "[profile steward]",
                f"region = {REGION}",
                f"endpoint_url = {API_URL}",
                f"aws_access_key_id = {key_id}",
                f"aws_secret_access_key = {secret}",
                "output = json",
                "",
            ]
        ),
    )

    width = max([len(r[0]) for r in prov.report + prov.skipped] or [10])
    for lid, rtype, action, physical in prov.report:
        print(f"  {action:8} {lid:{width}}  {physical}")
    for lid, rtype, why in prov.skipped:
        print(f"  {'skipped':8} {lid:{width}}  {rtype}: {why}")
    print(f"  admin access key {key_id} ({key_action})")
    print(
        f"provision: done in {time.monotonic() - t0:.1f}s; wrote .local/stack.env, .local/stack.json, "
        ".local/aws/config (profile steward)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
