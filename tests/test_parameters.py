"""Parameter Store end to end: the real AWS CLI and boto3 against the running
stack. Every test works under its own `/e2e-<id>/` path, so runs never meet."""

import base64
import json
import time
import uuid
from collections import Counter

import pytest

from fleet import (
    ROOT,
    aws,
    drain,
    event_queue,
    localstack_client,
    refusal,
    refused,
    restricted_client,
    ssm_client,
    stack_env,
)


@pytest.fixture(scope="module")
def ssm():
    return ssm_client()


@pytest.fixture
def root():
    return f"/e2e-{uuid.uuid4().hex[:10]}"




# --- put / get -------------------------------------------------------------------


def test_put_and_get_through_the_aws_cli(root):
    name = f"{root}/db/url"
    out = aws("ssm", "put-parameter", "--name", name, "--type", "String", "--value", "postgres://db:5432")
    assert out == {"Version": 1, "Tier": "Standard"}
    got = aws("ssm", "get-parameter", "--name", name)["Parameter"]
    assert got["Name"] == name and got["Value"] == "postgres://db:5432" and got["Type"] == "String"
    assert got["Version"] == 1 and got["DataType"] == "text"
    assert got["ARN"].endswith(f":parameter{name}")

    again = aws("ssm", "put-parameter", "--name", name, "--type", "String", "--value", "x", check=False)
    assert again.returncode != 0 and "ParameterAlreadyExists" in again.stderr
    assert aws("ssm", "put-parameter", "--name", name, "--value", "postgres://db2:5432", "--overwrite")["Version"] == 2
    assert aws("ssm", "get-parameter", "--name", f"{name}:1")["Parameter"]["Value"] == "postgres://db:5432"
    missing = aws("ssm", "get-parameter", "--name", f"{root}/nope", check=False)
    assert missing.returncode != 0 and "ParameterNotFound" in missing.stderr


def test_string_list_description_and_allowed_pattern(ssm, root):
    name = f"{root}/zones"
    ssm.put_parameter(Name=name, Type="StringList", Value="a,b,c", Description="zones", AllowedPattern="^[a-z,]+$")
    p = ssm.get_parameter(Name=name)["Parameter"]
    assert p["Type"] == "StringList" and p["Value"] == "a,b,c"
    refused(ssm.put_parameter, "ParameterPatternMismatchException", Name=name, Value="A,B", Overwrite=True)
    refused(ssm.put_parameter, "InvalidAllowedPatternException", Name=f"{root}/bad", Type="String", Value="x", AllowedPattern="([")
    # The pattern and description stay when an overwrite does not give them.
    ssm.put_parameter(Name=name, Value="d,e", Overwrite=True)
    meta = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"][0]
    assert meta["Description"] == "zones" and meta["AllowedPattern"] == "^[a-z,]+$" and meta["Version"] == 2


def test_name_rules_and_hierarchy_depth(ssm, root):
    deep = root + "".join(f"/l{i}" for i in range(14))  # 15 levels in all
    ssm.put_parameter(Name=deep, Type="String", Value="ok")
    refused(ssm.put_parameter, "HierarchyLevelLimitExceededException", Name=deep + "/l15", Type="String", Value="x")
    # SSM answers a name under /aws/ (its public parameters) with AccessDenied.
    refused(ssm.put_parameter, "AccessDeniedException", Name="/aws/x", Type="String", Value="x")
    for bad in ["aws-thing", "ssm-thing", "/SSM/x", "has space", "/double//slash", "no/leading/slash", "/bad*char"]:
        refused(ssm.put_parameter, "ValidationException", Name=bad, Type="String", Value="x")


