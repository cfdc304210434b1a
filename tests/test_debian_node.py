"""The Debian test node (tests/debian_node.py) through the real stack: a real
bookworm root, not the host, with the agent inside as root — it registers and
reports Debian 12, runs a command sent with SendCommand inside the root, sees
the fixture updates of the node's local apt repository, keeps its disk and
loses /run across a simulated reboot, and never touches the host's packages.
"""

import re
import subprocess
import time
from pathlib import Path

from debian_node import FixtureRepo
from fleet import invocations, ssm_client, wait_command_final


def os_release(root):
    fields = {}
    for line in (Path(root) / "etc" / "os-release").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key] = value.strip().strip('"')
    return fields


def run_command(node, *commands, timeout=180):
    """SendCommand (AWS-RunShellScript) to the node alone; its invocation once final."""
    ssm = ssm_client()
    cmd = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[node.instance_id()],
        Parameters={"commands": list(commands)},
        TimeoutSeconds=timeout,
    )["Command"]
    wait_command_final(ssm, cmd["CommandId"], timeout=timeout)
    [inv] = invocations(ssm, cmd["CommandId"])
    return inv


def test_registers_online_as_the_roots_debian(debian_node):
    node = debian_node
    print(f"\nDebian node: start to Online {node.start_seconds:.1f}s")
    release = os_release(node.lower)
    assert release["ID"] == "debian" and release["VERSION_ID"] == "12"
    info = node.info
    assert info["PingStatus"] == "Online"
    assert info["InstanceId"].startswith("mi-")
    # What the agent read inside: the root's os-release, and the node's own
    # host name (a UTS namespace of its own).
    assert info["PlatformName"] == release["NAME"]
    assert info["PlatformVersion"] == release["VERSION_ID"]
    assert info["ComputerName"] == node.name


def test_a_sent_command_runs_inside_the_root(debian_node):
    node = debian_node
    inv = run_command(node, "cat /etc/debian_version; dpkg-query -W steward-fixture-security; cat /etc/steward-test-node")
    assert inv["Status"] == "Success", inv
    out = inv["CommandPlugins"][0]["Output"]
    lines = out.splitlines()
    root_version = (node.lower / "etc" / "debian_version").read_text().strip()
    host_version = Path("/etc/debian_version").read_text().strip()
    print(f"\nroot's /etc/debian_version {root_version}, the host's {host_version}")
    assert lines[0] == root_version
    assert re.match(r"^12\.\d+$", root_version)
    if host_version != root_version:
        assert lines[0] != host_version
    fixture = node.dpkg_version("steward-fixture-security")
    assert fixture == "1.0"
    assert lines[1] == f"steward-fixture-security\t{fixture}"
    # A file only the root has: this was not read on the host.
    assert lines[2].startswith("Steward Debian test node")
    assert not Path("/etc/steward-test-node").exists()


def test_apt_sees_the_fixture_updates_from_the_local_repository(debian_node):
    node = debian_node
    repo = FixtureRepo(node).build()
    assert set(repo.packages) == {"steward-fixture-security", "steward-fixture-rejected", "steward-fixture-reboot"}
    # The root's only apt source is the local file: repository.
    sources = node.sh("cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null; true").stdout
    assert re.findall(r"^deb\S*\s.*$", sources, re.M) == [
        "deb [trusted=yes] file:/srv/steward-repo bookworm main",
        "deb [trusted=yes] file:/srv/steward-repo bookworm-security main",
    ], sources

    # Through the agent, as a patch operation will run it.
    inv = run_command(node, "apt-get update -q", "apt-get -s upgrade")
    assert inv["Status"] == "Success", inv
    out = inv["CommandPlugins"][0]["Output"]
    assert "http" not in out, out
    for name, p in repo.packages.items():
        # Inst steward-fixture-security [1.0] (1.1 Debian-Security:bookworm-security [all])
        label = "Debian-Security" if p["suite"].endswith("-security") else "Debian"
        assert re.search(rf"^Inst {re.escape(name)} \[{re.escape(p['installed'])}\] "
                         rf"\({re.escape(p['version'])} {label}:{re.escape(p['suite'])} \[all\]\)", out, re.M), out
    assert repo.packages["steward-fixture-security"]["suite"] == "bookworm-security"
    assert repo.packages["steward-fixture-rejected"]["suite"] == "bookworm"
    assert repo.packages["steward-fixture-reboot"]["suite"] == "bookworm"

    # The releases as apt sees them: origin, suite, codename, label.
    policy = node.run("apt-cache", "policy").stdout
    assert "release o=Debian,a=bookworm-security,n=bookworm-security,l=Debian-Security,c=main" in policy, policy
    assert "release o=Debian,a=bookworm,n=bookworm,l=Debian,c=main" in policy, policy

    started = time.monotonic()
    sim = node.run("apt-get", "-s", "upgrade").stdout
    elapsed = time.monotonic() - started
    print(f"\napt-get -s upgrade in the Debian node: {elapsed:.2f}s")
    assert sim.count("\nInst ") == len(repo.packages), sim


def test_a_restart_keeps_the_disk_and_clears_run(debian_node):
    node = debian_node
    FixtureRepo(node).build()
    node.run("apt-get", "update", "-q")
    node.run("apt-get", "install", "-y", "-q", "steward-fixture-reboot")
    assert node.dpkg_version("steward-fixture-reboot") == "1.1"
    # The update's postinst asked for a reboot, as a kernel update does.
    assert node.sh("cat /var/run/reboot-required.pkgs").stdout.split() == ["steward-fixture-reboot"]
    node.sh("echo kept >/root/written-before")
    node.run("reboot")
    node.run("shutdown", "-r", "now")
    assert node.reboot_requests() == ["reboot", "shutdown -r now"]
    assert node.run("systemctl", "reboot").returncode == 0
    assert node.run("systemctl", "status", check=False).returncode != 0
    instance = node.instance_id()

    node.restart()
    node.wait_online(ssm_client())
    assert node.instance_id() == instance  # the agent's state is on the node's disk
    assert node.sh("cat /root/written-before").stdout == "kept\n"
    assert node.dpkg_version("steward-fixture-reboot") == "1.1"
    assert node.run("test", "-e", "/var/run/reboot-required", check=False).returncode == 1
    assert node.run("ls", "-A", "/run").stdout.split() == ["lock"]
    assert node.reboot_requests() == ["reboot", "shutdown -r now", "systemctl reboot"]
    # And the agent inside still runs commands after the "reboot".
    inv = run_command(node, "cat /usr/share/steward-fixture/steward-fixture-reboot.version")
    assert inv["Status"] == "Success", inv
    assert inv["CommandPlugins"][0]["Output"].strip() == "1.1"


def test_the_hosts_packages_are_untouched(debian_node):
    node = debian_node
    FixtureRepo(node).build()
    node.run("apt-get", "update", "-q")
    node.run("apt-get", "upgrade", "-y", "-q")
    assert node.dpkg_version("steward-fixture-security") == "1.1"
    host = subprocess.run(["dpkg-query", "-W", "steward-fixture-security"], capture_output=True, text=True)
    assert host.returncode != 0, host.stdout
    assert not Path("/usr/share/steward-fixture").exists()
    # Nor the cached root, which every node shares as its lower layer.
    assert (node.lower / "usr/share/steward-fixture/steward-fixture-security.version").read_text() == "1.0\n"
