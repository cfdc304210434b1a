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
    .local/ec2-identity/ key.pem and cert.pem: a test RSA key whose certificate
                         the local stack trusts for EC2 instance identity
                         documents in place of AWS's (made once)

Local physical names: `steward-<LogicalId>` for tables and queues, the
template's Name for the bus, `steward-<name>-local` for buckets,
`steward-<LogicalId>` for IAM roles (not the functions' own roles: locally
the functions run with the stack's credentials); KMS keys are found again by
their alias `alias/steward-<LogicalId>`. Template parameters take their
defaults, but for LOCAL_PARAMETERS.

Why this is not LocalStack's own CloudFormation: docs/decisions.md ("Local
stack"). It handles what template.yaml uses, no more: an intrinsic function,
resource type or property it does not know is an error that says so, never
silently skipped.

Environment: STEWARD_LOCALSTACK_PORT (4566), STEWARD_DYNAMODB_PORT (8000),
STEWARD_API_PORT (7070), STEWARD_CONNECTION_LOST_SECONDS (30 locally),
STEWARD_LOCAL_DIR (where the files above go; .local).
"""

from __future__ import annotations

import base64
import configparser
import datetime
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
LOCAL = Path(os.environ.get("STEWARD_LOCAL_DIR") or ROOT / ".local")
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
# A callable is called only when the template declares the parameter.
LOCAL_PARAMETERS: dict[str, Any] = {
    "ConnectionLostSeconds": os.environ.get("STEWARD_CONNECTION_LOST_SECONDS", "30"),
    # The local node queues' names since before the default was derived from
    # the stack's name; running stacks and their agents keep them.
    "NodeQueuePrefix": "steward-node-",
    # No IMDS signs for the local stack: the tests sign identity documents
    # with a key of their own (tests/imds_fixture.py), whose certificate the
    # control plane trusts instead of AWS's.
    "Ec2IdentityCertificates": lambda: ec2_identity_certificate(),
    # LocalStack's account, whose EC2 instances the tests register.
    "AllowedAccountIds": "000000000000",
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
    "STEWARD_OUTPUT_BUCKETS",
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
    "STEWARD_COMPLIANCE_TABLE",
    "STEWARD_INVENTORY_TABLE",
    "STEWARD_AUTOMATION_TABLE",
    "STEWARD_AUTOMATION_QUEUE_URL",
    "STEWARD_AUTOMATION_START_QUEUE_URL",
    "STEWARD_AUTOMATION_START_DLQ_URL",
    "STEWARD_AUTOMATION_EVENTS_USER",
    "STEWARD_PATCH_STATES_TABLE",
    "STEWARD_PATCH_BASELINES_TABLE",
    "STEWARD_ASSOCIATIONS_TABLE",
    "STEWARD_MAINTENANCE_WINDOWS_TABLE",
    "STEWARD_SESSIONS_TABLE",
    "STEWARD_ALLOWED_ACCOUNT_IDS",
    "STEWARD_EC2_IDENTITY_CERTIFICATES",
]

# Variables of REQUIRED_ENV whose value may be empty (every other must have one).
MAY_BE_EMPTY = {"STEWARD_OUTPUT_BUCKETS"}

# Resource types that exist only in a deployed stack. They are reported and
# skipped; any other type without a handler below is an error.
SKIPPED_TYPES = {
    "AWS::Serverless::Function": "runs locally from the same code",
    "AWS::IAM::Policy": "attaches to function roles, which exist only when deployed",
    "AWS::Logs::LogGroup": "the functions' logs; locally the control plane logs to .local/logs",
    "AWS::S3::BucketPolicy": "refuses requests without TLS; the local emulators serve plain HTTP",
}
# Why a function's own role (an AWS::IAM::Role a function's Role names) is
# skipped: locally every function runs with the stack's own credentials.
FUNCTION_ROLE_SKIPPED = "a function's role; locally the functions run with the stack's own credentials"

QUEUE_ATTRIBUTES = {
    "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout", "KmsMasterKeyId", "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled",
    "RedrivePolicy", "RedriveAllowPolicy",
}

# Per resource type: the properties applied locally, and those that have no
# local meaning (accepted, not applied). Any other property is an error, so a
# template change never goes silently unapplied.
PROPERTIES: dict[str, tuple[set[str], set[str]]] = {
    "AWS::DynamoDB::Table": (
        {"BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "StreamSpecification"},
        {"PointInTimeRecoverySpecification", "SSESpecification", "Tags", "DeletionProtectionEnabled",
         "TableClass", "ContributorInsightsSpecification"},
    ),
    "AWS::SQS::Queue": (QUEUE_ATTRIBUTES, {"Tags"}),
    "AWS::SQS::QueuePolicy": ({"Queues", "PolicyDocument"}, set()),
    "AWS::KMS::Key": (
        {"KeySpec", "KeyUsage", "Description", "KeyPolicy", "EnableKeyRotation"},
        {"PendingWindowInDays", "Tags", "MultiRegion", "BypassPolicyLockoutSafetyCheck"},
    ),
    "AWS::Events::EventBus": ({"Name", "Description"}, {"Tags", "DeadLetterConfig", "KmsKeyIdentifier", "Policy", "LogConfig"}),
    "AWS::Events::Rule": (
        {"EventBusName", "EventPattern", "ScheduleExpression", "State", "Description", "Targets"}, {"RoleArn", "Tags"}
    ),
    "AWS::S3::Bucket": (
        {"BucketEncryption", "PublicAccessBlockConfiguration", "OwnershipControls", "LifecycleConfiguration"}, {"Tags"}
    ),
    "AWS::IAM::Role": ({"AssumeRolePolicyDocument", "Policies", "MaxSessionDuration", "Description"}, {"Tags"}),
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
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


TemplateLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path = TEMPLATE) -> dict:
    with open(path) as f:
        return yaml.load(f, Loader=TemplateLoader)  # noqa: S506 (SafeLoader subclass)


# What AWS::NoValue resolves to: dropped from the list or mapping holding it.
NO_VALUE = object()


def function_roles(template: dict) -> set[str]:
    """The roles (logical ids) the template's functions run with: each
    function's `Role: !GetAtt <Role>.Arn`."""
    out = set()
    for r in (template.get("Resources") or {}).values():
        if r.get("Type") != "AWS::Serverless::Function":
            continue
        role = (r.get("Properties") or {}).get("Role")
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            arg = role["Fn::GetAtt"]
            out.add(arg[0] if isinstance(arg, list) else arg.split(".", 1)[0])
    return out


def lifecycle_rule(rule: dict) -> dict:
    """A CloudFormation lifecycle rule in the S3 API's shape; a property it
    does not know is an error rather than left out."""
    known = {"Id", "Status", "Prefix", "ExpirationInDays", "AbortIncompleteMultipartUpload"}
    if set(rule) - known:
        raise ProvisionError(f"lifecycle rule properties {sorted(set(rule) - known)} are not applied locally")
    out: dict[str, Any] = {"Status": rule["Status"], "Filter": {"Prefix": rule.get("Prefix", "")}}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return out


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


def find(call: Callable, missing: tuple[str, ...], **kwargs) -> Any:
    """`call(**kwargs)`, or None when it fails with one of the `missing` error
    codes: every handler first looks its resource up this way."""
    try:
        return call(**kwargs)
    except ClientError as e:
        if error_code(e) not in missing:
            raise
        return None


# --- provisioning -----------------------------------------------------------------


class Provisioner:
    def __init__(self, template: dict):
        self.template = template
        self.resources: dict[str, dict] = template.get("Resources") or {}
        self.functions = {
            lid for lid, r in self.resources.items() if r.get("Type") == "AWS::Serverless::Function"
        }
        self.function_roles = function_roles(template)
        self.done: dict[str, dict] = {}
        self.in_progress: list[str] = []
        self.report: list[tuple[str, str, str, str]] = []  # (logical id, type, action, physical)
        self.skipped: list[tuple[str, str, str]] = []
        self.ddb, self.sqs, self.kms, self.events, self.s3, self.iam = map(
            client, ("dynamodb", "sqs", "kms", "events", "s3", "iam")
        )
        self.account = client("sts").get_caller_identity()["Account"]
        self.parameters = self._parameters()
        self.conditions: dict[str, bool] = {}
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": self.account,
            "AWS::Partition": "aws",
            "AWS::StackName": "steward",
            "AWS::URLSuffix": "amazonaws.com",
        }
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
    # Only those template.yaml uses: Ref, Fn::GetAtt, Fn::Sub, Fn::If (with
    # the template's Conditions: Fn::Equals, Fn::Not, Fn::And, Fn::Or),
    # Fn::Split, Fn::Join and AWS::NoValue.

    def _parameters(self) -> dict[str, str]:
        values = {}
        for name, spec in (self.template.get("Parameters") or {}).items():
            if name in LOCAL_PARAMETERS:
                local = LOCAL_PARAMETERS[name]
                values[name] = str(local() if callable(local) else local)
            elif "Default" in spec:
                values[name] = str(spec["Default"])
            else:
                raise ProvisionError(f"parameter {name} has no Default and no local value")
        return values

    def ref(self, name: str) -> Any:
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name.startswith("AWS::"):
            raise ProvisionError(f"pseudo parameter {name} is not supported locally")
        return self.ensure(name)["Ref"]

    def get_att(self, lid: str, attr: str) -> Any:
        # Functions' roles, and resources SAM generates for a function. Locally
        # the functions run with the stack's own credentials (the account root)
        # and the api serves on a local port.
        if lid in self.function_roles and attr == "Arn":
            return f"arn:aws:iam::{self.account}:root"
        for fn in self.functions:
            if lid == f"{fn}Role" and attr == "Arn":
                return f"arn:aws:iam::{self.account}:root"
            if lid == f"{fn}Url" and attr == "FunctionUrl":
                return f"{API_URL}/"
        res = self.ensure(lid)
        if attr not in res["attrs"]:
            raise ProvisionError(f"{lid}: attribute {attr} is not available locally")
        return res["attrs"][attr]

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            spec = (self.template.get("Conditions") or {}).get(name)
            if spec is None:
                raise ProvisionError(f"unknown condition {name}")
            self.conditions[name] = bool(self.resolve(spec))
        return self.conditions[name]

    def resolve(self, value: Any) -> Any:
        """`value` with its intrinsic functions evaluated; AWS::NoValue
        removes the list item or the key it is the value of."""
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key == "Fn::GetAtt":
                lid, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(lid, attr)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub_variable(m, variables), text)
            if key == "Fn::If":
                name, then, otherwise = arg
                return self.resolve(then if self.condition(name) else otherwise)
            if key == "Fn::Equals":
                a, b = self.resolve(arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(arg)[0]
            if key == "Fn::And":
                return all(self.resolve(arg))
            if key == "Fn::Or":
                return any(self.resolve(arg))
            if key == "Fn::Split":
                sep, text = arg[0], self.resolve(arg[1])
                return str(text).split(sep)
            if key == "Fn::Join":
                sep, items = arg[0], self.resolve(arg[1])
                return sep.join(map(str, items))
            if key.startswith("Fn::"):
                raise ProvisionError(f"intrinsic {key} is not supported locally")
        out = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not NO_VALUE}

    def _sub_variable(self, m: re.Match, variables: dict | None = None) -> str:
        name = m.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if variables and name in variables:
            return str(variables[name])
        if "." in name and not name.startswith("AWS::"):
            return str(self.get_att(*name.split(".", 1)))
        return str(self.ref(name))

    # --- driver ---------------------------------------------------------------------

    def run(self) -> None:
        for lid in self.resources:
            self.ensure(lid)

    def ensure(self, lid: str) -> dict:
        """Creates `lid` (after what its properties refer to) unless done."""
        if lid in self.done:
            return self.done[lid]
        if lid not in self.resources:
            raise ProvisionError(f"reference to unknown resource {lid}")
        if lid in self.in_progress:
            raise ProvisionError("reference cycle: " + " -> ".join(self.in_progress + [lid]))
        rtype = self.resources[lid].get("Type", "")
        if rtype in SKIPPED_TYPES or lid in self.function_roles:
            self.skipped.append((lid, rtype, SKIPPED_TYPES.get(rtype, FUNCTION_ROLE_SKIPPED)))
            self.done[lid] = {"Ref": None, "attrs": {}, "type": rtype, "skipped": True}
            return self.done[lid]
        if rtype not in self.handlers:
            raise ProvisionError(
                f"{lid}: resource type {rtype} is not known to infra/provision.py; "
                "teach it to create the resource locally, or add the type to SKIPPED_TYPES "
                "if it has no local counterpart"
            )
        self.in_progress.append(lid)
        try:
            props = self.resolve(self.resources[lid].get("Properties") or {})
            handled, ignored = PROPERTIES[rtype]
            unknown = set(props) - handled - ignored
            if unknown:
                raise ProvisionError(
                    f"{lid}: properties {sorted(unknown)} are not applied locally by infra/provision.py; "
                    "teach it to apply them (or list them as ignored locally)"
                )
            result = self.handlers[rtype](lid, props)
        except (ClientError, ParamValidationError) as e:
            raise ProvisionError(f"{lid} ({rtype}): {e}") from e
        finally:
            self.in_progress.pop()
        result["type"] = rtype
        self.done[lid] = result
        return result

    def note(self, lid: str, action: str, physical: str) -> None:
        self.report.append((lid, self.resources[lid]["Type"], action, physical))

    # --- DynamoDB -------------------------------------------------------------------

    def table(self, lid: str, p: dict) -> dict:
        if p.get("BillingMode") != "PAY_PER_REQUEST":
            raise ProvisionError(f"{lid}: only BillingMode PAY_PER_REQUEST is supported locally")
        name = PREFIX + lid
        args: dict[str, Any] = {"TableName": name, **{k: p[k] for k in ("AttributeDefinitions", "KeySchema", "BillingMode")}}
        if p.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = [
                {k: v for k, v in ix.items() if k in ("IndexName", "KeySchema", "Projection")}
                for ix in p["GlobalSecondaryIndexes"]
            ]
        # The stream steward-local reads in place of the event source mapping.
        stream = p.get("StreamSpecification")
        if stream:
            args["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
        desc = (find(self.ddb.describe_table, ("ResourceNotFoundException",), TableName=name) or {}).get("Table")
        if desc:
            # A running stack takes the indexes the template added without a
            # restart; anything else that differs is refused.
            have = {ix["IndexName"] for ix in desc.get("GlobalSecondaryIndexes") or []}
            added = [ix for ix in args.get("GlobalSecondaryIndexes") or [] if ix["IndexName"] not in have]
            if self.table_shape(desc)["KeySchema"] != self.table_shape(args)["KeySchema"]:
                added = []
            for ix in added:
                desc = self.add_index(name, ix, args["AttributeDefinitions"])
            have, want = self.table_shape(desc), self.table_shape(args)
            if have != want:
                diff = {k: {"local": have[k], "template": want[k]} for k in want if have[k] != want[k]}
                raise ProvisionError(
                    f"{lid}: table {name} exists with another schema than template.yaml: {diff}. "
                    "DynamoDB Local is in memory: restart the stack (infra/stack.sh stop; infra/stack.sh start) "
                    "and provision again"
                )
            action = f"indexed ({', '.join(ix['IndexName'] for ix in added)})" if added else "exists"
            streamed = self.set_stream(name, desc, stream)
            if streamed:
                change = "streamed" if stream else "unstreamed"
                desc, action = streamed, f"{action}, {change}" if added else change
        else:
            self.ddb.create_table(**args)
            self.ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})
            desc = self.ddb.describe_table(TableName=name)["Table"]
            action = "created"
        self.note(lid, action, name)
        attrs = {"Arn": desc["TableArn"]}
        if desc.get("LatestStreamArn") and (desc.get("StreamSpecification") or {}).get("StreamEnabled"):
            attrs["StreamArn"] = desc["LatestStreamArn"]
        return {"Ref": name, "attrs": attrs, "physical": name}

    def set_stream(self, name: str, desc: dict, stream: dict | None) -> dict | None:
        """Gives an existing table the stream the template asks for (or takes
        away one it does not), so that a running stack takes it without a
        restart. Returns the new description, or None when nothing changed."""
        have = desc.get("StreamSpecification") or {}
        have_view = have.get("StreamViewType") if have.get("StreamEnabled") else None
        want_view = stream["StreamViewType"] if stream else None
        if have_view == want_view:
            return None
        # DynamoDB changes no stream's view type: the old stream goes first.
        if have_view:
            self.ddb.update_table(TableName=name, StreamSpecification={"StreamEnabled": False})
        if want_view:
            self.ddb.update_table(
                TableName=name, StreamSpecification={"StreamEnabled": True, "StreamViewType": want_view}
            )
        return self.ddb.describe_table(TableName=name)["Table"]

    @staticmethod
    def table_shape(desc: dict) -> dict:
        def keys(ks):
            return [(k["AttributeName"], k["KeyType"]) for k in ks]

        return {
            "KeySchema": keys(desc["KeySchema"]),
            "AttributeDefinitions": sorted((a["AttributeName"], a["AttributeType"]) for a in desc["AttributeDefinitions"]),
            "GlobalSecondaryIndexes": sorted(
                (ix["IndexName"], tuple(keys(ix["KeySchema"])), ix["Projection"]["ProjectionType"],
                 tuple(sorted(ix["Projection"].get("NonKeyAttributes", []))))
                for ix in desc.get("GlobalSecondaryIndexes") or []
            ),
        }

    def add_index(self, name: str, ix: dict, attribute_definitions: list) -> dict:
        """Creates a global secondary index and waits (20 s at most) until it is active."""
        self.ddb.update_table(
            TableName=name, AttributeDefinitions=attribute_definitions, GlobalSecondaryIndexUpdates=[{"Create": ix}]
        )
        for _ in range(100):
            desc = self.ddb.describe_table(TableName=name)["Table"]
            if any(i["IndexName"] == ix["IndexName"] and i.get("IndexStatus") == "ACTIVE"
                   for i in desc.get("GlobalSecondaryIndexes") or []):
                break
            time.sleep(0.2)
        return desc

    # --- SQS --------------------------------------------------------------------------

    def queue(self, lid: str, p: dict) -> dict:
        # Every property is a queue attribute, in the API's string form.
        attributes = {
            k: json.dumps(v, separators=(",", ":")) if isinstance(v, dict)
            else ("true" if v else "false") if isinstance(v, bool) else str(v)
            for k, v in p.items() if k in QUEUE_ATTRIBUTES
        }
        name = PREFIX + lid
        found = find(self.sqs.get_queue_url, ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"), QueueName=name)
        if found:
            url, action = found["QueueUrl"], "exists"
            if attributes:
                self.sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        else:
            url, action = self.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"], "created"
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.note(lid, action, name)
        return {"Ref": url, "attrs": {"Arn": arn, "QueueName": name, "QueueUrl": url}, "physical": name}

    def queue_policy(self, lid: str, p: dict) -> dict:
        policy = json.dumps(p["PolicyDocument"], separators=(",", ":"))
        for url in p["Queues"]:
            self.sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
        self.note(lid, "applied", ", ".join(u.rsplit("/", 1)[-1] for u in p["Queues"]))
        return {"Ref": lid, "attrs": {}, "physical": lid}

    # --- KMS ----------------------------------------------------------------------------

    def kms_key(self, lid: str, p: dict) -> dict:
        alias = f"alias/{PREFIX}{lid}"
        spec = p.get("KeySpec", "SYMMETRIC_DEFAULT")
        usage = p.get("KeyUsage", "ENCRYPT_DECRYPT")
        meta = (find(self.kms.describe_key, ("NotFoundException",), KeyId=alias) or {}).get("KeyMetadata")
        if meta:
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
            self.kms.enable_key_rotation(KeyId=key_id)
        self.note(lid, action, f"{alias} -> {key_id}")
        return {"Ref": key_id, "attrs": {"Arn": meta["Arn"], "KeyId": key_id}, "physical": key_id, "alias": alias}

    # --- EventBridge ---------------------------------------------------------------------

    def event_bus(self, lid: str, p: dict) -> dict:
        name = p["Name"]
        found = find(self.events.describe_event_bus, ("ResourceNotFoundException",), Name=name)
        if found:
            arn, action = found["Arn"], "exists"
        else:
            args = {"Name": name, **({"Description": p["Description"]} if p.get("Description") else {})}
            arn, action = self.events.create_event_bus(**args)["EventBusArn"], "created"
        self.note(lid, action, name)
        return {"Ref": name, "attrs": {"Arn": arn, "Name": name}, "physical": name}

    def event_rule(self, lid: str, p: dict) -> dict:
        name = PREFIX + lid
        bus = p.get("EventBusName", "default").rsplit("/", 1)[-1]  # an ARN is accepted as well as a name
        args: dict[str, Any] = {"Name": name, "EventBusName": bus, "State": p.get("State", "ENABLED")}
        if "EventPattern" in p:
            pattern = p["EventPattern"]
            args["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        args.update({k: p[k] for k in ("ScheduleExpression", "Description") if p.get(k)})
        found = find(self.events.describe_rule, ("ResourceNotFoundException",), Name=name, EventBusName=bus)
        # put_rule creates the rule or updates it in place.
        arn = self.events.put_rule(**args)["RuleArn"]
        if p.get("Targets"):
            self.events.put_targets(Rule=name, EventBusName=bus, Targets=p["Targets"])
        self.note(lid, "exists" if found else "created", f"{bus}/{name}")
        return {"Ref": name, "attrs": {"Arn": arn}, "physical": name}

    # --- S3 ---------------------------------------------------------------------------------

    def bucket(self, lid: str, p: dict) -> dict:
        base = re.sub(r"Bucket$", "", lid) or lid
        name = PREFIX + re.sub(r"(?<!^)(?=[A-Z])", "-", base).lower() + "-local"
        if find(self.s3.head_bucket, ("404", "NoSuchBucket", "NotFound"), Bucket=name) is not None:
            action = "exists"
        else:
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
        if p.get("LifecycleConfiguration"):
            self.s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [lifecycle_rule(r) for r in p["LifecycleConfiguration"]["Rules"]]}
            )
        self.note(lid, action, name)
        attrs = {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com",
                 "RegionalDomainName": f"{name}.s3.{REGION}.amazonaws.com"}
        return {"Ref": name, "attrs": attrs, "physical": name}

    # --- IAM -------------------------------------------------------------------------------

    def role(self, lid: str, p: dict) -> dict:
        name = PREFIX + lid
        trust = json.dumps(p["AssumeRolePolicyDocument"])
        settings: dict[str, Any] = {"Description": p.get("Description")}
        if p.get("MaxSessionDuration"):
            settings["MaxSessionDuration"] = int(p["MaxSessionDuration"])
        settings = {k: v for k, v in settings.items() if v}
        role = find(self.iam.get_role, ("NoSuchEntity",), RoleName=name)
        if role:
            self.iam.update_assume_role_policy(RoleName=name, PolicyDocument=trust)
            if settings:
                self.iam.update_role(RoleName=name, **settings)
            action = "exists"
        else:
            role = self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, Path="/", **settings)
            action = "created"
        for pol in p.get("Policies") or []:
            self.iam.put_role_policy(
                RoleName=name, PolicyName=pol["PolicyName"], PolicyDocument=json.dumps(pol["PolicyDocument"])
            )
        self.note(lid, action, name)
        role = role["Role"]
        return {"Ref": name, "attrs": {"Arn": role["Arn"], "RoleId": role["RoleId"]}, "physical": name}

    # --- function environment ----------------------------------------------------------------

    def function_environments(self) -> dict[str, dict[str, str]]:
        def variables(props: dict) -> dict:
            return ((props.get("Environment") or {}).get("Variables")) or {}

        glob = variables((self.template.get("Globals") or {}).get("Function") or {})
        return {
            lid: {k: str(self.resolve(v)) for k, v in {**glob, **variables(self.resources[lid].get("Properties") or {})}.items()}
            for lid in sorted(self.functions)
        }


