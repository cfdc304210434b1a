"""EC2 nodes join by their instance identity, end to end: an instance made
in LocalStack's EC2 (its id and tags are real EC2 answers), its identity
document served by a local IMDSv2 (tests/imds_fixture.py) and signed with
the key whose certificate the local stack trusts (infra/provision.py), a
real agent registering with `register --ec2`, the real AWS CLI and boto3
as clients. Every refusal registers nothing."""

import base64
import hashlib
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fleet import (
    BIN,
    Agent,
    aws,
    deregister,
    localstack_client,
    profile,
    registered,
    ssm_client,
    stack_env,
    wait_command_final,
    wait_for,
)
from imds_fixture import ImdsServer, document_from_instance, document_text, other_key, sign
from schedules import steward

ACCOUNT = "000000000000"  # LocalStack's, allowed by the local stack
REGION = "us-east-1"
# The agent's exit status for a refusal (steward-agent --help).
REFUSED = 3


# --- helpers ---------------------------------------------------------------------


class Ec2Agent(Agent):
    """A real steward-agent that registers by its EC2 identity, asking the
    IMDS at `imds_endpoint`."""

    def __init__(self, name, state_dir, imds_endpoint):
        super().__init__(name, state_dir, profile()["endpoint_url"], stack_env()["AWS_ENDPOINT_URL"], None)
        self.imds_endpoint = imds_endpoint

    def common(self):
        return [
            str(BIN / "steward-agent"),
            "--state-dir", str(self.state_dir),
            "--api-url", self.api_url,
            "--sqs-endpoint", self.sqs_endpoint,
            "--heartbeat-seconds", "2",
            "--imds-endpoint", self.imds_endpoint,
        ]

    def argv(self):
        return [*self.common(), "run", "--ec2"]

    def register(self):
        """`register --ec2`, to its end: (exit status, stdout, stderr)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        p = subprocess.run([*self.common(), "register", "--ec2"], capture_output=True, text=True, timeout=60)
        return p.returncode, p.stdout.strip(), p.stderr

    def status(self):
        p = subprocess.run([*self.common(), "status"], capture_output=True, text=True, timeout=30)
        return p.returncode, (json.loads(p.stdout) if p.returncode == 0 else None)

    def instance_id(self):
        path = self.state_dir / "identity.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        node = str(data.get("InstanceId") or data.get("instance_id") or "")
        return node if node.startswith(("i-", "mi-")) else None


def host_ipv4():
    """The address the agent reports: the one the kernel routes outbound
    traffic from (as agent/src/platform.rs finds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))
            ip = s.getsockname()[0]
        except OSError:
            ip = "127.0.0.1"
    return "127.0.0.1" if ip.startswith("127.") or ip == "0.0.0.0" else ip


def os_release_name():
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "NAME":
                return value.strip().strip('"').strip("'")
    return "Linux"


def agent_version():
    out = subprocess.run([str(BIN / "steward-agent"), "--version"], capture_output=True, text=True, check=True).stdout
    return out.split()[-1]


def info(ssm, instance_id):
    """The node's DescribeInstanceInformation entries (by id)."""
    return ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [instance_id]}])[
        "InstanceInformationList"
    ]


def cli_ids(*filters):
    """The ids the real AWS CLI lists with `--filters` (every page)."""
    out = aws("ssm", "describe-instance-information", "--filters", *filters)
    return [i["InstanceId"] for i in out["InstanceInformationList"]]


def run_shell(ssm, command, **target):
    """Sends AWS-RunShellScript and waits for it; (command, invocations)."""
    cid = ssm.send_command(DocumentName="AWS-RunShellScript", Parameters={"commands": [command]}, **target)[
        "Command"
    ]["CommandId"]
    final = wait_command_final(ssm, cid)
    return final, ssm.list_command_invocations(CommandId=cid, Details=True)["CommandInvocations"]