def test_tiers_and_value_limits(ssm, root):
    refused(ssm.put_parameter, "ValidationException", Name=f"{root}/big", Type="String", Value="x" * 4097)
    ssm.put_parameter(Name=f"{root}/edge", Type="String", Value="x" * 4096)
    assert ssm.put_parameter(Name=f"{root}/big", Type="String", Value="x" * 4097, Tier="Intelligent-Tiering")["Tier"] == "Advanced"
    ssm.put_parameter(Name=f"{root}/adv", Type="String", Value="x" * 8192, Tier="Advanced")
    refused(ssm.put_parameter, "ValidationException", Name=f"{root}/adv", Value="x" * 8193, Overwrite=True)
    refused(ssm.put_parameter, "ValidationException", Name=f"{root}/adv", Value="y", Overwrite=True, Tier="Standard")
    assert ssm.get_parameter(Name=f"{root}/adv")["Parameter"]["Version"] == 1
    # aws:ec2:image takes an AMI id's form only (SSM's format check).
    refused(
        ssm.put_parameter, "ValidationException", Name=f"{root}/ami", Type="String", Value="ami-1234567Z", DataType="aws:ec2:image"
    )


def test_get_parameters_reports_invalid_names(ssm, root):
    for i in range(3):
        ssm.put_parameter(Name=f"{root}/p{i}", Type="String", Value=f"v{i}")
    out = ssm.get_parameters(Names=[f"{root}/p0", f"{root}/p2", f"{root}/none", f"{root}/p1:9"])
    assert sorted(p["Value"] for p in out["Parameters"]) == ["v0", "v2"]
    assert sorted(out["InvalidParameters"]) == sorted([f"{root}/none", f"{root}/p1:9"])
    refused(ssm.get_parameters, "ValidationException", Names=[f"{root}/p{i}" for i in range(11)])


# --- versions and labels -------------------------------------------------------------


def test_history_keeps_100_versions_and_a_labelled_oldest_blocks_the_101st(ssm, root):
    name = f"{root}/v"
    ssm.put_parameter(Name=name, Type="String", Value="1")
    for i in range(2, 101):
        ssm.put_parameter(Name=name, Value=str(i), Overwrite=True)
    ssm.label_parameter_version(Name=name, ParameterVersion=1, Labels=["first"])
    refused(ssm.put_parameter, "ParameterMaxVersionLimitExceeded", Name=name, Value="101", Overwrite=True)
    assert ssm.get_parameter(Name=name)["Parameter"]["Version"] == 100
    ssm.unlabel_parameter_version(Name=name, ParameterVersion=1, Labels=["first"])
    assert ssm.put_parameter(Name=name, Value="101", Overwrite=True)["Version"] == 101
    versions = [
        v["Version"]
        for page in ssm.get_paginator("get_parameter_history").paginate(Name=name)
        for v in page["Parameters"]
    ]
    assert versions == list(range(2, 102))
    refused(ssm.get_parameter, "ParameterVersionNotFound", Name=f"{name}:1")


def test_labels_move_between_versions(ssm, root):
    name = f"{root}/app"
    ssm.put_parameter(Name=name, Type="String", Value="one")
    ssm.put_parameter(Name=name, Value="two", Overwrite=True)
    out = ssm.label_parameter_version(Name=name, ParameterVersion=1, Labels=["prod", "1bad", "aws-x", "ok.label"])
    assert sorted(out["InvalidLabels"]) == ["1bad", "aws-x"] and out["ParameterVersion"] == 1
    assert ssm.get_parameter(Name=f"{name}:prod")["Parameter"]["Value"] == "one"
    ssm.label_parameter_version(Name=name, Labels=["prod"])  # the latest, version 2
    assert ssm.get_parameter(Name=f"{name}:prod")["Parameter"]["Value"] == "two"
    history = {v["Version"]: v["Labels"] for v in ssm.get_parameter_history(Name=name)["Parameters"]}
    assert history == {1: ["ok.label"], 2: ["prod"]}
    ssm.label_parameter_version(Name=name, ParameterVersion=2, Labels=[f"l{i}" for i in range(9)])
    refused(ssm.label_parameter_version, "ParameterVersionLabelLimitExceeded", Name=name, ParameterVersion=2, Labels=["eleventh"])
    refused(ssm.label_parameter_version, "ParameterVersionNotFound", Name=name, ParameterVersion=7, Labels=["x"])
    out = ssm.unlabel_parameter_version(Name=name, ParameterVersion=2, Labels=["prod", "never"])
    assert out["RemovedLabels"] == ["prod"] and out["InvalidLabels"] == ["never"]
    refused(ssm.get_parameter, "ParameterVersionNotFound", Name=f"{name}:prod")


