"""Shared fixtures for the end-to-end tests. Keep each concern in its own section."""

from __future__ import annotations

import json
import os
import shlex
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# --- stack ---------------------------------------------------------------------
# The local emulators, provisioned from template.yaml. Tests never start them:
# `make up` / `make stack` (infra/stack.sh start + infra/provision.py) does.

STACK_NOT_UP = "the local stack is not up: run `make up` or `make stack` first"


@dataclass
class Stack:
    env: dict[str, str]  # everything .local/stack.env exports
    facts: dict  # .local/stack.json: resources, endpoints, admin key id

    def resource(self, logical_id: str) -> dict:
        return self.facts["resources"][logical_id]


def read_stack_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            words = shlex.split(value)
            env[key] = words[0] if words else ""
    return env


def _answers(url: str, data: bytes | None = None, headers: dict | None = None) -> bool:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=3) as resp:
            return resp.status == 200
    except Exception:
        return False


@pytest.fixture(scope="session")
def stack() -> Stack:
    """The running local stack. Sources .local/stack.env into os.environ (so
    boto3 and subprocesses reach the emulators) and fails every test that uses
    it if the stack is not up."""
    env_file, json_file = ROOT / ".local/stack.env", ROOT / ".local/stack.json"
    if not env_file.exists() or not json_file.exists():
        pytest.fail(f"{STACK_NOT_UP} (no .local/stack.env)", pytrace=False)
    env = read_stack_env(env_file)
    facts = json.loads(json_file.read_text())
    if not _answers(env["AWS_ENDPOINT_URL"] + "/_localstack/health"):
        pytest.fail(f"{STACK_NOT_UP} (LocalStack does not answer at {env['AWS_ENDPOINT_URL']})", pytrace=False)
    os.environ.update(env)
    import boto3

    try:
        tables = boto3.client("dynamodb").list_tables()["TableNames"]
    except Exception as e:
        pytest.fail(f"{STACK_NOT_UP} (DynamoDB Local: {e})", pytrace=False)
    if env["STEWARD_NODES_TABLE"] not in tables:
        pytest.fail(f"{STACK_NOT_UP} (the stack runs but is not provisioned)", pytrace=False)
    return Stack(env=env, facts=facts)


# --- Debian test node ----------------------------------------------------------
# A node that is not the host (tests/debian_node.py): a real Debian bookworm
# root in namespaces of its own with the agent inside as root, registered
# with an activation of its own. The root is built and cached by
# infra/debian-root.sh (infra/test.sh runs it before the end-to-end tests).


@pytest.fixture
def debian_node(stack, tmp_path):
    """A started Debian node, registered and Online; stopped after the test
    (its mounts go with it)."""
    from debian_node import started_node

    node = started_node(tmp_path, "debian")
    try:
        yield node
    finally:
        node.stop()
