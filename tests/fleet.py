"""End-to-end harness: real agent processes registered against the running
control plane, and the real AWS CLI and boto3 as clients.

Each suite tags its nodes with a fresh `suite=<id>` so it never touches the
demo fleet `make up` leaves running, nor another suite's nodes.

Every node a test registers is deregistered again: a `Fleet`'s nodes when the
fleet stops (the end of its fixture's scope, so nodes a module or session
shares, or that a test left ConnectionLost on purpose, live as long as they
are needed), and any other agent's node when the session ends
(`conftest.py`'s `no_node_left_behind`, which also checks that none is left).
"""

import atexit
import configparser
import contextlib
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import boto3
import botocore.config

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
BIN = Path(os.environ.get("STEWARD_BIN_DIR") or Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug")
AWS_CLI = LOCAL / "venv" / "bin" / "aws"
AWS_CONFIG = LOCAL / "aws" / "config"

FINAL = {"Success", "Failed", "TimedOut", "Cancelled"}


def stack_env():
    """The variables of .local/stack.env as a dict."""
    env = {}
    for line in (LOCAL / "stack.env").read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = value.strip().strip("'\"")
    return env


def profile():
    cfg = configparser.ConfigParser()
    cfg.read(AWS_CONFIG)
    return cfg["profile steward"]


def ssm_client(secret=None, validate=True):
    """boto3's SSM client on the steward profile; `secret` overrides the key's
    secret. `validate=False` turns botocore's own input checks off, so the
    server is what answers an input botocore would refuse."""
    p = profile()
    return boto3.client(
        "ssm",
        endpoint_url=p["endpoint_url"],
        region_name=p["region"],
        aws_access_key_id=p["aws_access_key_id"],
        aws_secret_access_key=secret or p["aws_secret_access_key"],
        config=botocore.config.Config(retries={"max_attempts": 2}, parameter_validation=validate),
    )


def code(excinfo):
    """The error code of a `pytest.raises(ClientError)` result."""
    return excinfo.value.response["Error"]["Code"]


def refusal(call, expected, **kwargs):
    """Calls `call(**kwargs)`, asserts it is refused with `expected` and a
    4xx status, and returns the whole error response."""
    import pytest
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as e:
        call(**kwargs)
    assert code(e) == expected, e.value.response
    status = e.value.response["ResponseMetadata"]["HTTPStatusCode"]
    assert 400 <= status < 500, e.value.response
    return e.value.response


def refused(call, expected, **kwargs):
    """As `refusal`, returning the message."""
    return refusal(call, expected, **kwargs)["Error"]["Message"]


def localstack_client(service):
    """A boto3 client for the emulated AWS services themselves (not Steward)."""
    env = stack_env()
    endpoint = env["AWS_ENDPOINT_URL_DYNAMODB"] if service == "dynamodb" else env["AWS_ENDPOINT_URL"]
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=env.get("AWS_REGION", "us-east-1"),
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def aws(*args, check=True):
    """Runs the real AWS CLI on the steward profile; returns parsed JSON output."""
    env = dict(os.environ, AWS_CONFIG_FILE=str(AWS_CONFIG), AWS_PROFILE="steward")
    # As a user's shell would be: only the profile says where and who.
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SSM"):
        env.pop(var, None)
    proc = subprocess.run(
        [str(AWS_CLI), *args, "--output", "json"], env=env, capture_output=True, text=True, timeout=120
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    if proc.returncode != 0:
        return proc
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


def wait_for(what, probe, timeout=90, interval=0.5):
    """Polls `probe` until it returns a truthy value; fails with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last seen: {last!r}")


def deregister(ssm, instance_id):
    """Deregisters one node; `False` when it was not registered (any more)."""
    from botocore.exceptions import ClientError

    try:
        ssm.deregister_managed_instance(InstanceId=instance_id)
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] == "InvalidInstanceId":
            return False
        raise


def registered(ssm, instance_ids):
    """The ids among `instance_ids` that are registered nodes now."""
    ids = sorted(set(instance_ids))
    found = set()
    # SSM takes at most 50 ids in a filter and answers in pages.
    for chunk in range(0, len(ids), 50):
        pages = ssm.get_paginator("describe_instance_information").paginate(
            Filters=[{"Key": "InstanceIds", "Values": ids[chunk:chunk + 50]}]
        )
        for page in pages:
            found |= {i["InstanceId"] for i in page["InstanceInformationList"]}
    return found


# Every agent this process made (Fleet's, the fault suite's, the Debian
# nodes'): the nodes this test session registered are theirs. And every
# Fleet, whose stop() deregisters its agents' nodes.
AGENTS = []
FLEETS = []


def session_node_ids():
    """The nodes this session's agents registered, as their state says."""
    return {i for i in (a.instance_id() for a in AGENTS) if i}


def fleet_node_ids():
    """Those of them a `Fleet` started, which `Fleet.stop` deregisters."""
    return {i for f in FLEETS for i in (a.instance_id() for a in f.agents.values()) if i}


class Agent:
    """One real steward-agent process with its own state directory."""

    def __init__(self, name, state_dir, api_url, sqs_endpoint, activation):
        AGENTS.append(self)
        self.name = name
        self.state_dir = Path(state_dir)
        self.api_url = api_url
        self.sqs_endpoint = sqs_endpoint
        self.activation = activation
        self.proc = None
        self.log_path = self.state_dir / "agent.log"

    def argv(self):
        return [
            str(BIN / "steward-agent"),
            "--state-dir", str(self.state_dir),
            "--api-url", self.api_url,
            "--sqs-endpoint", self.sqs_endpoint,
            "--heartbeat-seconds", "2",
            "run",
            "--activation-code", self.activation["ActivationCode"],
            "--activation-id", self.activation["ActivationId"],
        ]

    def start(self):
        self.state_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=log, start_new_session=True)
        return self

    def kill(self, sig=signal.SIGKILL):
        """Kills the agent process alone (not the commands it started)."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def instance_id(self):
        """The node id the agent registered as, read from its state directory."""
        for f in sorted(self.state_dir.glob("*.json")):
            try:
                data = json.loads(f.read_text())
            except (ValueError, OSError):
                continue
            if isinstance(data, dict):
                for key in ("InstanceId", "instance_id"):
                    if str(data.get(key, "")).startswith("mi-"):
                        return data[key]
        return None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class Fleet:
    """Agents registered for one test suite, tagged `suite=<id>`."""

    def __init__(self, workdir):
        self.suite = uuid.uuid4().hex[:12]
        self.workdir = Path(workdir)
        self.env = stack_env()
        self.api_url = profile()["endpoint_url"]
        self.ssm = ssm_client()
        self.agents = {}
        FLEETS.append(self)

    def activation(self, env_tag, limit):
        return self.ssm.create_activation(
            DefaultInstanceName=f"e2e-{env_tag}",
            IamRole="steward-node",
            RegistrationLimit=limit,
            Tags=[{"Key": "env", "Value": env_tag}, {"Key": "suite", "Value": self.suite}],
        )

    def add(self, name, activation):
        agent = Agent(name, self.workdir / name, self.api_url, self.env["AWS_ENDPOINT_URL"], activation)
        self.agents[name] = agent
        return agent.start()

    def wait_online(self, *names, timeout=60):
        def probe():
            for n in names:
                a = self.agents[n]
                if a.proc.poll() is not None:
                    raise AssertionError(f"agent {n} exited ({a.proc.returncode}):\n{a.log()[-3000:]}")
            ids = [self.agents[n].instance_id() for n in names]
            if not all(ids):
                return None
            online = set()
            # SSM takes at most 50 ids in a filter and answers in pages.
            for chunk in range(0, len(ids), 50):
                pages = self.ssm.get_paginator("describe_instance_information").paginate(
                    Filters=[{"Key": "InstanceIds", "Values": ids[chunk:chunk + 50]}]
                )
                for page in pages:
                    online |= {i["InstanceId"] for i in page["InstanceInformationList"] if i["PingStatus"] == "Online"}
            return ids if online == set(ids) else None

        return wait_for(f"agents {names} online", probe, timeout=timeout)

    def stop(self):
        """Stops every agent, then deregisters every node they registered:
        the end of the fleet's fixture (its scope), failed test or not."""
        for a in self.agents.values():
            a.stop()
        failures = []
        for a in self.agents.values():
            node = a.instance_id()
            if not node:
                continue
            try:
                deregister(self.ssm, node)
            except Exception as e:  # every node is tried; the first failure is raised
                failures.append((node, e))
        if failures:
            node, e = failures[0]
            raise AssertionError(f"cannot deregister {len(failures)} node(s), first {node}: {e}") from e

    def targets(self, env_tag):
        return [{"Key": "tag:suite", "Values": [self.suite]}, {"Key": "tag:env", "Values": [env_tag]}]


def wait_command_final(ssm, command_id, timeout=120):
    def probe():
        cmds = ssm.list_commands(CommandId=command_id)["Commands"]
        return cmds[0] if cmds and cmds[0]["Status"] in FINAL else None

    return wait_for(f"command {command_id} to finish", probe, timeout=timeout)


def listed(ssm, operation, key, **kwargs):
    """Every item `operation` lists (ListCommands' "Commands", say), all
    pages: a check that something was not stored must see the whole listing,
    not its first page."""
    return [item for page in ssm.get_paginator(operation).paginate(**kwargs) for item in page[key]]


def invocations(ssm, command_id):
    return ssm.list_command_invocations(CommandId=command_id, Details=True)["CommandInvocations"]


def process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is gone for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state != "Z"
    except OSError:
        return False


def iam_client(key_id=None, secret=None):
    """boto3's IAM client against Steward (the admin key of the steward
    profile unless another key is given)."""
    p = profile()
    return boto3.client(
        "iam",
        endpoint_url=p["endpoint_url"],
        region_name=p["region"],
        aws_access_key_id=key_id or p["aws_access_key_id"],
        aws_secret_access_key=secret or p["aws_secret_access_key"],
        config=botocore.config.Config(retries={"max_attempts": 2}),
    )


def restricted_key(policy, user_name="restricted"):
    """A new IAM user `<user_name>-<random>` with `policy` (a dict) as its one
    inline policy, and an access key for it, made through Steward's IAM API
    as an operator would. Returns (user name, key id, secret)."""
    iam = iam_client()
    name = f"{user_name}-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="policy", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return name, key["AccessKeyId"], key["SecretAccessKey"]


def key_client(service, key_id, secret):
    """A boto3 client for Steward signed with the given key."""
    p = profile()
    return boto3.client(
        service,
        endpoint_url=p["endpoint_url"],
        region_name=p["region"],
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=botocore.config.Config(retries={"max_attempts": 2}),
    )


def restricted_client(policy, user_name="restricted"):
    """A boto3 SSM client signed with a new access key of a new IAM user
    whose policy is `policy` (a dict, IAM-shaped)."""
    _, key_id, secret = restricted_key(policy, user_name)
    return key_client("ssm", key_id, secret)


def event_queue(pattern):
    """A queue that receives the steward bus's events matching `pattern`.
    Its rule and queue are removed when the test run ends: a rule left on
    the bus adds a delivery to every later event, and the benchmarks count
    them."""
    env = stack_env()
    sqs, events = localstack_client("sqs"), localstack_client("events")
    name = f"e2e-events-{uuid.uuid4().hex[:10]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bus = env["STEWARD_EVENT_BUS"]
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    atexit.register(_remove_event_queue, sqs, events, bus, name, url)
    return sqs, url


def _remove_event_queue(sqs, events, bus, name, url):
    # A caller may have removed them itself: gone is what is wanted.
    try:
        events.remove_targets(Rule=name, EventBusName=bus, Ids=["q"])
        events.delete_rule(Name=name, EventBusName=bus)
    except events.exceptions.ResourceNotFoundException:
        pass
    try:
        sqs.delete_queue(QueueUrl=url)
    except sqs.exceptions.QueueDoesNotExist:
        pass


def drain(sqs, url, until, timeout):
    seen = []

    def probe():
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            seen.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return until(seen)

    wait_for("events", probe, timeout=timeout)
    return seen


def wait_automation_final(ssm, execution_id, timeout=180):
    """The execution's GetAutomationExecution answer once it is final."""

    def probe():
        e = ssm.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
        return e if e["AutomationExecutionStatus"] in FINAL else None

    return wait_for(f"automation execution {execution_id} to finish", probe, timeout=timeout, interval=1)


def wait_automation_status(ssm, execution_id, status, timeout=120):
    """Waits until the execution's status is `status` (e.g. Waiting at an
    aws:approve step); fails early if it ends otherwise."""

    def probe():
        e = ssm.get_automation_execution(AutomationExecutionId=execution_id)["AutomationExecution"]
        if e["AutomationExecutionStatus"] == status:
            return e
        if e["AutomationExecutionStatus"] in FINAL:
            raise AssertionError(f"execution {execution_id} ended {e['AutomationExecutionStatus']}, not {status}: {e}")
        return None

    return wait_for(f"automation execution {execution_id} to be {status}", probe, timeout=timeout, interval=1)


@contextlib.contextmanager
def online_fleet(workdir, **agents_by_env):
    """A Fleet whose agents are online: one activation per env tag, naming
    its agents (`online_fleet(d, dev=["dev1", "dev2"], prod=["prod1"])`);
    stopped and deregistered after."""
    f = Fleet(workdir)
    for env_tag, names in agents_by_env.items():
        activation = f.activation(env_tag, len(names))
        for name in names:
            f.add(name, activation)
    try:
        f.wait_online(*(name for names in agents_by_env.values() for name in names))
        yield f
    finally:
        f.stop()


def dev_prod_fleet(workdir):
    """Three agents online: dev1 and dev2 tagged env=dev, prod1 env=prod
    (all tagged with the fleet's suite)."""
    return online_fleet(workdir, dev=["dev1", "dev2"], prod=["prod1"])