# --- access key ------------------------------------------------------------------------------


def read_profile(path: Path) -> tuple[str, str] | None:
    cp = configparser.ConfigParser()
    try:
        cp.read(path)  # a missing file reads as empty
    except configparser.Error:
        return None
    key_id = cp.get("profile steward", "aws_access_key_id", fallback="")
    secret = cp.get("profile steward", "aws_secret_access_key", fallback="")
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


def _count_key(users_table: str, user_name: str, quota: bool = True) -> dict:
    """The user's side of a key's creation (or migration): one more key, within
    IAM's quota of 2 for a new key."""
    update: dict[str, Any] = {
        "TableName": users_table,
        "Key": {"UserKey": {"S": user_name.lower()}},
        "UpdateExpression": "SET KeyCount = KeyCount + :one, Revision = Revision + :one",
        "ConditionExpression": "attribute_exists(UserKey)",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    if quota:
        update["ConditionExpression"] += " AND KeyCount < :quota"
        update["ExpressionAttributeValues"][":quota"] = {"N": "2"}
    return {"Update": update}


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
                _count_key(users_table, user_name, quota=False),
            ]
        )
    except ClientError as e:
        # Another run migrated it meanwhile.
        if error_code(e) != "TransactionCanceledException":
            raise


# --- EC2 instance identity (tests only) ---------------------------------------------------------