def stable(entry):
    """A listing entry without what a heartbeat moves."""
    return {k: v for k, v in entry.items() if k not in ("LastPingDateTime", "PingStatus")}


def register_raw(document, signature, key=None, timestamp=None, proof_key=None):
    """Steward.RegisterEc2Instance over plain HTTP, as the agent sends it:
    registers `key` (a new Ed25519 key by default), the request signed with
    `proof_key` (the same key by default): (status, body)."""
    key = key or Ed25519PrivateKey.generate()
    proof_key = proof_key or key
    public = base64.b64encode(
        key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    ).decode()
    ts = int(time.time()) if timestamp is None else timestamp
    message = f"steward-ec2-registration\n{ts}\n{public}\n{hashlib.sha256(document.encode()).hexdigest()}"
    body = {
        "InstanceIdentityDocument": document,
        "InstanceIdentitySignature": signature,
        "PublicKey": public,
        "Timestamp": ts,
        "Signature": base64.b64encode(proof_key.sign(message.encode())).decode(),
        "Hostname": "raw-client",
        "PlatformName": "Raw",
        "PlatformVersion": "1",
        "AgentVersion": "0.0.0",
        "IPAddress": "192.0.2.10",
    }
    req = urllib.request.Request(
        profile()["endpoint_url"].rstrip("/") + "/",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"X-Amz-Target": "Steward.RegisterEc2Instance", "Content-Type": "application/x-amz-json-1.1"},
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def error_type(body):
    """`__type` without a namespace prefix."""
    return str(body.get("__type", "")).rsplit("#", 1)[-1]


# --- fixtures --------------------------------------------------------------------


@pytest.fixture(scope="module")
def ec2(stack):
    return localstack_client("ec2")


@pytest.fixture(scope="module")
def suite():
    return uuid.uuid4().hex[:10]


def launch(ec2, suite, role):
    """One instance in LocalStack's EC2, tagged Role=<role> and suite."""
    tags = [{"Key": "Role", "Value": role}, {"Key": "suite", "Value": suite}]
    r = ec2.run_instances(
        ImageId="ami-0123456789abcdef0",
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )
    return r["Instances"][0]


@pytest.fixture(scope="module")
def instances(ec2, suite):
    made = []

    def make(role):
        inst = launch(ec2, suite, role)
        made.append(inst["InstanceId"])
        return inst

    yield make
    # Only registered ones: an EC2 id that is not a node here gets SSM's
    # ValidationException, not InvalidInstanceId. botocore's model takes
    # mi- ids only.
    ssm = ssm_client(validate=False)
    for i in sorted(registered(ssm, made)):
        deregister(ssm, i)
    if made:
        ec2.terminate_instances(InstanceIds=made)


# --- the join --------------------------------------------------------------------


