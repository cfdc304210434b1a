"""The CDK construct (infra/cdk): `cdk synth` offline with the real CDK CLI,
cdk-nag's AwsSolutions pack judging the result, and the synthesized stack's
IAM statements held to template.yaml's. Needs no stack and no AWS account:
infra/install.sh puts the CDK app's venv and the CLI under .local/cdk.
"""

from __future__ import annotations

import copy
import csv
import importlib.util
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "infra" / "cdk"
CDK_VENV = ROOT / ".local" / "cdk" / "venv"
CDK_CLI = ROOT / ".local" / "cdk" / "cli" / "node_modules" / ".bin" / "cdk"
BIN = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"
STACK = "Steward"
REPORT = f"AwsSolutions--{STACK}-NagReport.csv"



def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


provision = _load("steward_provision", ROOT / "infra" / "provision.py")
# The construct's translation step alone (its package imports aws_cdk, which
# lives in the CDK app's venv, not the tests').
translate = _load("steward_cdk_translate", APP / "steward_cdk" / "translate.py")

SOURCE = provision.load_template(ROOT / "template.yaml")
FUNCTIONS = {
    lid: r["Metadata"]["BuildProperties"]["Binary"]
    for lid, r in SOURCE["Resources"].items()
    if r["Type"] == "AWS::Serverless::Function"
}