# --- paths and listing --------------------------------------------------------------


def test_get_parameters_by_path_pages_through_230_parameters(ssm, root):
    names = set()
    for i in range(200):
        names.add(f"{root}/svc/p{i:03d}")
    for i in range(30):
        names.add(f"{root}/svc/deep/q{i:02d}")
    for n in sorted(names):
        ssm.put_parameter(Name=n, Type="String", Value=n[-4:])
    ssm.put_parameter(Name=f"{root}/svcx", Type="String", Value="not under /svc")

    def listed(recursive, via_cli=False):
        if via_cli:
            args = ["ssm", "get-parameters-by-path", "--path", f"{root}/svc", "--page-size", "10"]
            out = aws(*args, *(["--recursive"] if recursive else []))
            return [p["Name"] for p in out["Parameters"]]
        pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=f"{root}/svc", Recursive=recursive)
        got = []
        for page in pages:
            assert len(page["Parameters"]) <= 10
            got += [p["Name"] for p in page["Parameters"]]
        return got

    one_level = listed(False)
    assert len(one_level) == len(set(one_level)) == 200
    assert set(one_level) == {n for n in names if "/deep/" not in n}
    recursive = listed(True, via_cli=True)
    assert len(recursive) == len(set(recursive)) == 230 and set(recursive) == names
    refused(ssm.get_parameters_by_path, "ValidationException", Path=f"{root}/svc", MaxResults=11)
    refused(ssm.get_parameters_by_path, "InvalidNextToken", Path=f"{root}/svc", NextToken="garbage")


def test_describe_parameters_filters(ssm, root):
    ssm.put_parameter(Name=f"{root}/f/a", Type="String", Value="1", Tags=[{"Key": "team", "Value": "blue"}])
    ssm.put_parameter(Name=f"{root}/f/b", Type="SecureString", Value="2")
    ssm.put_parameter(Name=f"{root}/f/c", Type="String", Value="3", Tier="Advanced")
    ssm.label_parameter_version(Name=f"{root}/f/a", Labels=["live"])

    def names(filters):
        out = []
        for page in ssm.get_paginator("describe_parameters").paginate(ParameterFilters=filters):
            out += [p["Name"] for p in page["Parameters"]]
        return sorted(out)

    base = {"Key": "Path", "Option": "Recursive", "Values": [f"{root}/f"]}
    assert names([base]) == [f"{root}/f/a", f"{root}/f/b", f"{root}/f/c"]
    assert names([base, {"Key": "Type", "Values": ["SecureString"]}]) == [f"{root}/f/b"]
    assert names([base, {"Key": "Tier", "Values": ["Advanced"]}]) == [f"{root}/f/c"]
    # Label is a filter of GetParametersByPath (SSM refuses it here).
    refused(ssm.describe_parameters, "InvalidFilterKey", ParameterFilters=[{"Key": "Label", "Values": ["live"]}])
    labelled = ssm.get_parameters_by_path(Path=f"{root}/f", ParameterFilters=[{"Key": "Label", "Values": ["live"]}])
    assert [p["Name"] for p in labelled["Parameters"]] == [f"{root}/f/a"]
    assert names([base, {"Key": "tag:team", "Values": ["blue"]}]) == [f"{root}/f/a"]
    assert names([{"Key": "Name", "Option": "BeginsWith", "Values": [f"{root}/f/"]}]) == [
        f"{root}/f/a", f"{root}/f/b", f"{root}/f/c"
    ]
    refused(ssm.describe_parameters, "ValidationException", ParameterFilters=[{"Key": "Colour", "Values": ["x"]}])
    refused(ssm.describe_parameters, "InvalidFilterOption", ParameterFilters=[{"Key": "Path", "Option": "Sideways", "Values": ["/x"]}])


