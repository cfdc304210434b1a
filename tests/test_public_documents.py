"""SSM's public example documents, created exactly as published, and the
built-in documents Steward ships, run on a real agent."""

import pathlib
import socket
import uuid

import botocore.exceptions
import pytest

from fleet import Fleet, aws, invocations, wait_command_final

FIXTURES = pathlib.Path(__file__).resolve().parent.parent / "core" / "tests" / "fixtures" / "documents"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    f = Fleet(tmp_path_factory.mktemp("fleet"))
    act = f.activation("public-docs", 1)
    f.add("pub1", act)
    try:
        f.wait_online("pub1")
        yield f
    finally:
        f.stop()


def node(fleet):
    return fleet.agents["pub1"].instance_id()


def create_fixture(ssm, fixture):
    """CreateDocument with the fixture's bytes as they are."""
    name = f"Public-{fixture.split('.')[0]}-{uuid.uuid4().hex[:8]}"
    fmt = "YAML" if fixture.endswith(".yaml") else "JSON"
    ssm.create_document(Name=name, Content=(FIXTURES / fixture).read_text(), DocumentFormat=fmt, DocumentType="Command")
    return name


def send(fleet, name, params=None):
    """Sends `name` to the node and waits; the command and its one invocation."""
    ssm = fleet.ssm
    cmd = ssm.send_command(DocumentName=name, InstanceIds=[node(fleet)], Parameters=params or {})["Command"]
    done = wait_command_final(ssm, cmd["CommandId"])
    [inv] = invocations(ssm, cmd["CommandId"])
    return done, {p["Name"]: p for p in inv["CommandPlugins"]}