def test_an_ec2_instance_joins_by_its_identity_and_runs_commands(instances, ec2, suite, tmp_path):
    role = f"ec2-web-{suite}"
    inst = instances(role)
    node = inst["InstanceId"]
    assert node.startswith("i-")
    ssm = ssm_client()
    assert registered(ssm, [node]) == set()

    with ImdsServer(document_from_instance(inst)) as imds:
        agent = Ec2Agent("ec2", tmp_path / "ec2", imds.endpoint)
        try:
            rc, out, err = agent.register()
            assert rc == 0, err
            assert out == node
            # IMDSv2: a token first, then both documents with it.
            assert imds.requests[0] == ("PUT", "/latest/api/token", 200)
            assert ("GET", "/latest/dynamic/instance-identity/document", 200) in imds.requests
            assert ("GET", "/latest/dynamic/instance-identity/signature", 200) in imds.requests
            rc, first = agent.status()
            assert rc == 0 and first["InstanceId"] == node

            # Registering again on the same instance (same state, same key):
            # the same node, once, with the instance's tags as EC2 has them now.
            ec2.create_tags(Resources=[node], Tags=[{"Key": "Tier", "Value": f"front-{suite}"}])
            rc, out, err = agent.register()
            assert (rc, out) == (0, node), err
            rc, again = agent.status()
            assert again["PublicKey"] == first["PublicKey"]
            assert [i["InstanceId"] for i in info(ssm, node)] == [node]
            assert cli_ids(f"Key=tag:suite,Values={suite}") == [node]
            assert cli_ids(f"Key=tag:Tier,Values=front-{suite}") == [node]

            agent.start()

            def online():
                if agent.proc.poll() is not None:
                    raise AssertionError(f"agent exited ({agent.proc.returncode}):\n{agent.log()[-3000:]}")
                return [i for i in info(ssm, node) if i["PingStatus"] == "Online"]

            wait_for(f"{node} online", online)

            # As SSM shows an EC2 instance: the real AWS CLI.
            listed = aws("ssm", "describe-instance-information", "--filters", f"Key=InstanceIds,Values={node}")
            [entry] = listed["InstanceInformationList"]
            assert entry["InstanceId"] == node
            assert entry["ResourceType"] == "EC2Instance"
            assert entry["PingStatus"] == "Online"
            assert entry["IPAddress"] == host_ipv4()
            assert entry["PlatformType"] == "Linux"
            assert entry["PlatformName"] == os_release_name()
            assert entry["AgentVersion"] == agent_version()
            assert entry["ComputerName"] == socket.gethostname()
            assert not entry.get("ActivationId")
            assert not entry.get("IamRole")
            assert node in cli_ids("Key=ResourceType,Values=EC2Instance")
            assert node not in cli_ids("Key=ResourceType,Values=ManagedInstance")
            assert cli_ids(f"Key=tag:Role,Values={role}") == [node]

            # Commands by instance id and by EC2 tag, run by a real shell.
            final, invs = run_shell(ssm, "echo joined-by-identity; echo $((6 * 7))", InstanceIds=[node])
            assert final["Status"] == "Success", invs
            assert [(i["InstanceId"], i["Status"]) for i in invs] == [(node, "Success")]
            assert invs[0]["CommandPlugins"][0]["Output"].split() == ["joined-by-identity", "42"]
            final, invs = run_shell(ssm, "echo by-tag", Targets=[{"Key": "tag:Role", "Values": [role]}])
            assert final["Status"] == "Success", invs
            assert [(i["InstanceId"], i["Status"]) for i in invs] == [(node, "Success")]
            assert invs[0]["CommandPlugins"][0]["Output"].strip() == "by-tag"

            # A second agent (a fresh state directory, so a new key) showing
            # the same document is refused, and the node stays as it was.
            before = stable(info(ssm, node)[0])
            thief = Ec2Agent("thief", tmp_path / "thief", imds.endpoint)
            rc, out, err = thief.register()
            assert rc == REFUSED, (rc, out, err)
            assert "AccessDeniedException" in err
            assert f"Instance {node} is already registered with another key" in err
            assert "deregister" in err
            assert thief.instance_id() is None
            assert thief.status()[0] != 0
            assert [stable(i) for i in info(ssm, node)] == [before]
            # The node's key is still the first agent's: it still runs commands.
            final, invs = run_shell(ssm, "echo still-mine", InstanceIds=[node])
            assert final["Status"] == "Success", invs
            assert invs[0]["CommandPlugins"][0]["Output"].strip() == "still-mine"
        finally:
            agent.stop()

    # Deregistered, it is gone. Not with the AWS CLI: its model of
    # DeregisterManagedInstance takes mi- ids only (20 characters at least)
    # and refuses an i- id before sending anything; the steward CLI and any
    # SDK call without that client-side check can.
    out = steward("nodes", "deregister", node).stdout
    assert f"Node {node} deregistered" in out
    assert registered(ssm, [node]) == set()
    assert info(ssm, node) == []
    assert node not in cli_ids("Key=ResourceType,Values=EC2Instance")

    # As the refusal said: once deregistered, the instance registers with
    # its new key.
    with ImdsServer(document_from_instance(inst)) as imds:
        thief.imds_endpoint = imds.endpoint
        rc, out, err = thief.register()
    assert (rc, out) == (0, node), err
    [entry] = info(ssm, node)
    assert entry["ResourceType"] == "EC2Instance"
    assert cli_ids(f"Key=tag:Role,Values={role}") == [node]
    assert deregister(ssm_client(validate=False), node)
    assert registered(ssm, [node]) == set()


