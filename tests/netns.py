"""A network namespace of its own for one agent: a veth pair to the host on
a private /30, and TCP forwarders on the host end to the local stack (the
control plane listens on 127.0.0.1 only). The test cuts the node off by taking its end of
the link down: its connections fail as a real outage's would, nothing in
between decides what gets through.

    with Island("steward-cut", "10.213.47.0", ports=[4566, 7070]) as net:
        net.url(7070)             # http://10.213.47.1:<port>, to 127.0.0.1:7070
        net.wrap(argv)            # ["ip", "netns", "exec", "steward-cut", *argv]
        net.cut(); net.restore()

Needs root (ip netns, ip link). The names are fixed: a namespace left by an
earlier run that died is removed, with whatever still runs in it, before a
new one is made.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import subprocess
import threading


def _ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


class Forwarder:
    """Accepts on listen_host (on a port of its own: the stack may listen on
    every address at its port) and pipes each connection to
    127.0.0.1:upstream_port."""

    def __init__(self, listen_host: str, upstream_port: int):
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.conns: list[socket.socket] = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((listen_host, 0))
        self.listener.listen(128)
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
            with self.lock:
                self.conns = [c for c in self.conns if c not in (src, dst)]

    def close(self):
        self.listener.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()


class Island:
    """The namespace `name`, linked to the host by a veth pair on the /30
    starting at `network` (host end .1, namespace end .2), with a forwarder
    on the host end for each of `ports`."""

    def __init__(self, name: str, network: str, ports):
        net = ipaddress.ip_network(f"{network}/30")
        host, inside = list(net.hosts())
        self.name = name
        self.host_ip, self.inside_ip = str(host), str(inside)
        self.prefix = net.prefixlen
        # Interface names are at most 15 characters.
        self.host_if, self.inside_if = f"{name[:11]}-h", f"{name[:11]}-n"
        self.ports = list(ports)
        self.forwarders: list[Forwarder] = []

    def __enter__(self):
        return self.open()

    def open(self):
        """Makes the namespace, its link and the forwarders (after removing
        a leftover of the same name); `close` undoes it."""
        self.remove()
        try:
            _ip("netns", "add", self.name)
            _ip("link", "add", self.host_if, "type", "veth", "peer", "name", self.inside_if, "netns", self.name)
            _ip("addr", "add", f"{self.host_ip}/{self.prefix}", "dev", self.host_if)
            _ip("link", "set", self.host_if, "up")
            _ip("-n", self.name, "link", "set", "lo", "up")
            _ip("-n", self.name, "addr", "add", f"{self.inside_ip}/{self.prefix}", "dev", self.inside_if)
            _ip("-n", self.name, "link", "set", self.inside_if, "up")
            self.forwarders = [Forwarder(self.host_ip, p) for p in self.ports]
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def url(self, upstream_port: int) -> str:
        """The address on the host end that leads to 127.0.0.1:upstream_port."""
        (f,) = [f for f in self.forwarders if f.upstream_port == upstream_port]
        return f"http://{self.host_ip}:{f.port}"

    def wrap(self, argv: list[str]) -> list[str]:
        """`argv` run inside the namespace (ip netns exec execs it: the
        process is the command itself, its pid the command's)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def cut(self):
        """The node's end of the link down: no route off the node."""
        _ip("-n", self.name, "link", "set", self.inside_if, "down")

    def restore(self):
        _ip("-n", self.name, "link", "set", self.inside_if, "up")

    def pids(self) -> list[int]:
        out = _ip("netns", "pids", self.name, check=False)
        return [int(p) for p in out.stdout.split() if p.strip().isdigit()]

    def close(self):
        for f in self.forwarders:
            f.close()
        self.forwarders = []
        self.remove()

    def remove(self):
        """Removes the namespace and its link, and ends what still runs in
        it (only a test that died leaves anything there)."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Deleting the host end removes both ends at once; the namespace
        # itself goes away asynchronously once nothing holds it.
        _ip("link", "del", self.host_if, check=False)
        _ip("netns", "del", self.name, check=False)