def test_tags_on_parameters(ssm, root):
    name = f"{root}/tagged"
    ssm.put_parameter(Name=name, Type="String", Value="v")
    ssm.add_tags_to_resource(ResourceType="Parameter", ResourceId=name, Tags=[{"Key": "owner", "Value": "ops"}])
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"]
    assert tags == [{"Key": "owner", "Value": "ops"}]
    ssm.remove_tags_from_resource(ResourceType="Parameter", ResourceId=name, TagKeys=["owner"])
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId=name)["TagList"] == []
    refused(ssm.add_tags_to_resource, "InvalidResourceId", ResourceType="Parameter", ResourceId=f"{root}/none", Tags=[{"Key": "a", "Value": "b"}])
    refused(ssm.put_parameter, "ValidationException", Name=name, Value="w", Overwrite=True, Tags=[{"Key": "a", "Value": "b"}])


def test_delete_parameter_and_parameters(ssm, root):
    for i in range(3):
        ssm.put_parameter(Name=f"{root}/d{i}", Type="String", Value="v")
    ssm.delete_parameter(Name=f"{root}/d0")
    refused(ssm.get_parameter, "ParameterNotFound", Name=f"{root}/d0")
    refused(ssm.delete_parameter, "ParameterNotFound", Name=f"{root}/d0")
    out = ssm.delete_parameters(Names=[f"{root}/d1", f"{root}/d2", f"{root}/dx"])
    assert sorted(out["DeletedParameters"]) == [f"{root}/d1", f"{root}/d2"]
    assert out["InvalidParameters"] == [f"{root}/dx"]
    # A name deleted and put again starts over at version 1.
    assert ssm.put_parameter(Name=f"{root}/d0", Type="String", Value="again")["Version"] == 1


# --- secrets -------------------------------------------------------------------------


def test_secure_string_round_trip(ssm, root):
    name = f"{root}/db/password"
    secret = "s3cr3t-" + uuid.uuid4().hex
    ssm.put_parameter(Name=name, Type="SecureString", Value=secret)
    sealed = ssm.get_parameter(Name=name)["Parameter"]
    assert sealed["Type"] == "SecureString" and secret not in sealed["Value"]
    base64.b64decode(sealed["Value"], validate=True)
    assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == secret
    cli = aws("ssm", "get-parameter", "--name", name, "--with-decryption")["Parameter"]
    assert cli["Value"] == secret
    by_path = ssm.get_parameters_by_path(Path=f"{root}/db", WithDecryption=True)["Parameters"]
    assert [p["Value"] for p in by_path] == [secret]

    # Requests that carry the secret and are refused, each for another reason.
    raw = ssm_client(validate=False)  # the server, not botocore, refuses
    secure = {"Type": "SecureString", "Value": secret}
    expiring = json.dumps([{"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": "2999-01-01T00:00:00.000Z"}}])
    refusals = [
        ("ParameterAlreadyExists", raw.put_parameter, dict(Name=name, **secure)),
        ("HierarchyTypeMismatchException", raw.put_parameter, dict(Name=name, Type="String", Value=secret, Overwrite=True)),
        ("ValidationException", raw.put_parameter, dict(Name=name, Value=secret, Overwrite=True, Tags=[{"Key": "a", "Value": "b"}])),
        ("ParameterPatternMismatchException", raw.put_parameter, dict(Name=f"{root}/digits", AllowedPattern="^[0-9]+$", **secure)),
        ("InvalidAllowedPatternException", raw.put_parameter, dict(Name=f"{root}/pattern", AllowedPattern="([", **secure)),
        ("InvalidKeyId", raw.put_parameter, dict(Name=f"{root}/other", KeyId="alias/does-not-exist", **secure)),
        ("ValidationException", raw.put_parameter, dict(Name=f"{root}/long", Type="SecureString", Value=secret * 200)),
        ("ValidationException", raw.put_parameter, dict(Name=f"{root}/described", Description="d" * 1025, **secure)),
        ("ValidationException", raw.put_parameter, dict(Name=f"{root}/has space", **secure)),
        ("ValidationException", raw.put_parameter, dict(Name=f"{root}/tier", Tier="Gold", **secure)),
        ("ValidationException", raw.put_parameter, dict(Name=f"{root}/typed", Type="Secret", Value=secret)),
        ("ValidationException", raw.put_parameter, dict(Name=f"{root}/ami", DataType="aws:ec2:image", **secure)),
        ("ValidationException", raw.put_parameter, dict(Name=f"{root}/policy", Tier="Standard", Policies=expiring, **secure)),
        ("HierarchyLevelLimitExceededException", raw.put_parameter,
         dict(Name=root + "".join(f"/l{i}" for i in range(15)), **secure)),
        ("AccessDeniedException", raw.put_parameter, dict(Name="/aws/secret", **secure)),
        ("InvalidInstanceId", raw.send_command, dict(
            DocumentName="AWS-RunShellScript", InstanceIds=["mi-0123456789abcdef0"], Parameters={"commands": [f"echo {secret}"]},
        )),
    ]
    request_ids = []
    for expected, call, kwargs in refusals:
        answer = refusal(call, expected, **kwargs)
        assert secret not in json.dumps(answer, default=str), (expected, kwargs.get("Name"))
        request_ids.append(answer["ResponseMetadata"]["RequestId"])
    # None of them wrote anything.
    stored = [p for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=root, Recursive=True) for p in page["Parameters"]]
    assert [(p["Name"], p["Version"]) for p in stored] == [(name, 1)]

    # Every record the stack keeps (parameters, commands, invocations, ...)
    # holds the secret only sealed, if at all.
    env = stack_env()
    ddb = localstack_client("dynamodb")
    tables = sorted(v for k, v in env.items() if k.endswith("_TABLE"))
    assert env["STEWARD_PARAMETERS_TABLE"] in tables and env["STEWARD_COMMANDS_TABLE"] in tables
    for table in tables:
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            # Binary attributes (inventory is kept compressed) are searched
            # byte for byte, as text is.
            text = json.dumps(page["Items"], default=lambda b: bytes(b).decode("latin-1"))
            assert secret not in text, table
    # Nor is it logged: the control plane logged each refusal above, by its
    # request id, and never the secret; no other log has it either.
    logs = {f.name: f.read_text(errors="replace") for f in (ROOT / ".local" / "logs").glob("*.log")}
    for request_id in request_ids:
        assert request_id in logs["steward-local.log"], request_id
    for log_name, text in logs.items():
        assert secret not in text, log_name


