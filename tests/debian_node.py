"""A test node that is not the host: a real Debian bookworm root (built and
cached by infra/debian-root.sh) with the Steward agent running inside as root.

Each node is an overlay over the cached root (its upper and work directories
live in the test's own directory), run in mount, PID and UTS namespaces of
its own; the network is the host's, so the agent reaches the local stack on
127.0.0.1. Everything is mounted inside the node's mount namespace, never in
the host's: when the node's processes are gone the kernel removes its mounts,
so a node leaves no mount behind, however a test ends.

    node = started_node(tmp_path, "deb1")    # or the `debian_node` fixture: registered, Online
    node.instance_id(); node.targets         # its mi-… id; [{"Key": "InstanceIds", ...}]
    repo = build_fixture_repo(node)          # repo.packages[name]: installed, version, suite
    node.run("apt-get", "update")            # a command inside the running node
    node.dpkg_version("steward-fixture-security")   # "1.0"
    node.restart()                           # a simulated reboot: /run is new, the disk is kept
    node.reboot_requests()                   # what reboot/shutdown/systemctl were asked
    node.stop()

(`DebianNode(workdir, name).start(activation, api_url, sqs_endpoint)` and
`node.wait_online(ssm)` for an activation of one's own.) The node's local
repository, /srv/steward-repo inside (the root's only apt source), holds the
next version of each fixture package once `build_fixture_repo` has run.
"""

from __future__ import annotations

import atexit
import ctypes
import fcntl
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from fleet import BIN, ROOT, Agent, wait_for

DEBIAN_ROOT_SH = ROOT / "infra" / "debian-root.sh"
PATH_INSIDE = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
AGENT_DIR_INSIDE = "/opt/steward"  # the host's agent build directory, read-only
STATE_DIR_INSIDE = "/var/lib/steward-agent"
REPO_INSIDE = "/srv/steward-repo"
REBOOTS_INSIDE = "var/lib/steward-test/reboots"  # written by the root's reboot recorders
FIXTURE_GLOB = "steward-fixture-*"


