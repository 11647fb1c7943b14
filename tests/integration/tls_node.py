"""A RabbitMQ node of the test's own with a TLS listener, beside the machine's broker.

Started the way /work/shared/tools/rabbitmq-cluster starts nodes (its own node name, config
file, ports and data directory under a temporary folder); the machine's broker on 5672 is never
touched. Certificates come from a CA the test makes with the openssl command; a second CA makes
the certificate that must be refused. Also has a plain listener and the management API over
https, so the provisioned roles can be tried over TLS.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mrwbus.config.settings import amqp_url

PORT0 = int(os.environ.get("MRWBUS_TEST_TLS_PORT", "5691"))
PREFIX = "mrwbus-tls-node-"
"""Every node's folder starts so (under the temporary folder): a leftover is found by it."""


@dataclass(frozen=True)
class TlsNode:
    dir: Path
    node: str
    tls_port: int
    plain_port: int
    management_port: int

    def cert(self, name: str) -> str:
        return str(self.dir / "certs" / name)

    def management(self, method: str, path: str, body: dict[str, object] | None = None) -> None:
        """The node's management API over https, as guest."""
        request = urllib.request.Request(
            f"https://localhost:{self.management_port}/api{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": "Basic Z3Vlc3Q6Z3Vlc3Q=", "Content-Type": "application/json"},
        )
        context = ssl.create_default_context(cafile=self.cert("ca.pem"))
        with urllib.request.urlopen(request, timeout=30, context=context):
            pass

    def url(
        self, vhost: str, *, ca: str = "ca", client: str = "client", scheme: str = "amqps"
    ) -> str:
        """guest's URL for `vhost` with the password in a file, as every client should."""
        port = self.tls_port
        return amqp_url(
            f"{scheme}://guest@localhost:{port}/{vhost}",
            password_file=str(self.dir / "guest-password"),
            tls_ca=self.cert(f"{ca}.pem") if scheme == "amqps" else None,
            tls_cert=self.cert(f"{client}.pem") if scheme == "amqps" else None,
            tls_key=self.cert(f"{client}.key") if scheme == "amqps" else None,
        )


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(certs: Path, name: str) -> None:
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.pem",
        cwd=certs,
    )


def make_cert(certs: Path, ca: str, name: str, *, server: bool) -> None:
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        f"/CN={name}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        cwd=certs,
    )
    extensions = certs / f"{name}.ext"
    extensions.write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
        if server
        else "extendedKeyUsage=clientAuth\n"
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.pem",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        extensions.name,
        "-out",
        f"{name}.pem",
        cwd=certs,
    )


def _ctl(node: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["rabbitmqctl", "-q", "-n", node, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def stop_leftover_nodes() -> None:
    """A run killed before its teardown leaves its node on the test's ports, with certificates
    this run does not trust: stop every node an earlier run of this module left behind."""
    for pid_file in Path(tempfile.gettempdir()).glob(f"{PREFIX}*/pid"):
        base = pid_file.parent
        try:
            pid = int(pid_file.read_text().strip())
            name = next(
                line.split("=", 1)[1]
                for line in Path(f"/proc/{pid}/environ").read_bytes().decode().split("\0")
                if line.startswith("RABBITMQ_NODENAME=")
            )
        except (OSError, ValueError, StopIteration):
            shutil.rmtree(base, ignore_errors=True)
            continue
        stop_tls_node(TlsNode(base, name, PORT0, PORT0 + 1, PORT0 + 10000))


def start_tls_node() -> TlsNode:
    stop_leftover_nodes()
    base = Path(tempfile.mkdtemp(prefix=PREFIX))
    certs = base / "certs"
    certs.mkdir()
    make_ca(certs, "ca")
    make_cert(certs, "ca", "server", server=True)
    make_cert(certs, "ca", "client", server=False)
    make_ca(certs, "other-ca")
    make_cert(certs, "other-ca", "stranger", server=False)
    node = TlsNode(
        base, f"rabbit-mrwbus-tls-{uuid.uuid4().hex[:6]}@localhost", PORT0, PORT0 + 1, PORT0 + 10000
    )
    tls = (
        f"cacertfile = {certs}/ca.pem\n"
        f"certfile = {certs}/server.pem\n"
        f"keyfile = {certs}/server.key\n"
    )
    (base / "rabbitmq.conf").write_text(
        f"listeners.tcp.local = 127.0.0.1:{node.plain_port}\n"
        f"listeners.ssl.default = 127.0.0.1:{node.tls_port}\n"
        + "".join(f"ssl_options.{line}\n" for line in tls.splitlines())
        + "ssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = true\n"
        f"management.ssl.port = {node.management_port}\n"
        f"management.ssl.ip = 127.0.0.1\n"
        + "".join(f"management.ssl.{line}\n" for line in tls.splitlines())
        + "loopback_users = none\n"
    )
    (base / "plugins").write_text("[rabbitmq_management].\n")
    subprocess.run(["chown", "-R", "rabbitmq:rabbitmq", str(base)], check=False)
    environment = {
        **os.environ,
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_NODENAME": node.node,
        "RABBITMQ_DIST_PORT": str(PORT0 + 20000),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_PID_FILE": str(base / "pid"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "plugins"),
    }
    subprocess.run(
        ["rabbitmq-server", "-detached"],
        env=environment,
        capture_output=True,
        timeout=60,
        check=False,
    )
    (base / "guest-password").write_text("guest\n")
    # Ready when its listeners accept connections (they open last). rabbitmqctl is not used
    # to wait: on a loaded machine its own Erlang distribution can fail to start.
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if all(_listening(port) for port in (node.plain_port, node.tls_port, node.management_port)):
            return node
        time.sleep(0.5)
    stop_tls_node(node)
    raise RuntimeError(f"the TLS test node did not start; see {base}/log")


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _node_pid(node: TlsNode) -> int | None:
    try:
        return int((node.dir / "pid").read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_tls_node(node: TlsNode) -> None:
    """Stop the node (rabbitmqctl, else SIGTERM, else SIGKILL to the pid it wrote), then
    remove its folder: never leaves a node running on the test's ports."""
    pid = _node_pid(node)
    _ctl(node.node, "stop", timeout=60)
    if pid is not None:
        for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
            deadline = time.monotonic() + wait
            while _alive(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            if not _alive(pid):
                break
            os.kill(pid, sig)
    shutil.rmtree(node.dir, ignore_errors=True)


def tls_node_fixture() -> Iterator[TlsNode]:
    node = start_tls_node()
    try:
        yield node
    finally:
        stop_tls_node(node)