def test_a_ciphertext_moved_to_another_parameter_does_not_decrypt(ssm, root):
    a, b = f"{root}/a", f"{root}/b"
    ssm.put_parameter(Name=a, Type="SecureString", Value="alpha-secret")
    ssm.put_parameter(Name=b, Type="SecureString", Value="bravo-secret")
    sealed_a = ssm.get_parameter(Name=a)["Parameter"]["Value"]
    sealed_b = ssm.get_parameter(Name=b)["Parameter"]["Value"]
    env = stack_env()
    ddb = localstack_client("dynamodb")
    table = env["STEWARD_PARAMETERS_TABLE"]
    replaced = 0
    for version in (0, 1):
        item = ddb.get_item(TableName=table, Key={"Name": {"S": b}, "Version": {"N": str(version)}})["Item"]
        text = json.dumps(item)
        assert sealed_b in text
        ddb.put_item(TableName=table, Item=json.loads(text.replace(sealed_b, sealed_a)))
        replaced += 1
    assert replaced == 2
    assert ssm.get_parameter(Name=b)["Parameter"]["Value"] == sealed_a
    message = refused(ssm.get_parameter, "InvalidKeyId", Name=b, WithDecryption=True)
    assert "alpha-secret" not in message
    assert ssm.get_parameter(Name=a, WithDecryption=True)["Parameter"]["Value"] == "alpha-secret"


# --- access --------------------------------------------------------------------------