def _root_lock(root):
    """A shared lock on the root while a node runs on it: infra/debian-root.sh
    takes it alone to build, so it never replaces a root in use."""
    fd = os.open(f"{root}.lock", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def debian_root() -> Path:
    """The cached root, built first if this recipe has not built it yet."""
    subprocess.run(["bash", str(DEBIAN_ROOT_SH), "ensure"], check=True, stdin=subprocess.DEVNULL)
    out = subprocess.run(["bash", str(DEBIAN_ROOT_SH), "path"], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


# Run as PID 1 of the node's PID namespace, in its own mount namespace: mounts
# the node, then runs the agent chrooted into it and passes SIGTERM on. Its
# host PID goes to the ready file: run() enters the node's namespaces by it.
LAUNCH = r"""
set -euo pipefail
M=$NODE_MERGED
mount -t overlay overlay -o "lowerdir=$NODE_LOWER,upperdir=$NODE_UPPER,workdir=$NODE_WORK" "$M"
mount -t proc proc "$M/proc"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$M/run"
mkdir -m 1777 "$M/run/lock"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$M/tmp"
mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$M/dev/shm"
for d in null zero full random urandom; do mount --bind "/dev/$d" "$M/dev/$d"; done
mkdir -p "$M$AGENT_DIR_INSIDE" "$M$REPO_INSIDE"
mount --bind "$NODE_BIN" "$M$AGENT_DIR_INSIDE"
mount -o remount,bind,ro "$M$AGENT_DIR_INSIDE"
mount --bind "$NODE_REPO" "$M$REPO_INSIDE"
echo "$NODE_NAME" >/proc/sys/kernel/hostname
read -r hostpid _ </proc/self/stat
echo "$hostpid" >"$NODE_READY.tmp" && mv "$NODE_READY.tmp" "$NODE_READY"
echo "node: mounted, starting the agent" >&2
chroot "$M" "$@" &
agent=$!
trap 'kill -TERM "$agent" 2>/dev/null || true' TERM INT
status=0
while kill -0 "$agent" 2>/dev/null; do wait "$agent" || status=$?; done
echo "node: agent exited ($status)" >&2
exit "$status"
"""

_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    # unshare gets SIGKILL when the test process dies, however it dies, and
    # its --kill-child takes the node's PID 1, and so the whole node, along.
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _mnt_ns(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def _holders(ns):
    """Processes still in mount namespace `ns` (while any is, its mounts are)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit() and _mnt_ns(p.name) == ns:
            out.append(int(p.name))
    return out


class DebianNode:
    """One Debian root with the agent inside; its files are under workdir/name."""

    def __init__(self, workdir, name):
        if os.geteuid() != 0:
            raise RuntimeError("a Debian test node needs root (mount, chroot, namespaces)")
        self.name = name
        self.dir = Path(workdir) / name
        self.upper = self.dir / "upper"
        self.work = self.dir / "work"
        self.merged = self.dir / "merged"
        self.repo = self.dir / "repo"  # /srv/steward-repo inside
        self.ready = self.dir / "ready"
        self.log_path = self.dir / "agent.log"
        self.lower = debian_root()
        self.proc = None  # the unshare process
        self.pid = None  # the node's PID 1, as the host sees it
        self.mnt_ns = None
        self.agent = None
        self._env = None
        self._lock = None  # shared lock on the root while running
        self.info = None  # DescribeInstanceInformation's entry, once Online
        self.start_seconds = None  # from start() to Online, by started_node
        for d in (self.upper, self.work, self.merged, self.repo):
            d.mkdir(parents=True, exist_ok=True)
        atexit.register(self.stop)

    # --- life -------------------------------------------------------------------

    def start(self, activation, api_url, sqs_endpoint, env=None):
        """Starts the agent inside the node as tests/fleet.py's Agent starts
        one (same arguments and environment), registering with `activation`."""
        # fleet.Agent builds the arguments; its state directory, as the host
        # reads it, is the overlay's upper copy of the one inside.
        self.agent = Agent(self.name, self.upper / STATE_DIR_INSIDE.lstrip("/"), api_url, sqs_endpoint, activation)
        self.agent.log_path = self.log_path
        self._env = dict(os.environ, **(env or {}))
        self._env.update(PATH=PATH_INSIDE, HOME="/root")
        for host_only in ("TMPDIR", "LD_LIBRARY_PATH", "LD_PRELOAD", "VIRTUAL_ENV"):
            self._env.pop(host_only, None)
        self._launch()
        return self

    def _argv_inside(self):
        argv = self.agent.argv()
        argv[0] = f"{AGENT_DIR_INSIDE}/steward-agent"
        argv[argv.index("--state-dir") + 1] = STATE_DIR_INSIDE
        return argv

    def _launch(self):
        self.ready.unlink(missing_ok=True)
        if self._lock is None:
            self._lock = _root_lock(self.lower)
        env = dict(
            self._env,
            NODE_NAME=self.name,
            NODE_LOWER=str(self.lower),
            NODE_UPPER=str(self.upper),
            NODE_WORK=str(self.work),
            NODE_MERGED=str(self.merged),
            NODE_BIN=str(BIN),
            NODE_REPO=str(self.repo),
            NODE_READY=str(self.ready),
            AGENT_DIR_INSIDE=AGENT_DIR_INSIDE,
            REPO_INSIDE=REPO_INSIDE,
        )
        launch = self.dir / "launch.sh"
        launch.write_text(LAUNCH)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--pid", "--uts", "--fork", "--kill-child", "--propagation", "private",
             "bash", str(launch), *self._argv_inside()],
            env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        log.close()

        def mounted():
            if self.proc.poll() is not None:
                raise AssertionError(f"node {self.name} did not start ({self.proc.returncode}):\n{self.log()[-3000:]}")
            return self.ready.exists() and self.ready.read_text().strip()

        self.pid = int(wait_for(f"node {self.name} mounted", mounted, timeout=30, interval=0.05))
        self.mnt_ns = _mnt_ns(self.pid)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        """Stops the agent (SIGTERM, then SIGKILL to the whole node) and waits
        until no process is left in the node's mount namespace, and so none of
        its mounts: the kernel takes them down, innermost first."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # Before the node was up, unshare alone (its child dies with it).
            try:
                os.kill(self.pid or self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            if self.proc.poll() is None:
                # PID 1 killed: the kernel kills everything else in the node.
                for pid in (self.pid, self.proc.pid):
                    try:
                        if pid:
                            os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.proc.wait(timeout=30)
        if self.mnt_ns:
            wait_for(f"node {self.name}'s mounts gone", lambda: not _holders(self.mnt_ns), timeout=30, interval=0.05)
        self.proc = None
        self.pid = None
        self.mnt_ns = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def restart(self):
        """A simulated reboot: every process ends and every mount goes; the
        node starts again on the same upper directory (its disk), with a new
        /run and /tmp, and the agent starts with the same arguments and its
        saved registration. As after any agent that dies mid long poll, the
        first message sent soon after may come only when the queue's
        visibility timeout (30 s) ends: the old poll took it."""
        self.stop()
        self._launch()
        return self

    # --- inside -------------------------------------------------------------------

    def run(self, *argv, check=True, timeout=300, input=None, env=None):
        """Runs argv inside the running node (its mount, PID and UTS
        namespaces, chrooted to its root) as root; returns the CompletedProcess
        (text)."""
        if not self.running():
            raise AssertionError(f"node {self.name} is not running:\n{self.log()[-3000:]}")
        inside = {"PATH": PATH_INSIDE, "HOME": "/root", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
        inside.update(env or {})
        cmd = ["nsenter", f"--target={self.pid}", "--mount", "--pid", "--uts", "--",
               "chroot", str(self.merged), "/usr/bin/env", "-i",
               *(f"{k}={v}" for k, v in inside.items()), *argv]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"in node {self.name}: {' '.join(argv)} failed ({proc.returncode}):\n"
                                 f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return proc

    def sh(self, script, **kwargs):
        """`run("sh", "-c", script)`."""
        return self.run("sh", "-c", script, **kwargs)

    def dpkg_version(self, package):
        """The version of `package` installed in the node, None if it is not."""
        p = self.run("dpkg-query", "-W", "-f=${db:Status-Abbrev}|${Version}", package, check=False)
        if p.returncode != 0:
            return None
        status, _, version = p.stdout.partition("|")
        return version if status.startswith("ii") else None

    def fixtures(self):
        """The fixture packages installed in the node: {name: {version,
        section, priority}}, read from its dpkg database."""
        p = self.run("dpkg-query", "-W", "-f=${Package}\t${Version}\t${Section}\t${Priority}\n", FIXTURE_GLOB)
        out = {}
        for line in p.stdout.splitlines():
            name, version, section, priority = line.split("\t")
            out[name] = {"version": version, "section": section, "priority": priority}
        return out

    def reboot_requests(self):
        """The reboot/shutdown requests recorded in the node (they survive a
        restart), oldest first: e.g. ["shutdown -r now"]."""
        try:
            text = (self.upper / REBOOTS_INSIDE).read_text()
        except FileNotFoundError:
            return []
        return [line.split("\t", 1)[-1].strip() for line in text.splitlines() if line.strip()]

    # --- the agent ----------------------------------------------------------------

    def instance_id(self):
        return self.agent.instance_id() if self.agent else None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_online(self, ssm, timeout=60):
        """Waits until the node's agent has registered and is Online; returns
        its DescribeInstanceInformation entry."""

        def probe():
            if not self.running():
                raise AssertionError(f"node {self.name} stopped:\n{self.log()[-3000:]}")
            iid = self.instance_id()
            if not iid:
                return None
            info = ssm.describe_instance_information(Filters=[{"Key": "InstanceIds", "Values": [iid]}])
            for i in info["InstanceInformationList"]:
                if i["PingStatus"] == "Online":
                    return i
            return None

        return wait_for(f"node {self.name} online", probe, timeout=timeout)


def next_version(version):
    """The version after `version`, its last number one higher: 1.0 -> 1.1."""
    head, _, last = version.rpartition(".")
    return f"{head}.{int(last) + 1}" if head else str(int(last) + 1)


class FixtureRepo:
    """The node's local apt repository (/srv/steward-repo inside, its only
    apt source): for each fixture installed in the node, the next version.
    The security fixture goes to suite bookworm-security (Label
    Debian-Security), the others to bookworm (Label Debian), Origin Debian for
    both; steward-fixture-reboot's new version asks for a reboot in its
    postinst, as a kernel update does. Built with dpkg-deb on the host and
    indexed with the node's own apt-ftparchive."""

    SECURITY = {"steward-fixture-security"}
    REBOOT = {"steward-fixture-reboot"}
    CODENAME = "bookworm"

    def __init__(self, node):
        self.node = node
        self.root = node.repo
        self.packages = {}  # name -> {installed, version, section, priority, suite}

    def suite_of(self, name):
        return f"{self.CODENAME}-security" if name in self.SECURITY else self.CODENAME

    def build(self):
        installed = self.node.fixtures()
        assert installed, "no fixture package in the node's root"
        shutil.rmtree(self.root / "dists", ignore_errors=True)
        shutil.rmtree(self.root / "pool", ignore_errors=True)
        for name, f in sorted(installed.items()):
            version = next_version(f["version"])
            self.node.run("dpkg", "--compare-versions", version, "gt", f["version"])
            suite = self.suite_of(name)
            self.packages[name] = dict(f, installed=f["version"], version=version, suite=suite)
            self._deb(name, version, f["section"], f["priority"], self.root / "pool" / suite)
        for suite in sorted({p["suite"] for p in self.packages.values()}):
            self._index(suite)
        return self

    def _deb(self, name, version, section, priority, out):
        pkg = self.root / "build" / name
        shutil.rmtree(pkg, ignore_errors=True)
        (pkg / "DEBIAN").mkdir(parents=True)
        share = pkg / "usr" / "share" / "steward-fixture"
        share.mkdir(parents=True)
        (share / f"{name}.version").write_text(version + "\n")
        (pkg / "DEBIAN" / "control").write_text(
            f"Package: {name}\nVersion: {version}\nSection: {section}\nPriority: {priority}\n"
            "Architecture: all\nMaintainer: Steward tests <tests@steward.invalid>\n"
            f"Description: Steward test fixture ({section}, {priority})\n"
            " An update for the Debian test node's Patch Manager tests.\n"
        )
        if name in self.REBOOT:
            postinst = pkg / "DEBIAN" / "postinst"
            postinst.write_text(
                "#!/bin/sh\nset -e\n"
                "# As a kernel update does: the node needs a reboot.\n"
                "if [ \"$1\" = configure ]; then\n"
                "  touch /var/run/reboot-required\n"
                f"  echo {name} >>/var/run/reboot-required.pkgs\n"
                "fi\n"
            )
            postinst.chmod(0o755)
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(pkg), str(out / f"{name}_{version}_all.deb")],
                       check=True, capture_output=True)
        shutil.rmtree(pkg)

    def _index(self, suite):
        security = suite.endswith("-security")
        label = "Debian-Security" if security else "Debian"
        arch = self.node.run("dpkg", "--print-architecture").stdout.strip()
        dist = f"dists/{suite}"
        binary = f"{dist}/main/binary-{arch}"
        (self.root / binary).mkdir(parents=True, exist_ok=True)
        self.node.sh(f"cd {REPO_INSIDE} && apt-ftparchive packages pool/{suite} > {binary}/Packages"
                     f" && gzip -9kf {binary}/Packages")
        opts = []
        for key, value in (("Origin", "Debian"), ("Label", label), ("Suite", suite), ("Codename", suite),
                           ("Components", "main"), ("Architectures", arch),
                           ("Description", f"Steward test repository: {suite}")):
            opts += ["-o", f"APT::FTPArchive::Release::{key}={value}"]
        release = self.node.run("apt-ftparchive", *opts, "release", f"{REPO_INSIDE}/{dist}").stdout
        (self.root / dist / "Release").write_text(release)


def build_fixture_repo(node):
    """`FixtureRepo(node).build()`: the node's repository of fixture updates."""
    return FixtureRepo(node).build()


def started_node(workdir, name="debian", tags=(), timeout=60):
    """A Debian node started with an activation of its own (tags
    suite=<random> and env=debian, plus `tags` as (key, value) pairs),
    registered and Online; `node.info` is its DescribeInstanceInformation
    entry, `node.targets` targets it alone."""
    import uuid

    from fleet import profile, ssm_client, stack_env

    ssm = ssm_client()
    suite = uuid.uuid4().hex[:12]
    activation = ssm.create_activation(
        DefaultInstanceName=f"e2e-{name}",
        IamRole="steward-node",
        RegistrationLimit=1,
        Tags=[{"Key": "suite", "Value": suite}, {"Key": "env", "Value": "debian"},
              *({"Key": k, "Value": v} for k, v in tags)],
    )
    node = DebianNode(workdir, name)
    started = time.monotonic()
    try:
        node.start(activation, profile()["endpoint_url"], stack_env()["AWS_ENDPOINT_URL"])
        node.info = node.wait_online(ssm, timeout=timeout)
    except BaseException:
        node.stop()
        raise
    node.start_seconds = time.monotonic() - started
    node.suite = suite
    node.targets = [{"Key": "InstanceIds", "Values": [node.instance_id()]}]
    return node
