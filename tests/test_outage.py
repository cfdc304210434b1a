"""An agent cut off from SQS mid-command: its report waits in the spool and
arrives once the path is back; nothing is lost and nothing runs twice."""

import socket
import threading
import time

import pytest

from fleet import Fleet, invocations, wait_command_final, wait_for


class Cuttable:
    """A TCP proxy to the emulated SQS that the test can cut and restore."""

    def __init__(self, upstream_port):
        self.upstream_port = upstream_port
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []
        self.listener = None
        self.restore()

    def restore(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self):
        """Refuses new connections and drops the open ones, as a network outage would."""
        with self.lock:
            self.listener.close()
            for c in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self.conns.clear()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass


@pytest.fixture
def isolated(tmp_path):
    fleet = Fleet(tmp_path / "fleet")
    upstream = int(fleet.env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
    proxy = Cuttable(upstream)
    fleet.env = dict(fleet.env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.port}")
    agent = fleet.add("cut-off", fleet.activation("cut", 1))
    try:
        (node,) = fleet.wait_online("cut-off")
        yield fleet, proxy, agent, node
    finally:
        proxy.cut()
        fleet.stop()


def test_reports_survive_an_outage_and_arrive_once_it_ends(isolated, tmp_path):
    fleet, proxy, agent, node = isolated
    ssm = fleet.ssm
    started, finished = tmp_path / "started", tmp_path / "finished"
    cmd = ssm.send_command(
        DocumentName="AWS-RunShellScript",
        InstanceIds=[node],
        Parameters={"commands": [f"echo run >> {started}", "sleep 3", f"echo done; touch {finished}"]},
    )["Command"]
    cid = cmd["CommandId"]
    wait_for("the command to start", started.exists)
    proxy.cut()
    wait_for("the command to finish on the node", finished.exists, timeout=30)
    # The result exists only in the agent's spool now; give it a few retries.
    time.sleep(3)
    assert ssm.list_commands(CommandId=cid)["Commands"][0]["Status"] in {"Pending", "InProgress"}
    assert agent.proc.poll() is None, agent.log()[-2000:]
    proxy.restore()
    final = wait_command_final(ssm, cid, timeout=120)
    assert final["Status"] == "Success", final
    (inv,) = invocations(ssm, cid)
    assert inv["CommandPlugins"][0]["Output"].strip() == "done"
    assert started.read_text().count("run") == 1