def test_a_restricted_key_is_refused_outside_its_path(ssm, root):
    ssm.put_parameter(Name=f"{root}/dev/db", Type="String", Value="dev-db")
    ssm.put_parameter(Name=f"{root}/dev/pw", Type="SecureString", Value="dev-pw")
    ssm.put_parameter(Name=f"{root}/prod/db", Type="String", Value="prod-db")
    reader = restricted_client(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
                    "Resource": f"arn:aws:ssm:*:*:parameter{root}/dev/*",
                }
            ]
        },
        user_name="dev-reader",
    )
    assert reader.get_parameter(Name=f"{root}/dev/db")["Parameter"]["Value"] == "dev-db"
    assert {p["Name"] for p in reader.get_parameters_by_path(Path=f"{root}/dev")["Parameters"]} == {
        f"{root}/dev/db", f"{root}/dev/pw"
    }
    refused(reader.get_parameter, "AccessDeniedException", Name=f"{root}/prod/db")
    refused(reader.get_parameters_by_path, "AccessDeniedException", Path=f"{root}/prod")
    refused(reader.put_parameter, "AccessDeniedException", Name=f"{root}/dev/new", Type="String", Value="x")
    # Reading a SecureString's plaintext also needs kms:Decrypt.
    assert reader.get_parameter(Name=f"{root}/dev/pw")["Parameter"]["Value"] != "dev-pw"
    message = refused(reader.get_parameter, "AccessDeniedException", Name=f"{root}/dev/pw", WithDecryption=True)
    assert "kms:Decrypt" in message and "dev-pw" not in message
    refused(ssm.get_parameter, "ParameterNotFound", Name=f"{root}/dev/new")


# --- events and policies ----------------------------------------------------------------


def test_changes_are_events_in_ssms_shape(ssm, root):
    sqs, url = event_queue(
        {"source": ["steward.ssm"], "detail-type": ["Parameter Store Change"], "detail": {"name": [{"prefix": root}]}}
    )
    name = f"{root}/evented"
    ssm.put_parameter(Name=name, Type="SecureString", Value="never-in-events", Description="d")
    ssm.put_parameter(Name=name, Value="still-never", Overwrite=True)
    ssm.label_parameter_version(Name=name, Labels=["x"])
    ssm.delete_parameter(Name=name)
    ops = ["Create", "Update", "LabelParameterVersion", "Delete"]
    seen = drain(sqs, url, lambda s: len(s) >= 4, timeout=30)
    assert sorted(e["detail"]["operation"] for e in seen) == sorted(ops)
    for e in seen:
        assert e["source"] == "steward.ssm" and e["detail"]["name"] == name and e["detail"]["type"] == "SecureString"
        assert any(r.endswith(f":parameter{name}") for r in e["resources"])
    assert "never-in-events" not in json.dumps(seen) and "still-never" not in json.dumps(seen)


def age(name, hours):
    """Backdates a parameter's only version by `hours`, as time would: its
    head and its version both say when it last changed, and the head says
    when its (one-hour) NoChangeNotification is due."""
    table = stack_env()["STEWARD_PARAMETERS_TABLE"]
    ddb = localstack_client("dynamodb")
    changed = time.time() - hours * 3600
    for version in (0, 1):
        item = ddb.get_item(TableName=table, Key={"Name": {"S": name}, "Version": {"N": str(version)}})["Item"]
        assert "LastModifiedDate" in item, item.keys()
        item["LastModifiedDate"] = {"N": f"{changed:.3f}"}
        if version == 0 and "PolicyDue" in item:
            item["PolicyDue"] = {"N": f"{changed + 3600:.3f}"}
        ddb.put_item(TableName=table, Item=item)


