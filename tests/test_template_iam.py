"""What each function's role really grants, once SAM has translated
template.yaml, against what its code calls. Needs no stack and no AWS
account: the SAM translator runs offline (the template names no AWS managed
policy, so none has to be looked up)."""

from __future__ import annotations

import copy
import fnmatch
import importlib.util
import os
import re
from functools import cache
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name
from samtranslator.translator.transform import transform

ROOT = Path(__file__).resolve().parent.parent

_spec = importlib.util.spec_from_file_location("steward_provision", ROOT / "infra" / "provision.py")
provision = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(provision)

STACK, REGION, ACCOUNT = "steward", "us-east-1", "123456789012"

# Every action each role may be granted, from the code: which adapters
# (aws/src) each function builds and which of their SDK calls its code
# paths reach. A grant not listed here, or a listed action not granted,
# fails test_roles_grant_exactly_what_the_code_calls.
#
# ApiRole runs functions/api (every area's adapters: Stack builds them on
# first use), functions/scheduler (parameter policies, associations and
# windows, which call the api's operations) and functions/automation
# (runbook steps call the api's operations). It is also the role Lambda
# polls the scheduler's and automation's queues with.
API = {
    # Logs, to its three functions' groups (no CreateLogGroup: the groups
    # are the template's).
    "logs:CreateLogStream", "logs:PutLogEvents",
    # item.rs, nodes, tag_index, activations, commands, invocations,
    # identity, access_keys, parameters, documents, compliance, inventory,
    # patch_states, patch_baselines, associations, maintenance_windows,
    # automation: get_item, batch_get_item, query, put_item, update_item,
    # delete_item, batch_write_item (associations, windows, parameters),
    # transact_write_items (Put, Update, Delete; ConditionCheck in
    # patch_baselines).
    "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem",
    "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem",
    # queue_provisioner: create_queue, get_queue_attributes, delete_queue;
    # work_queue and automation: send_message; Lambda's poller: receive,
    # delete (and get_queue_attributes) on the scheduler's and automation's
    # queues.
    "sqs:CreateQueue", "sqs:GetQueueAttributes", "sqs:DeleteQueue", "sqs:SendMessage",
    "sqs:ReceiveMessage", "sqs:DeleteMessage",
    # key_service: encrypt, decrypt (access keys), get_public_key (the
    # signing key, at registration); data_keys: generate_data_key, decrypt.
    "kms:Encrypt", "kms:Decrypt", "kms:GetPublicKey", "kms:GenerateDataKey",
    # resource_groups: get_group_query.
    "resource-groups:GetGroupQuery",
    # credentials: assume_role (node credentials).
    "sts:AssumeRole",
    # output: presigned put_object (fresh upload URLs for a node).
    "s3:PutObject",
    # instance_tags: EC2's DescribeTags, signed and sent without an SDK
    # client (the registering instance's tags; see EC2_CALLS).
    "ec2:DescribeTags",
}
# functions/dispatch builds Run Command's adapters (commands.rs
# RunCommandAdapters::ports) and reaches: commands and invocations
# (get_item, batch_get_item, query, put_item, update_item,
# transact_write_items with Put and Update), nodes (reads, for addresses),
# parameters and patch_baselines (reads), node_mailbox and work_queue
# (send_message, send_message_batch), automation (send_message: a command's
# end wakes its execution), signer (sign), output (presigned put_object);
# and Lambda polls the work queue with its role. It publishes no event: the
# change-events function publishes from the tables' streams.
DISPATCH = {
    "logs:CreateLogStream", "logs:PutLogEvents",
    "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem",
    "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
    "kms:Sign",
    "s3:PutObject",
}
# functions/ingest builds the fleet's, Run Command's, patch states',
# compliance's and inventory's adapters (UplinkPorts) and reaches: nodes
# (update_item, reads), patch_states, compliance and inventory (put_item,
# reads), and a release as dispatch makes it (see DISPATCH); node_events
# (put_events: an agent's refusal of a message); sessions (put_item,
# reads; delete_queue: an ended session's queues).
INGEST = DISPATCH | {"events:PutEvents", "sqs:DeleteQueue"}