def _env() -> dict[str, str]:
    # No AWS credentials or profile: the synth must not need an account.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "CDK_DEFAULT_ACCOUNT"}
    env.update(
        PATH=f"{CDK_VENV / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        CDK_DISABLE_CLI_TELEMETRY="true",
        # jsii's notice that the machine's Node.js is past its end of life.
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


@pytest.fixture(scope="module")
def lambda_build(tmp_path_factory) -> Path:
    """A folder shaped as `cargo lambda build` leaves target/lambda:
    <binary>/bootstrap per function. cargo-lambda's arm64 cross build needs
    zig, which `make test` does not install, so the workspace's own build of
    the same binaries stands in: for the synth only the assets' hashes
    differ."""
    missing = [b for b in FUNCTIONS.values() if not (BIN / b).is_file()]
    assert not missing, f"not built: {missing}; run `cargo build --workspace` first"
    folder = tmp_path_factory.mktemp("lambda")
    for binary in FUNCTIONS.values():
        (folder / binary).mkdir()
        (folder / binary / "bootstrap").symlink_to(BIN / binary)
    return folder


def synth(out: Path, build: Path, *context: str) -> subprocess.CompletedProcess:
    assert CDK_CLI.exists() and (CDK_VENV / "bin" / "python3").exists(), "no .local/cdk: run infra/install.sh"
    args = [str(CDK_CLI), "synth", "--quiet", "--no-notices", "--output", str(out),
            "-c", f"steward:lambda-build={build}"]
    for c in context:
        args += ["-c", c]
    return subprocess.run(args, cwd=APP, env=_env(), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory, lambda_build) -> Path:
    out = tmp_path_factory.mktemp("cdk.out")
    result = synth(out, lambda_build)
    assert result.returncode == 0, f"cdk synth failed:\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    return out


def report(out: Path) -> list[dict[str, str]]:
    with open(out / REPORT, newline="") as f:
        return list(csv.DictReader(f))


def synthesized_template(out: Path) -> dict:
    return json.loads((out / f"{STACK}.template.json").read_text())


def suppressions() -> list[tuple[str, str, str]]:
    """(resource, rule, reason) of every cdk-nag suppression in template.yaml."""
    out = []
    for lid, r in SOURCE["Resources"].items():
        for s in ((r.get("Metadata") or {}).get("cdk_nag") or {}).get("rules_to_suppress", []):
            out.append((lid, s["id"], s["reason"]))
    return out


# --- cdk-nag --------------------------------------------------------------------------------


def test_synth_passes_the_aws_solutions_pack(synthesized):
    rows = report(synthesized)
    judged = {(r["Rule ID"], r["Resource ID"].rsplit("/", 1)[-1]) for r in rows}
    # Nothing is left for CloudFormation to expand after the pack has run:
    # the SAM template is translated before it is included.
    template = synthesized_template(synthesized)
    assert "Transform" not in template
    assert not [lid for lid, r in template["Resources"].items() if r["Type"].startswith("AWS::Serverless::")]
    # Every role, queue and table was judged.
    for lid, r in SOURCE["Resources"].items():
        rule = {"AWS::IAM::Role": "AwsSolutions-IAM4", "AWS::SQS::Queue": "AwsSolutions-SQS4",
                "AWS::DynamoDB::Table": "AwsSolutions-DDB3"}.get(r["Type"])
        if rule:
            assert (rule, lid) in judged, f"{lid} was not judged by {rule}"
    open_findings = [r for r in rows if r["Compliance"] == "Non-Compliant"]
    assert not open_findings, "cdk-nag findings neither fixed nor suppressed:\n" + "\n".join(
        f"{r['Rule ID']} {r['Resource ID']}: {r['Rule Info']}" for r in open_findings
    )
    suppressed = [r for r in rows if r["Compliance"] == "Suppressed"]
    print(f"\ncdk-nag AwsSolutions: {len(rows)} rule checks, "
          f"{sum(r['Compliance'] == 'Compliant' for r in rows)} compliant, {len(suppressed)} suppressed, "
          f"{len(open_findings)} open; {len(suppressions())} suppressions in template.yaml")


def test_every_suppression_gives_its_reason_and_is_used(synthesized):
    rows = report(synthesized)
    suppressed = {(r["Rule ID"], r["Resource ID"].rsplit("/", 1)[-1]) for r in rows if r["Compliance"] == "Suppressed"}
    for lid, rule, reason in suppressions():
        assert len(reason.split()) >= 12, f"{lid} {rule}: a reason is a decision a reviewer can read: {reason!r}"
        assert (rule, lid) in suppressed, f"{lid} suppresses {rule}, which it no longer breaks: remove it"


def test_a_finding_taken_out_of_the_suppressions_fails_the_synth(tmp_path, lambda_build):
    template = (ROOT / "template.yaml").read_text()
    head = "  NodeDeadLetterQueue:\n    Type: AWS::SQS::Queue\n"
    start = template.index(head) + len(head)
    end = template.index("    DeletionPolicy:", start)
    assert "AwsSolutions-SQS3" in template[start:end]
    (tmp_path / "template.yaml").write_text(template[:start] + template[end:])
    result = synth(tmp_path / "out", lambda_build, f"steward:template={tmp_path / 'template.yaml'}")
    assert result.returncode != 0
    assert "AwsSolutions-SQS3" in result.stdout + result.stderr


# --- IAM statements: template.yaml and the synthesized stack agree ---------------------------

# Per resource type, the properties that are IAM policy: who may do what.
POLICY_PROPERTIES = {
    "AWS::IAM::Role": ("AssumeRolePolicyDocument", "Policies", "ManagedPolicyArns", "PermissionsBoundary"),
    "AWS::IAM::Policy": ("PolicyDocument", "Roles", "Users", "Groups"),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument", "Roles", "Users", "Groups"),
    "AWS::SQS::QueuePolicy": ("PolicyDocument", "Queues"),
    "AWS::S3::BucketPolicy": ("PolicyDocument", "Bucket"),
    "AWS::KMS::Key": ("KeyPolicy",),
    "AWS::Events::EventBus": ("Policy",),
    "AWS::Lambda::Permission": ("Action", "FunctionName", "Principal", "FunctionUrlAuthType", "SourceArn",
                                "SourceAccount", "InvokedViaFunctionUrl"),
    "AWS::Lambda::Url": ("AuthType", "TargetFunctionArn"),
    "AWS::Lambda::Function": ("Role",),
}


def iam_statements(template: dict) -> dict[str, dict]:
    """Every resource's IAM policy properties, by logical id (with its type)."""
    out = {}
    for lid, r in template.get("Resources", {}).items():
        keys = POLICY_PROPERTIES.get(r["Type"])
        if keys:
            p = r.get("Properties") or {}
            out[lid] = {"Type": r["Type"], **{k: p[k] for k in keys if k in p}}
    return out


def sam_deployed(source: dict) -> dict:
    """What `sam deploy` of template.yaml creates: its translation by the
    SAM translator, the library CloudFormation's transform runs."""
    return translate.translate(source)


def disagreements(sam: dict, cdk: dict) -> list[str]:
    out = []
    for lid in sorted(set(sam) | set(cdk)):
        if lid not in cdk:
            out.append(f"{lid}: in template.yaml, not in the CDK stack")
        elif lid not in sam:
            out.append(f"{lid}: in the CDK stack, not in template.yaml")
        elif sam[lid] != cdk[lid]:
            out.append(f"{lid}:\n  template.yaml: {json.dumps(sam[lid], sort_keys=True)}\n"
                       f"  CDK stack:     {json.dumps(cdk[lid], sort_keys=True)}")
    return out


def test_the_cdk_stack_and_template_yaml_grant_the_same(synthesized):
    cdk = iam_statements(synthesized_template(synthesized))
    # Roles and policies are plain CloudFormation in template.yaml: compared
    # with it as written. What SAM makes of the functions (their Url and
    # Permission) is compared with its translation.
    sam = iam_statements(sam_deployed(SOURCE))
    written = iam_statements(SOURCE)
    for lid, statements in written.items():
        assert sam[lid] == statements, f"{lid}: the SAM translation changed it"
    problems = disagreements(sam, cdk)
    assert not problems, "the CDK stack and template.yaml disagree on IAM:\n" + "\n".join(problems)
    assert {"ApiRole", "NodeRole", "ApiUrl", "TransportSecurityQueuePolicy", "OutputBucketPolicy"} <= set(cdk)


def test_the_comparison_sees_a_changed_statement(synthesized):
    cdk = iam_statements(synthesized_template(synthesized))
    changed = copy.deepcopy(cdk)
    statements = changed["DispatchRole"]["Policies"][0]["PolicyDocument"]["Statement"]
    statements.append({"Effect": "Allow", "Action": "sqs:*", "Resource": "*"})
    assert any(p.startswith("DispatchRole:") for p in disagreements(cdk, changed))
    del changed["OutputBucketPolicy"]
    assert "OutputBucketPolicy: in template.yaml, not in the CDK stack" in disagreements(cdk, changed)


# --- the construct: props, outputs, code ------------------------------------------------------


def test_the_outputs_are_the_stacks_and_the_constructs(synthesized, lambda_build):
    outputs = synthesized_template(synthesized)["Outputs"]
    assert set(outputs) == set(SOURCE["Outputs"])
    for name, output in SOURCE["Outputs"].items():
        assert outputs[name]["Value"] == output["Value"], name
    # Each output is also an attribute of the construct, in snake case.
    script = f"""
import json, sys
from pathlib import Path
from aws_cdk import App, Stack
from steward_cdk import Steward, steward
stack = Stack(App(), "S")
s = Steward(stack, "Steward", lambda_build=Path({str(lambda_build)!r}))
print(json.dumps({{n: stack.resolve(getattr(s, steward.snake(n))) for n in s.outputs}}))
"""
    result = subprocess.run([str(CDK_VENV / "bin" / "python3"), "-c", script], cwd=APP, env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    attributes = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(attributes) == set(SOURCE["Outputs"])
    assert attributes["ApiUrl"] == SOURCE["Outputs"]["ApiUrl"]["Value"]
    assert attributes["AutomationStartQueueUrl"] == {"Ref": "AutomationStartQueue"}


def test_props_are_the_template_parameters(tmp_path, lambda_build):
    script = f"""
import json
from pathlib import Path
from aws_cdk import App, Stack
from steward_cdk import PARAMETERS, Steward
try:
    Steward(Stack(App(), "S"), "Steward", lambda_build=Path({str(lambda_build)!r}), output_retention_day=9)
    refused = ""
except TypeError as e:
    refused = str(e)
print(json.dumps({{"parameters": PARAMETERS, "refused": refused}}))
"""
    result = subprocess.run([str(CDK_VENV / "bin" / "python3"), "-c", script], cwd=APP, env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    facts = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(facts["parameters"].values()) == sorted(SOURCE["Parameters"])
    assert facts["parameters"]["connection_lost_seconds"] == "ConnectionLostSeconds"
    assert "output_retention_day" in facts["refused"] and "output_retention_days" in facts["refused"]

    # A prop given is a value in the template; one left out stays a parameter.
    result = synth(tmp_path, lambda_build, "steward:param:OutputRetentionDays=90")
    assert result.returncode == 0, result.stderr[-4000:]
    template = synthesized_template(tmp_path)
    assert "OutputRetentionDays" not in template["Parameters"]
    assert "ConnectionLostSeconds" in template["Parameters"]
    rules = template["Resources"]["OutputBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert str(rules[0]["ExpirationInDays"]) == "90"


def test_each_function_runs_its_own_build(synthesized, lambda_build):
    template = synthesized_template(synthesized)
    assets = json.loads((synthesized / f"{STACK}.assets.json").read_text())["files"]
    for lid, binary in FUNCTIONS.items():
        function = template["Resources"][lid]
        assert function["Type"] == "AWS::Lambda::Function"
        key = function["Properties"]["Code"]["S3Key"]
        asset = assets[key.removesuffix(".zip")]
        assert asset["source"]["packaging"] == "zip"
        staged = synthesized / asset["source"]["path"] / "bootstrap"
        # The staged bootstrap is the binary itself (the link followed or kept).
        assert staged.resolve().read_bytes()[:4096] == (BIN / binary).read_bytes()[:4096], lid
        assert staged.resolve().stat().st_size == (BIN / binary).stat().st_size, lid


def test_a_missing_lambda_build_says_how_to_make_it(tmp_path):
    result = synth(tmp_path / "out", tmp_path / "nothing")
    assert result.returncode != 0
    assert "cargo lambda build --release --arm64" in result.stdout + result.stderr


def test_yaml_reading_agrees_with_the_translator():
    # The tests read template.yaml with provision's loader, the construct with
    # the SAM translator's: both must see the same template.
    assert translate.load(ROOT / "template.yaml") == SOURCE