def test_policies_expire_and_notify(ssm, root):
    """The scheduled rule fires every minute. Once every policy has acted, a
    witness parameter is made due: its notification comes from a later run,
    after which a notification firing twice would have been seen."""
    sqs, url = event_queue(
        {"source": ["steward.ssm"], "detail-type": ["Parameter Store Policy Action", "Parameter Store Change"],
         "detail": {"$or": [{"parameter-name": [{"prefix": root}]}, {"name": [{"prefix": root}]}]}}
    )
    refused(
        ssm.put_parameter, "ValidationException",
        Name=f"{root}/std", Type="String", Value="v", Tier="Standard",
        Policies=json.dumps([{"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": "2999-01-01T00:00:00.000Z"}}]),
    )
    refused(
        ssm.put_parameter, "InvalidPolicyTypeException",
        Name=f"{root}/bad", Type="String", Value="v", Tier="Advanced",
        Policies=json.dumps([{"Type": "Explode", "Version": "1.0", "Attributes": {}}]),
    )
    # More than a minute away: the notice always comes from an earlier run
    # than the expiration, so a notice given twice would show.
    expires = time.gmtime(time.time() + 75)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", expires)
    name = f"{root}/temporary"
    ssm.put_parameter(
        Name=name, Type="String", Value="v", Tier="Advanced",
        Policies=json.dumps([
            {"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": stamp}},
            {"Type": "ExpirationNotification", "Version": "1.0", "Attributes": {"Before": "1", "Unit": "Hours"}},
        ]),
    )
    no_change = json.dumps([{"Type": "NoChangeNotification", "Version": "1.0", "Attributes": {"After": "1", "Unit": "Hours"}}])
    stale, witness = f"{root}/stale", f"{root}/witness"
    for n in (stale, witness):
        ssm.put_parameter(Name=n, Type="String", Value="v", Tier="Advanced", Policies=no_change)
    age(stale, 2)

    def kinds(seen):
        return Counter(
            (e["detail-type"], e["detail"].get("policy-type") or e["detail"].get("operation"),
             e["detail"].get("parameter-name") or e["detail"].get("name"))
            for e in seen
        )

    policy, change = "Parameter Store Policy Action", "Parameter Store Change"
    acted = {
        (policy, "ExpirationNotification", name), (policy, "Expiration", name), (change, "Delete", name),
        (policy, "NoChangeNotification", stale),
    }
    seen = drain(sqs, url, lambda s: acted <= set(kinds(s)), timeout=260)
    # Made due only now, later than the stale one: a run that notifies it has
    # also looked at every parameter again.
    age(witness, 1.5)
    seen += drain(sqs, url, lambda s: (policy, "NoChangeNotification", witness) in kinds(seen + s), timeout=200)

    refused(ssm.get_parameter, "ParameterNotFound", Name=name)
    assert ssm.get_parameter(Name=stale)["Parameter"]["Value"] == "v"
    # Each policy acted exactly once: one notice before the expiration, one
    # notice for the unchanged version, one deletion.
    assert kinds(seen) == Counter({
        (change, "Create", name): 1, (change, "Create", stale): 1, (change, "Create", witness): 1,
        (policy, "ExpirationNotification", name): 1, (policy, "Expiration", name): 1, (change, "Delete", name): 1,
        (policy, "NoChangeNotification", stale): 1, (policy, "NoChangeNotification", witness): 1,
    }), kinds(seen)
    actions = {(e["detail"]["policy-type"], e["detail"]["parameter-name"]): e for e in seen if e["detail-type"] == policy}
    for e in actions.values():
        assert e["source"] == "steward.ssm" and e["detail"]["action-status"] == "Finished", e
        assert e["detail"]["parameter-type"] == "String", e
    notice, expired = actions[("ExpirationNotification", name)], actions[("Expiration", name)]
    assert notice["time"] <= expired["time"], (notice, expired)
    # The stale parameter's only version now shows its notification given.
    (only,) = ssm.get_parameter_history(Name=stale)["Parameters"]
    assert [(p["PolicyType"], p["PolicyStatus"]) for p in only["Policies"]] == [("NoChangeNotification", "Finished")]


def test_errors_of_the_remaining_operations(ssm, root):
    missing = f"{root}/missing"
    refused(ssm.get_parameter_history, "ParameterNotFound", Name=missing)
    refused(ssm.label_parameter_version, "ParameterNotFound", Name=missing, Labels=["x"])
    refused(ssm.unlabel_parameter_version, "ParameterNotFound", Name=missing, ParameterVersion=1, Labels=["x"])
    refused(ssm.list_tags_for_resource, "InvalidResourceId", ResourceType="Parameter", ResourceId=missing)
    refused(ssm.delete_parameters, "ValidationException", Names=[f"{root}/n{i}" for i in range(11)])
    refused(ssm.get_parameters_by_path, "ValidationException", Path="no-leading-slash")
    refused(ssm.put_parameter, "ValidationException", Name=f"{root}/no-type", Value="x")
    refused(ssm.put_parameter, "ValidationException", Name=f"{root}/key-on-string", Type="String", Value="x", KeyId="alias/aws/ssm")
    refused(ssm.get_parameter_history, "ValidationException", Name=f"{root}/x", MaxResults=51)
    # None of the refusals above created anything.
    assert ssm.get_parameters_by_path(Path=root, Recursive=True)["Parameters"] == []