# functions/change-events builds change_events.rs (events.rs: put_events);
# Lambda reads the streams of commands, invocations, compliance, parameters,
# automation executions and sessions with its role.
CHANGE_EVENTS = {
    "logs:CreateLogStream", "logs:PutLogEvents",
    "dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams",
    "events:PutEvents",
}
STREAM_READS = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                "dynamodb:ListStreams"}

EXPECTED = {"ApiRole": API, "DispatchRole": DISPATCH, "IngestRole": INGEST, "ChangeEventsRole": CHANGE_EVENTS}

# The tables each role reaches (as above); the api's role every one.
TABLES = {
    "ApiRole": None,
    # Commands and invocations; node addresses (node_mailbox reads the
    # nodes); {{ssm:…}} references; a patch step's baseline.
    "DispatchRole": {"NodesTable", "CommandsTable", "InvocationsTable", "ParametersTable", "PatchBaselinesTable"},
    # Dispatch's (a release), plus what reports update.
    "IngestRole": {"NodesTable", "CommandsTable", "InvocationsTable", "ParametersTable", "PatchBaselinesTable",
                   "PatchStatesTable", "ComplianceTable", "InventoryTable", "SessionsTable"},
    # Their streams only.
    "ChangeEventsRole": {"CommandsTable", "InvocationsTable", "ComplianceTable", "ParametersTable",
                         "AutomationExecutionsTable", "SessionsTable"},
}
# The tables whose streams each role reads (its event sources).
OWN_STREAMS = {"ApiRole": set(), "DispatchRole": set(), "IngestRole": set(),
               "ChangeEventsRole": {"CommandsTable", "InvocationsTable", "ComplianceTable", "ParametersTable",
                                    "AutomationExecutionsTable", "SessionsTable"}}
# The KMS keys each role uses: ANY_KEY is any key of the account (SecureString
# data keys, under an encryption-context condition).
ANY_KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*"
KEYS = {
    "ApiRole": {"DataKey", "CommandSigningKey", ANY_KEY},
    "DispatchRole": {"CommandSigningKey"},
    "IngestRole": {"CommandSigningKey"},
    "ChangeEventsRole": set(),
}

# The queues each role's functions consume (their SQS event sources).
OWN_QUEUES = {
    "ApiRole": {"SchedulerQueue", "AutomationQueue", "AutomationStartQueue"},
    "DispatchRole": {"WorkQueue"},
    "IngestRole": {"IngestQueue"},
    "ChangeEventsRole": set(),
}
# Where each role may send messages (besides node queues, see NODE_QUEUE_SENDERS).
SENDS_TO = {
    "ApiRole": {"WorkQueue", "AutomationQueue", "AutomationStartDeadLetterQueue"},
    "DispatchRole": {"WorkQueue", "AutomationQueue"},
    "IngestRole": {"WorkQueue", "AutomationQueue"},
    "ChangeEventsRole": set(),
}
NODE_QUEUE_SENDERS = {"DispatchRole", "IngestRole"}
CONSUME = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"}


# --- translating and resolving ----------------------------------------------------------