def error_code(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e.value.response["Error"]["Code"]


def test_run_shell_script_plugin_example(fleet):
    name = create_fixture(fleet.ssm, "run-shell-script-plugin.yaml")
    done, plugins = send(fleet, name)
    assert done["Status"] == "Success", done
    assert plugins["runShellScript"]["Output"].strip() == "Hello World"
    done, plugins = send(fleet, name, {"commands": ["echo from a parameter; uname -s"]})
    assert done["Status"] == "Success", done
    assert plugins["runShellScript"]["Output"].split() == ["from", "a", "parameter", "Linux"]
    fleet.ssm.delete_document(Name=name)


def test_parameter_store_default_example(fleet):
    """The default `{{ssm:MyRunCommandParameter:2}}` is version 2 of that
    parameter, read when the command is dispatched."""
    ssm = fleet.ssm
    try:
        ssm.delete_parameter(Name="MyRunCommandParameter")
    except ssm.exceptions.ParameterNotFound:
        pass
    ssm.put_parameter(Name="MyRunCommandParameter", Value="echo version one", Type="String")
    ssm.put_parameter(Name="MyRunCommandParameter", Value="echo version two", Type="String", Overwrite=True)
    ssm.put_parameter(Name="MyRunCommandParameter", Value="echo version three", Type="String", Overwrite=True)
    name = create_fixture(ssm, "parameter-store-default.yaml")
    done, plugins = send(fleet, name)
    assert done["Status"] == "Success", done
    assert plugins["RunScript"]["Output"].strip() == "version two"
    # The record keeps the reference, not the value.
    [listed] = ssm.list_commands(CommandId=done["CommandId"])["Commands"]
    assert listed["Parameters"] == {}
    ssm.delete_parameter(Name="MyRunCommandParameter")
    # Once the parameter is gone the default cannot be resolved: refused.
    assert error_code(lambda: ssm.send_command(DocumentName=name, InstanceIds=[node(fleet)])) == "InvalidParameters"
    ssm.delete_document(Name=name)


def test_cross_platform_example_runs_its_linux_step(fleet):
    ssm = fleet.ssm
    name = create_fixture(ssm, "cross-platform.yaml")
    described = ssm.describe_document(Name=name)["Document"]
    assert described["PlatformTypes"] == ["Windows", "Linux", "MacOS"]
    done, plugins = send(fleet, name)
    # The sample's Linux step runs `cmds`, which no node has: it fails as
    # the shell says, and the PowerShell step was never sent.
    assert done["Status"] == "Failed", done
    assert list(plugins) == ["PatchLinux"]
    assert plugins["PatchLinux"]["ResponseCode"] == 127
    inv = ssm.get_command_invocation(CommandId=done["CommandId"], InstanceId=node(fleet), PluginName="PatchLinux")
    assert "cmds" in inv["StandardErrorContent"] and "not found" in inv["StandardErrorContent"]
    ssm.delete_document(Name=name)


def test_windows_only_document_is_refused_with_nothing_sent(fleet):
    ssm = fleet.ssm
    name = f"WindowsOnly-{uuid.uuid4().hex[:8]}"
    ssm.create_document(
        Name=name,
        DocumentFormat="YAML",
        Content="schemaVersion: '2.2'\nmainSteps:\n- action: aws:runPowerShellScript\n  name: win\n  inputs:\n    runCommand:\n    - Get-Date\n",
    )
    def commands_sent():
        pages = ssm.get_paginator("list_commands").paginate(InstanceId=node(fleet))
        return {c["CommandId"] for p in pages for c in p["Commands"]}

    before = commands_sent()
    assert error_code(lambda: ssm.send_command(DocumentName=name, InstanceIds=[node(fleet)])) == "UnsupportedPlatformType"
    assert commands_sent() == before
    ssm.delete_document(Name=name)


def test_builtin_documents_run_on_an_agent(fleet, tmp_path):
    ssm = fleet.ssm
    amazon = {
        d["Name"]
        for p in ssm.get_paginator("list_documents").paginate(Filters=[{"Key": "Owner", "Values": ["Amazon"]}])
        for d in p["DocumentIdentifiers"]
    }
    assert {
        "AWS-RunShellScript",
        "Steward-CheckDiskSpace",
        "Steward-GatherNodeFacts",
        "Steward-TailFile",
        "Steward-ManageService",
    } <= amazon

    done, plugins = send(fleet, "Steward-GatherNodeFacts")
    assert done["Status"] == "Success", done
    assert list(plugins) == ["system", "network", "storage"]
    facts = plugins["system"]["Output"]
    assert f"hostname: {socket.gethostname()}" in facts and "kernel: Linux" in facts
    assert "filesystem: " in plugins["storage"]["Output"]

    log = tmp_path / "app.log"
    log.write_text("".join(f"line {i}\n" for i in range(1, 8)))
    done, plugins = send(fleet, "Steward-TailFile", {"path": [str(log)], "lines": ["3"]})
    assert done["Status"] == "Success", done
    assert plugins["tailFile"]["Output"].split("\n")[:3] == ["line 5", "line 6", "line 7"]
    done, plugins = send(fleet, "Steward-TailFile", {"path": [str(tmp_path / "missing.log")]})
    assert done["Status"] == "Failed" and plugins["tailFile"]["ResponseCode"] == 1

    done, plugins = send(fleet, "Steward-CheckDiskSpace", {"path": [str(tmp_path)], "thresholdPercent": ["100"]})
    assert done["Status"] == "Success", done
    assert "at or below 100%" in plugins["checkDiskSpace"]["Output"]

    # A value the document does not allow is refused before anything is sent.
    for params in ({"serviceName": ["sshd"], "action": ["mask"]}, {"serviceName": ["a;reboot"]}):
        assert error_code(
            lambda: ssm.send_command(DocumentName="Steward-ManageService", InstanceIds=[node(fleet)], Parameters=params)
        ) == "InvalidParameters"
    service = f"steward-absent-{uuid.uuid4().hex[:6]}"
    done, plugins = send(fleet, "Steward-ManageService", {"serviceName": [service]})
    # Whichever service manager the node has, an unknown service fails and
    # the output names it.
    assert done["Status"] == "Failed", done
    inv = ssm.get_command_invocation(CommandId=done["CommandId"], InstanceId=node(fleet))
    assert service in inv["StandardOutputContent"] + inv["StandardErrorContent"]

    # The CLI reads the same documents.
    cli = aws("ssm", "describe-document", "--name", "Steward-TailFile")["Document"]
    assert cli["Owner"] == "Amazon" and [p["Name"] for p in cli["Parameters"]] == ["path", "lines"]
