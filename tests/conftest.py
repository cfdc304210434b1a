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
    """A started Debian node, registered and Online; stopped and deregistered
    after the test (its mounts go with it)."""
    from debian_node import started_node

    node = started_node(tmp_path, "debian")
    try:
        yield node
    finally:
        node.stop()
        from fleet import deregister, ssm_client

        if node.instance_id():
            deregister(ssm_client(), node.instance_id())


# --- the web console -------------------------------------------------------------
# Debian's Chromium through Playwright (tests/console.py): one browser for the
# session, a fresh context (no storage, no cookies) per test.


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    from console import launch

    with sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    p = context.new_page()
    try:
        yield p
    finally:
        context.close()


# --- nodes left behind ---------------------------------------------------------
# A test's nodes go when its fixture's scope ends (fleet.Fleet.stop). This
# checks, once the session is over, that none of the nodes this session's
# agents registered is still registered, deregistering any that is. Nodes the
# session did not register (the demo fleet of `make up`, other runs') are
# never touched: only ids read from this session's agents' state are.


@pytest.fixture(scope="session", autouse=True)
def no_node_left_behind(request):
    """Fails the session if a Fleet's node outlived its fixture, or if any
    node of this session is still registered after the final sweep; nodes of
    agents no Fleet owns (the Debian nodes') are swept here and named."""
    yield
    import fleet

    ours = fleet.session_node_ids()
    if not ours:
        return
    sweep_adapter_test_nodes()
    ssm = fleet.ssm_client()
    left = fleet.registered(ssm, ours)
    for node in sorted(left):
        fleet.deregister(ssm, node)
    still = fleet.registered(ssm, ours)
    leaked = left & fleet.fleet_node_ids()
    swept = left - leaked
    if swept:
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"deregistered {len(swept)} node(s) of agents no Fleet owns at the session's end: {', '.join(sorted(swept))}"
            )
    assert not still, f"nodes of this session still registered after deregistration: {sorted(still)}"
    assert not leaked, f"Fleet nodes outlived their fixture (Fleet.stop not called?): {sorted(leaked)}"


def sweep_adapter_test_nodes():
    """The Rust adapter tests (cargo test, run before this suite by `make
    test`) write nodes straight into the table with the activation id
    `test` (aws/src/testing.rs): they go too, through the same operation a
    user would call. Only in a session that ran agents, so against a stack."""
    import fleet

    env = fleet.stack_env()
    table = fleet.localstack_client("dynamodb")
    pages = table.get_paginator("scan").paginate(
        TableName=env["STEWARD_NODES_TABLE"],
        FilterExpression="ActivationId = :a AND #n = :a",
        ExpressionAttributeNames={"#n": "Name"},
        ExpressionAttributeValues={":a": {"S": "test"}},
        ProjectionExpression="InstanceId",
    )
    ssm = fleet.ssm_client()
    for page in pages:
        for item in page["Items"]:
            fleet.deregister(ssm, item["InstanceId"]["S"])