class Resolved:
    """A translated template with its conditions and intrinsic functions
    evaluated for given parameter values. A resource's ARN or name reads as
    its logical id (`WorkQueue`, `NodesTable/index/*`), everything else as
    CloudFormation would give it in account ACCOUNT, region REGION."""

    def __init__(self, parameters: dict[str, str] | None = None, stack: str = STACK):
        source = provision.load_template(ROOT / "template.yaml")
        # `sam build` points CodeUri at the built code; the translator wants an S3 URI.
        source["Globals"]["Function"]["CodeUri"] = "s3://bucket/key"
        values = {k: str(v["Default"]) for k, v in source.get("Parameters", {}).items() if "Default" in v}
        values.update(parameters or {})
        pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws", "AWS::StackName": stack}
        # The translator asks boto3 for a region even when given one.
        saved = os.environ.get("AWS_DEFAULT_REGION")
        os.environ["AWS_DEFAULT_REGION"] = REGION
        try:
            self.template = transform(copy.deepcopy(source), {**values, **pseudo}, _NoManagedPolicies())
        finally:
            if saved is None:
                del os.environ["AWS_DEFAULT_REGION"]
            else:
                os.environ["AWS_DEFAULT_REGION"] = saved
        self.values = {**values, **pseudo, "AWS::URLSuffix": "amazonaws.com"}
        self.resources = self.template["Resources"]
        self.conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self.conditions[name]

    def resolve(self, value):
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not provision.NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return provision.NO_VALUE
                return self.values[arg] if arg in self.values else arg
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::GetAtt":
                lid, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return lid if attr == "Arn" else f"{lid}.{attr}"
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return re.sub(r"\$\{([^}]+)\}", lambda m: self._sub(m.group(1), variables), text)
            if key == "Fn::If":
                name, then, otherwise = arg
                return self.resolve(then if self.condition(name) else otherwise)
            if key == "Fn::Equals":
                a, b = self.resolve(arg)
                return str(a) == str(b)
            if key == "Fn::Not":
                return not self.resolve(arg)[0]
            if key == "Fn::Split":
                return str(self.resolve(arg[1])).split(arg[0])
            if key == "Fn::Join":
                return arg[0].join(map(str, self.resolve(arg[1])))
            assert not key.startswith("Fn::"), f"extend Resolved for {key}"
        out = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not provision.NO_VALUE}

    def _sub(self, name: str, variables: dict) -> str:
        if name in variables:
            return str(variables[name])
        if name in self.values:
            return str(self.values[name])
        lid, _, attr = name.partition(".")
        assert lid in self.resources, f"${{{name}}} names nothing"
        return lid if attr in ("", "Arn") else f"{lid}.{attr}"

    def functions(self) -> dict[str, dict]:
        return {lid: r for lid, r in self.resources.items() if r["Type"] == "AWS::Lambda::Function"}

    def role_of(self, function: str) -> str:
        return self.resolve(self.resources[function]["Properties"]["Role"])

    def statements(self, role: str) -> list[dict]:
        """Every statement the role gets: its inline policies and each
        AWS::IAM::Policy attached to it."""
        props = self.resources[role]["Properties"]
        docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
        docs += [
            r["Properties"]["PolicyDocument"]
            for r in self.resources.values()
            if r["Type"] == "AWS::IAM::Policy" and {"Ref": role} in r["Properties"]["Roles"]
        ]
        out = []
        for doc in self.resolve(docs):
            for s in doc["Statement"]:
                assert s["Effect"] == "Allow" and "NotAction" not in s and "NotResource" not in s, s
                out.append({**s, "Action": _list(s["Action"]), "Resource": _list(s["Resource"])})
        return out

    def grants(self, role: str) -> set[tuple[str, str]]:
        return {(a, r) for s in self.statements(role) for a in s["Action"] for r in s["Resource"]}


class _NoManagedPolicies:
    def load(self):
        raise AssertionError("the template names an AWS managed policy; the translator would have to look it up")


def _list(v):
    return v if isinstance(v, list) else [v]


@cache
def default() -> Resolved:
    return Resolved()


def roles() -> set[str]:
    t = default()
    return {t.role_of(f) for f in t.functions()}


# --- the roles -----------------------------------------------------------------------------


