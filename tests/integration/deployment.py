"""A provisioned deployment on the session's TLS node, shared by the role and provision tests:
one vhost per test module; the users (broker-wide) deleted after it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mrwbus.bus.connection import connect
from mrwbus.bus.roles import roles_for
from mrwbus.config.settings import amqp_url
from mrwbus.operators.provision import Provisioned, provision
from tests.integration.broker import unique_vhost
from tests.integration.tls_node import TlsNode

SERVERS = ["server1", "server2"]
USERS = [role.user for role in roles_for(SERVERS)]


@dataclass(frozen=True)
class Deployment:
    node: TlsNode
    vhost: str
    secrets: Path

    def url(self, user: str, *, password_file: Path | None = None, vhost: str | None = None) -> str:
        return amqp_url(
            f"amqps://{user}@localhost:{self.node.tls_port}/{self.vhost if vhost is None else vhost}",
            password_file=str(password_file or self.secrets / user),
            tls_ca=self.node.cert("ca.pem"),
            tls_cert=self.node.cert("client.pem"),
            tls_key=self.node.cert("client.key"),
        )

    @property
    def admin_url(self) -> str:
        """guest, the node's administrator (its password in a file like everyone's)."""
        return self.url("guest", password_file=self.node.dir / "guest-password", vhost="")

    @property
    def management_url(self) -> str:
        return f"https://guest@localhost:{self.node.management_port}/"

    def management(self, method: str, path: str, body: dict[str, object] | None = None) -> None:
        self.node.management(method, path, body)

    def passwords(self) -> dict[str, str]:
        return {user: (self.secrets / user).read_text().strip() for user in USERS}


def provision_deployment(deployment: Deployment, rotate: str | None = None) -> Provisioned:
    return asyncio.run(
        provision(
            SERVERS,
            management_url=deployment.management_url,
            amqp_url=deployment.admin_url,
            vhost=deployment.vhost,
            secrets_dir=deployment.secrets,
            rotate=rotate,
        )
    )


def deployment_fixture(
    tls_node: TlsNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    deployment = Deployment(tls_node, unique_vhost(), tmp_path_factory.mktemp("secrets"))
    try:
        provision_deployment(deployment)
        # guest (the test's administrator) looks at the queues.
        deployment.management(
            "PUT",
            f"/permissions/{deployment.vhost}/guest",
            {"configure": ".*", "write": ".*", "read": ".*"},
        )
        yield deployment
    finally:
        for path in [f"/vhosts/{deployment.vhost}", *(f"/users/{user}" for user in USERS)]:
            with contextlib.suppress(Exception):  # never created: nothing to clean
                deployment.management("DELETE", path)


async def queue_depth(deployment: Deployment, queue: str) -> int:
    connection = await connect(
        deployment.url("guest", password_file=deployment.node.dir / "guest-password"), attempts=1
    )
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0
    finally:
        await connection.close()