# --- refusals ---------------------------------------------------------------------

# (case, how IMDS serves the instance, expected error code, expected text)
REFUSALS = [
    (
        "signed by another key",
        dict(signing_key="other"),
        "InvalidSignatureException",
        f"The instance identity document's signature does not verify against AWS's certificate for {REGION}",
    ),
    (
        "document changed after signing",
        dict(tamper={"instanceType": "x2iedn.32xlarge"}),
        "InvalidSignatureException",
        f"The instance identity document's signature does not verify against AWS's certificate for {REGION}",
    ),
    (
        "account not allowed",
        dict(doc={"account_id": "111122223333"}),
        "AccessDeniedException",
        "Account 111122223333 is not allowed to register EC2 instances with this Steward",
    ),
    (
        "another region",
        dict(doc={"region": "eu-west-1", "availability_zone": "eu-west-1b"}),
        "ValidationException",
        f"The instance identity document is for region eu-west-1; this Steward runs in {REGION}. "
        "Register the instance with the Steward in its own region.",
    ),
]


@pytest.mark.parametrize("case,serve,code,text", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_an_identity_that_does_not_prove_itself_registers_nothing(instances, suite, tmp_path, case, serve, code, text):
    inst = instances(f"ec2-refused-{suite}")
    node = inst["InstanceId"]
    doc = document_from_instance(inst, **serve.get("doc", {}))
    key = other_key() if serve.get("signing_key") == "other" else None
    ssm = ssm_client()
    with ImdsServer(doc, signing_key=key, tamper=serve.get("tamper")) as imds:
        agent = Ec2Agent("refused", tmp_path / "refused", imds.endpoint)
        rc, out, err = agent.register()
    assert rc == REFUSED, (rc, out, err)
    assert f"{code}: {text}" in err
    assert out == ""
    assert agent.instance_id() is None
    assert registered(ssm, [node]) == set()
    assert node not in cli_ids(f"Key=tag:suite,Values={suite}")


@pytest.mark.parametrize("token_status", [403, 405])
def test_an_imdsv1_only_host_is_refused_by_the_agent(instances, suite, tmp_path, token_status):
    inst = instances(f"ec2-v1-{suite}")
    node = inst["InstanceId"]
    with ImdsServer(document_from_instance(inst), v1_only=True, v1_token_status=token_status) as imds:
        agent = Ec2Agent("v1", tmp_path / "v1", imds.endpoint)
        rc, out, err = agent.register()
        # It asked for a token, saw the document answer without one, and
        # never sent it anywhere.
        assert imds.requests[0] == ("PUT", "/latest/api/token", token_status)
        assert ("GET", "/latest/dynamic/instance-identity/signature", 200) not in imds.requests
    assert rc == REFUSED, (rc, out, err)
    assert "IMDSv1 only" in err and "IMDSv2" in err
    assert f"--instance-id {node} --http-tokens required" in err
    assert agent.instance_id() is None
    assert registered(ssm_client(), [node]) == set()


def test_an_imds_without_the_signature_registers_nothing(instances, suite, tmp_path):
    inst = instances(f"ec2-nosig-{suite}")
    node = inst["InstanceId"]
    with ImdsServer(document_from_instance(inst), serve_signature=False) as imds:
        agent = Ec2Agent("nosig", tmp_path / "nosig", imds.endpoint)
        rc, out, err = agent.register()
        assert imds.requests[-1] == ("GET", "/latest/dynamic/instance-identity/signature", 404)
    # A failure of the host, not a refusal by the control plane.
    assert rc == 1, (rc, out, err)
    assert "the instance metadata service answered /latest/dynamic/instance-identity/signature with HTTP 404" in err
    assert agent.instance_id() is None
    assert registered(ssm_client(), [node]) == set()


def test_a_registration_without_the_signature_is_refused(instances, suite):
    """The API itself, called as the agent calls it: with no signature the
    document proves nothing; the same request with IMDS's signature is
    accepted (so that is the one difference)."""
    inst = instances(f"ec2-raw-{suite}")
    node = inst["InstanceId"]
    text = document_text(document_from_instance(inst))
    ssm = ssm_client()
    key = Ed25519PrivateKey.generate()

    status, body = register_raw(text, "", key)
    assert status == 400, body
    assert error_type(body) == "ValidationException", body
    assert "InstanceIdentitySignature is missing" in body["message"], body
    assert registered(ssm, [node]) == set()

    status, body = register_raw(text, "not base64 at all!", key)
    assert status == 400, body
    assert error_type(body) == "InvalidSignatureException", body
    assert f"does not verify against AWS's certificate for {REGION}" in body["message"], body
    assert registered(ssm, [node]) == set()

    # A signature made over the document without IMDS's own formatting is
    # not the document's signature.
    compact = json.dumps(json.loads(text), separators=(",", ":"))
    status, body = register_raw(text, sign(compact), key)
    assert status == 400 and error_type(body) == "InvalidSignatureException", body
    assert registered(ssm, [node]) == set()

    # The document and its signature are right, but the request does not
    # prove the key it registers: signed by another key, or an hour ago (a
    # captured request sent again).
    status, body = register_raw(text, sign(text), key, proof_key=Ed25519PrivateKey.generate())
    assert status == 400 and error_type(body) == "InvalidSignatureException", body
    assert registered(ssm, [node]) == set()
    status, body = register_raw(text, sign(text), key, timestamp=int(time.time()) - 3600)
    assert status == 400 and error_type(body) == "InvalidSignatureException", body
    assert registered(ssm, [node]) == set()

    status, body = register_raw(text, sign(text), key)
    assert status == 200, body
    assert body["InstanceId"] == node
    assert body["Region"] == REGION
    assert body["QueueUrl"] and body["IngestQueueUrl"] and body["CommandSigningPublicKey"]
    [entry] = info(ssm, node)
    assert (entry["ResourceType"], entry["IPAddress"], entry["PlatformName"]) == ("EC2Instance", "192.0.2.10", "Raw")
    assert deregister(ssm_client(validate=False), node)
    assert registered(ssm, [node]) == set()


def test_the_local_stack_trusts_its_test_certificate(stack):
    """What the refusals above rely on: the control plane's environment
    carries the test certificate and LocalStack's account, and nothing else."""
    from cryptography import x509

    cert_path = Path(__file__).resolve().parent.parent / ".local" / "ec2-identity" / "cert.pem"
    env = stack_env()
    assert env["STEWARD_ALLOWED_ACCOUNT_IDS"] == ACCOUNT
    assert " ".join(cert_path.read_text().split()) == env["STEWARD_EC2_IDENTITY_CERTIFICATES"]
    # One line in stack.env, read back by a shell as the control plane's is.
    sourced = subprocess.run(
        ["bash", "-c", "set -a; source .local/stack.env; printf %s \"$STEWARD_EC2_IDENTITY_CERTIFICATES\""],
        capture_output=True, text=True, check=True, cwd=cert_path.parent.parent.parent,
    ).stdout
    assert sourced == env["STEWARD_EC2_IDENTITY_CERTIFICATES"]
    x509.load_pem_x509_certificate(cert_path.read_bytes())