def test_every_function_runs_with_a_declared_role_and_no_managed_policy():
    t = default()
    assert roles() == set(EXPECTED)
    for role in roles():
        props = t.resources[role]["Properties"]
        assert not props.get("ManagedPolicyArns"), f"{role}: {props.get('ManagedPolicyArns')}"
        assert t.resolve(props["AssumeRolePolicyDocument"])["Statement"] == [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    assert "AWSLambdaSQSQueueExecutionRole" not in repr(t.template)


def test_roles_grant_exactly_what_the_code_calls():
    t = default()
    for role, want in EXPECTED.items():
        have = {a for a, _ in t.grants(role)}
        assert not have - want, f"{role} is granted what its code never calls: {sorted(have - want)}"
        assert not want - have, f"{role} lacks what its code calls: {sorted(want - have)}"


def test_tables_and_keys_each_role_may_touch():
    t = default()
    tables = {lid for lid, r in t.resources.items() if r["Type"] == "AWS::DynamoDB::Table"}
    for role in roles():
        reached, streams = set(), set()
        for a, r in t.grants(role):
            if a.startswith("dynamodb:"):
                table, _, index = r.partition("/")
                if table.endswith(".StreamArn"):
                    # A stream is read, never written, and only by its reader.
                    assert a in STREAM_READS and not index, f"{role}: {a} on {r}"
                    streams.add(table.removesuffix(".StreamArn"))
                else:
                    assert a not in STREAM_READS, f"{role}: {a} on {r}"
                    reached.add(table)
                table = table.removesuffix(".StreamArn")
                assert table in tables and index in ("", "index/*"), f"{role}: {a} on {r}"
        assert reached | streams == (TABLES[role] if TABLES[role] is not None else tables), role
        assert streams == OWN_STREAMS[role], role
        keys = {r for a, r in t.grants(role) if a.startswith("kms:")}
        assert keys == KEYS[role], role
        # Signing only by the roles that release commands; never the data key.
        assert {r for a, r in t.grants(role) if a == "kms:Sign"} == (
            {"CommandSigningKey"} if role in ("DispatchRole", "IngestRole") else set()), role
        assert {r for a, r in t.grants(role) if a == "events:PutEvents"} == (
            {"EventBus"} if role in ("IngestRole", "ChangeEventsRole") else set()), role
    # Node credentials: the node role only.
    assert {r for a, r in t.grants("ApiRole") if a == "sts:AssumeRole"} == {"NodeRole"}


def test_no_wildcard_resources_except_where_named():
    # SecureString data keys: any key of this account, held to parameters by
    # the encryption-context condition (see the template).
    allowed = {("kms:GenerateDataKey", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*"),
               ("kms:Decrypt", f"arn:aws:kms:{REGION}:{ACCOUNT}:key/*")}
    # DescribeTags has no resource-level permissions: "*" is all IAM takes.
    # Only the api's role, only that read-only action, only in the stack's
    # region.
    anything = {("ApiRole", "ec2:DescribeTags")}
    t = default()
    for role in roles():
        for s in t.statements(role):
            for a in s["Action"]:
                assert "*" not in a, f"{role}: {a}"
                for r in s["Resource"]:
                    if r == "*":
                        assert (role, a) in anything and s["Resource"] == ["*"], f"{role}: {a} on *"
                        assert s["Action"] == ["ec2:DescribeTags"], s
                        assert s.get("Condition") == {"StringEquals": {"aws:RequestedRegion": REGION}}, s
                    if (a, r) in allowed:
                        assert "kms:EncryptionContext:PARAMETER_ARN" in s.get("Condition", {}).get("StringLike", {})
    # resource-groups: the account's groups in this region.
    assert ("resource-groups:GetGroupQuery", f"arn:aws:resource-groups:{REGION}:{ACCOUNT}:group/*") in t.grants("ApiRole")


def node_queue_arns(t: Resolved) -> str:
    # The translator has folded Globals into each function.
    env = t.resources["Api"]["Properties"]["Environment"]["Variables"]
    prefix = t.resolve(env["STEWARD_NODE_QUEUE_PREFIX"])
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{prefix}*"


def test_queues_each_role_may_touch():
    t = default()
    nodes = node_queue_arns(t)
    assert nodes == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}_node_*"
    queues = {lid for lid, r in t.resources.items() if r["Type"] == "AWS::SQS::Queue"}
    # Sessions' queues: the node prefix, `s`, the session's hex (no node id
    # starts with `s`).
    sessions = nodes.removesuffix("*") + "s*"
    for role in roles():
        for a, r in t.grants(role):
            if not a.startswith("sqs:"):
                continue
            assert r in queues or r == nodes or (r, a, role) == (sessions, "sqs:DeleteQueue", "IngestRole"), \
                f"{role}: {a} on {r}"
            if a in CONSUME:
                assert r in OWN_QUEUES[role], f"{role} may {a} on {r}, not its own queue"
            if a == "sqs:SendMessage":
                assert r in SENDS_TO[role] or (r == nodes and role in NODE_QUEUE_SENDERS), f"{role} sends to {r}"
        consumed = {r for a, r in t.grants(role) if a in CONSUME}
        for q in OWN_QUEUES[role]:
            for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
                assert (a, q) in t.grants(role), f"{role} cannot {a} on its queue {q}"
        assert consumed == OWN_QUEUES[role]
        sent = {r for a, r in t.grants(role) if a == "sqs:SendMessage"}
        assert sent - {nodes} == SENDS_TO[role], role
        assert (nodes in sent) == (role in NODE_QUEUE_SENDERS), role
    # Node queues: the api creates, reads the ARN of and deletes them
    # (DeregisterManagedInstance); nothing else.
    assert {a for a, r in t.grants("ApiRole") if r == nodes} == {
        "sqs:CreateQueue", "sqs:GetQueueAttributes", "sqs:DeleteQueue"
    }
    # Ingest deletes an ended session's queues, and no node's.
    assert {a for a, r in t.grants("IngestRole") if r == sessions} == {"sqs:DeleteQueue"}
    # The event sources are the roles' own queues and streams; a stream's
    # records are retried until they are handled (an event is never dropped).
    for lid, r in t.resources.items():
        if r["Type"] == "AWS::Lambda::EventSourceMapping":
            props = t.resolve(r["Properties"])
            role, source = t.role_of(props["FunctionName"]), props["EventSourceArn"]
            if source.endswith(".StreamArn"):
                assert source.removesuffix(".StreamArn") in OWN_STREAMS[role], lid
                assert props["MaximumRetryAttempts"] == -1, lid
                assert props["StartingPosition"] == "TRIM_HORIZON", lid
                assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"], lid
            else:
                assert source in OWN_QUEUES[role], lid
    streamed = {lid for lid, r in t.resources.items()
                if r["Type"] == "AWS::DynamoDB::Table" and "StreamSpecification" in r["Properties"]}
    assert streamed == OWN_STREAMS["ChangeEventsRole"]


def test_output_buckets_are_granted_only_when_named():
    def s3(t: Resolved) -> dict[str, set[str]]:
        return {role: {r for a, r in t.grants(role) if a.startswith("s3:")} for role in roles()}

    presigners = {"ApiRole", "DispatchRole", "IngestRole"}
    plain = s3(default())
    assert plain == {role: {"OutputBucket/*"} if role in presigners else set() for role in roles()}
    listed = s3(Resolved({"OutputBuckets": "ops-output,audit.example.com"}))
    extra = {"arn:*:s3:::ops-output/*", "arn:*:s3:::audit.example.com/*"}
    assert listed == {role: plain[role] | extra if role in presigners else set() for role in roles()}
    one = s3(Resolved({"OutputBuckets": "ops-output"}))
    assert one["DispatchRole"] == {"OutputBucket/*", "arn:*:s3:::ops-output/*"}
    env = default().resources["Dispatch"]["Properties"]["Environment"]["Variables"]
    assert env["STEWARD_OUTPUT_BUCKETS"] == {"Ref": "OutputBuckets"}


def test_only_the_api_reads_ec2_and_only_instance_tags():
    t = default()
    ec2 = {role: {(a, r) for a, r in t.grants(role) if a.startswith("ec2:")} for role in roles()}
    assert ec2 == {role: {("ec2:DescribeTags", "*")} if role == "ApiRole" else set() for role in roles()}
    # What the adapters ask EC2 is exactly what is granted.
    assert {f"ec2:{action}" for action in ec2_calls().values()} == {a for a, _ in ec2["ApiRole"]}


def test_ec2_registration_settings_reach_the_api_only():
    def env(t: Resolved, fn: str) -> dict:
        return t.resolve(t.resources[fn]["Properties"]["Environment"]["Variables"])

    t = default()
    api = env(t, "Api")
    # No account listed: the stack's own. No certificate: AWS's, from the code.
    assert api["STEWARD_ALLOWED_ACCOUNT_IDS"] == ACCOUNT
    assert api["STEWARD_EC2_IDENTITY_CERTIFICATES"] == ""
    listed = Resolved({"AllowedAccountIds": "111111111111,222222222222",
                       "Ec2IdentityCertificates": "-----BEGIN CERTIFICATE----- MIIB -----END CERTIFICATE-----"})
    api = env(listed, "Api")
    assert api["STEWARD_ALLOWED_ACCOUNT_IDS"] == "111111111111,222222222222"
    assert api["STEWARD_EC2_IDENTITY_CERTIFICATES"].startswith("-----BEGIN CERTIFICATE-----")
    for fn in t.functions():
        if fn != "Api":
            assert not {"STEWARD_ALLOWED_ACCOUNT_IDS", "STEWARD_EC2_IDENTITY_CERTIFICATES"} & set(env(t, fn)), fn
    pattern = re.compile(provision.load_template(ROOT / "template.yaml")["Parameters"]["AllowedAccountIds"]
                         ["AllowedPattern"])
    for ok in ("", "123456789012", "123456789012,210987654321", "123456789012, 210987654321"):
        assert pattern.fullmatch(ok), ok
    for bad in ("12345678901", "123456789012,", "all", "123456789012;210987654321"):
        assert not pattern.fullmatch(bad), bad


def test_logs_go_to_the_functions_own_groups_with_retention():
    t = default()
    groups = {lid: r for lid, r in t.resources.items() if r["Type"] == "AWS::Logs::LogGroup"}
    for fn, r in t.functions().items():
        group = t.resolve(r["Properties"]["LoggingConfig"]["LogGroup"])
        assert group == f"{fn}LogGroup" and group in groups, fn
        props = t.resolve(groups[group]["Properties"])
        assert props["LogGroupName"] == f"/aws/lambda/{STACK}-{fn}"
        assert props["RetentionInDays"] == "30"
        role = t.role_of(fn)
        assert ("logs:PutLogEvents", group) in t.grants(role) and ("logs:CreateLogStream", group) in t.grants(role)
    for role in roles():
        logs = {r for a, r in t.grants(role) if a.startswith("logs:")}
        assert logs == {f"{fn}LogGroup" for fn in t.functions() if t.role_of(fn) == role}, role
    assert Resolved({"LogRetentionDays": "7"}).resolve(groups["ApiLogGroup"]["Properties"])["RetentionInDays"] == "7"


def test_reserved_concurrency_only_when_asked():
    t = default()
    for fn, r in t.functions().items():
        assert "ReservedConcurrentExecutions" not in t.resolve(r["Properties"]), fn
    set_ = Resolved({"ApiReservedConcurrency": "50", "DispatchReservedConcurrency": "10"})
    got = {fn: set_.resolve(r["Properties"]).get("ReservedConcurrentExecutions") for fn, r in set_.functions().items()}
    assert got == {"Api": "50", "Dispatch": "10", "Ingest": None, "Scheduler": None, "Automation": None,
                   "ChangeEvents": None}


def test_two_stacks_do_not_overlap():
    a, b = Resolved(stack="steward"), Resolved(stack="steward-node")
    for t, name in ((a, "steward"), (b, "steward-node")):
        assert t.resolve(t.resources["EventBus"]["Properties"]["Name"]) == name
    wa, wb = node_queue_arns(a), node_queue_arns(b)
    assert wa != wb
    # Neither stack's node-queue wildcard matches the other's node queues,
    # nor the queues CloudFormation names for either (<stack>-<id>-<suffix>).
    for w, other in ((wa, "steward-node"), (wb, "steward")):
        for queue in (f"{other}_node_mi-0123456789abcdef0", f"{other}-WorkQueue-ABC123", f"{other}-node-mi-01"):
            assert not fnmatch.fnmatchcase(f"arn:aws:sqs:{REGION}:{ACCOUNT}:{queue}", w), (w, queue)
    # An explicit prefix is used as given.
    c = Resolved({"NodeQueuePrefix": "fleet-"})
    assert node_queue_arns(c) == f"arn:aws:sqs:{REGION}:{ACCOUNT}:fleet-*"
    assert c.resolve(c.resources["NodeRole"]["Properties"]["Policies"][0]["PolicyDocument"])["Statement"][0][
        "Resource"] == node_queue_arns(c)


def test_what_a_deleted_stack_keeps():
    t = default()
    kept = {lid for lid, r in t.resources.items() if r.get("DeletionPolicy") == "Retain"}
    tables = {lid for lid, r in t.resources.items() if r["Type"] == "AWS::DynamoDB::Table"}
    # The tables, the keys their data needs (secrets sealed under DataKey;
    # nodes that trust CommandSigningKey), and command output.
    assert kept == tables | {"DataKey", "CommandSigningKey", "OutputBucket"}
    for lid in kept:
        assert t.resources[lid].get("UpdateReplacePolicy") == "Retain", lid
    [rule] = t.resolve(t.resources["OutputBucket"]["Properties"]["LifecycleConfiguration"]["Rules"])
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == "30"
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert "Prefix" not in rule and "Filter" not in rule  # every object


def test_the_function_url_is_public_and_verified_by_the_function():
    # AuthType NONE is deliberate (the README's deploy section says why):
    # the api verifies SigV4 itself, with Steward's own keys.
    t = default()
    urls = [r for r in t.resources.values() if r["Type"] == "AWS::Lambda::Url"]
    assert [u["Properties"]["AuthType"] for u in urls] == ["NONE"]
    assert "sam deploy --guided" in (ROOT / "README.md").read_text()


# --- every SDK call is granted -----------------------------------------------------------

SERVICES = {"dynamodb": "dynamodb", "sqs": "sqs", "kms": "kms", "s3": "s3", "events": "events",
            "sts": "sts", "resource-groups": "resource-groups"}
# SDK operations whose IAM action is not their own name.
ACTION_OF = {
    ("dynamodb", "TransactWriteItems"): {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
                                         "dynamodb:ConditionCheckItem"},
    ("dynamodb", "TransactGetItems"): {"dynamodb:GetItem"},
    ("sqs", "SendMessageBatch"): {"sqs:SendMessage"},
    ("sqs", "DeleteMessageBatch"): {"sqs:DeleteMessage"},
    ("sqs", "ChangeMessageVisibilityBatch"): {"sqs:ChangeMessageVisibility"},
    ("s3", "HeadObject"): {"s3:GetObject"},
    ("s3", "ListObjectsV2"): {"s3:ListBucket"},
}


@cache
def sdk_operations() -> dict[str, set[tuple[str, str]]]:
    """snake_case SDK method -> {(service, Operation)} for the services the adapters use."""
    session = botocore.session.get_session()
    out: dict[str, set[tuple[str, str]]] = {}
    for service in SERVICES:
        for op in session.get_service_model(service).operation_names:
            out.setdefault(xform_name(op), set()).add((service, op))
    return out


def adapter_lines():
    """(file, line number, line) of the adapters' code in aws/src: the test
    helpers (testing.rs) and unit tests left out."""
    for path in sorted((ROOT / "aws" / "src").glob("*.rs")):
        if path.name == "testing.rs":
            continue
        text = path.read_text().split("#[cfg(test)]", 1)[0]
        for n, line in enumerate(text.splitlines(), 1):
            yield path, n, line


def sdk_calls() -> dict[str, set[tuple[str, str]]]:
    """`file:line` -> the SDK operations called there: a `.<operation>()`
    in aws/src (the test helpers and unit tests left out)."""
    ops = sdk_operations()
    calls = {}
    for path, n, line in adapter_lines():
        for m in re.finditer(r"\.([a-z][a-z0-9_]*)\(\)", line):
            if m.group(1) in ops:
                calls[f"{path.name}:{n}"] = ops[m.group(1)]
    return calls


def ec2_calls() -> dict[str, str]:
    """`file:line` -> the EC2 Query API action sent there: the adapters call
    EC2 without an SDK client, naming the action in the request's form
    (testing.rs, which sets up instances for the tests, left out)."""
    calls = {}
    for path, n, line in adapter_lines():
        for m in re.finditer(r'append_pair\("Action", "([A-Za-z]+)"\)', line):
            calls[f"{path.name}:{n}"] = m.group(1)
    # The scan finds the call it must (else it proves nothing).
    assert "DescribeTags" in calls.values(), calls
    return calls


def test_every_sdk_call_in_the_adapters_is_granted_to_some_role():
    t = default()
    granted = {a for role in roles() for a, _ in t.grants(role)}
    calls = sdk_calls()
    # The scan finds the calls it must (else it finds nothing and proves nothing).
    found = {op for ops in calls.values() for _, op in ops}
    assert {"PutItem", "TransactWriteItems", "SendMessage", "SendMessageBatch", "Sign", "PutObject",
            "PutEvents", "AssumeRole", "CreateQueue"} <= found, found
    missing = {}
    for where, ops in calls.items():
        needs = [ACTION_OF.get((s, op), {f"{SERVICES[s]}:{op}"}) for s, op in ops]
        # A method name several services share needs one of them granted.
        if not any(n <= granted for n in needs):
            missing[where] = sorted(set().union(*needs) - granted)
    assert not missing, f"SDK calls no role may make (grant them in template.yaml): {missing}"


@pytest.mark.parametrize("call, action", [("transact_write_items", "dynamodb:ConditionCheckItem"),
                                          ("send_message_batch", "sqs:SendMessage")])
def test_the_scan_maps_batch_and_transaction_calls(call, action):
    [(service, op)] = sdk_operations()[call]
    assert action in ACTION_OF[(service, op)]