EC2_IDENTITY_DIR = LOCAL / "ec2-identity"


def ec2_identity_certificate(directory: Path | None = None) -> str:
    """The local stack's stand-in for AWS's regional RSA certificate: a
    self-signed certificate over an RSA-2048 key, both made once under
    `directory` (key.pem, cert.pem) and reused after. Returns the
    certificate's PEM on one line (its line breaks as spaces, as AWS's
    documentation prints it): a template parameter's value, and a line of
    stack.env, which line-based readers parse."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    directory = directory or EC2_IDENTITY_DIR
    key_path, cert_path = directory / "key.pem", directory / "cert.pem"
    if key_path.exists() and cert_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if cert.public_key().public_numbers() != key.public_key().public_numbers():
            raise ProvisionError(
                f"{cert_path} is not the certificate of {key_path}; remove both and provision again"
            )
        return " ".join(cert_path.read_text().split())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Steward local stack"),
        x509.NameAttribute(NameOID.COMMON_NAME, "EC2 instance identity (test only)"),
    ])
    # Valid from yesterday: a clock a little behind still accepts it.
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        # AWS's regional certificates are valid for decades too.
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    # The key first: a certificate without its key is not reused.
    write_private(key_path, key_pem, 0o600)
    write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM).decode(), 0o644)
    return " ".join(cert_path.read_text().split())


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


def provision() -> None:
    t0 = time.monotonic()
    prov = Provisioner(load_template())
    prov.run()
    envs = prov.function_environments()

    steward_env: dict[str, str] = {}
    for env in envs.values():
        for k, v in env.items():
            if steward_env.setdefault(k, v) != v:
                raise ProvisionError(f"{k} differs between functions")
    missing = [k for k in REQUIRED_ENV if k not in steward_env or not (steward_env[k] or k in MAY_BE_EMPTY)]
    if missing:
        raise ProvisionError(f"template.yaml gives no function these variables: {missing}")

    config_path = LOCAL / "aws" / "config"
    try:
        key_id, secret, key_action = ensure_admin_key(
            steward_env["STEWARD_ACCESS_KEYS_TABLE"], steward_env["STEWARD_USERS_TABLE"],
            steward_env["STEWARD_DATA_KEY_ID"], config_path,
        )
    except (ClientError, ProvisionError) as e:
        raise ProvisionError(f"admin access key: {e}") from e

    env = {k: steward_env[k] for k in sorted(steward_env)}
    env.update(
        {
            "STEWARD_API_PORT": str(API_PORT),
            "AWS_ENDPOINT_URL": LOCALSTACK_URL,
            "AWS_ENDPOINT_URL_DYNAMODB": DYNAMODB_URL,
            # DynamoDB Local serves the tables' streams on its own endpoint.
            "AWS_ENDPOINT_URL_DYNAMODB_STREAMS": DYNAMODB_URL,
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
    # One variable a line: tests/conftest.py and tests/fleet.py read the file
    # line by line, not through a shell.
    multiline = [k for k, v in env.items() if "\n" in v or "\r" in v]
    if multiline:
        raise ProvisionError(f"stack.env takes one line per variable; these have line breaks: {multiline}")
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
        "# Written by infra/provision.py: the local Steward API and its admin key.\n"
        "# Use: AWS_CONFIG_FILE=.local/aws/config aws --profile steward ssm ...\n"
        f"[profile steward]\nregion = {REGION}\nendpoint_url = {API_URL}\n"
        f"aws_access_key_id = {key_id}\naws_secret_access_key = {secret}\noutput = json\n",
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


def main() -> int:
    try:
        provision()
    except EndpointConnectionError as e:
        print(f"provision: error: cannot reach the local stack ({e}); run infra/stack.sh start", file=sys.stderr)
        return 1
    except ProvisionError as e:
        print(f"provision: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
