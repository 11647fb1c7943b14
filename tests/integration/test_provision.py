"""`mrwbus provision` on the session's TLS node: idempotent, `--rotate` replaces one password,
password files are 0600, and no password reaches the output, the logs or argv."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mrwbus.bus.connection import connect
from mrwbus.bus.roles import roles_for
from mrwbus.relay import make_fault, publish_fault
from tests.integration.deployment import (
    SERVERS,
    USERS,
    Deployment,
    provision_deployment,
)


def test_password_files_are_private_and_provisioning_again_changes_nothing(
    deployment: Deployment,
) -> None:
    for user in USERS:
        mode = stat.S_IMODE(os.stat(deployment.secrets / user).st_mode)
        assert mode == 0o600, (user, oct(mode))
    before = deployment.passwords()
    done = provision_deployment(deployment)
    assert done.kept == tuple(role.user for role in roles_for(SERVERS))
    assert not done.created and not done.rotated
    assert deployment.passwords() == before


async def test_rotate_replaces_one_password_and_it_works(deployment: Deployment) -> None:
    before = deployment.passwords()
    await asyncio.to_thread(provision_deployment, deployment, "relay-server2")
    after = deployment.passwords()
    assert {user for user in USERS if before[user] != after[user]} == {"relay-server2"}
    await publish_fault(deployment.url("relay-server2"), make_fault("server2", "FC", "fc0"))
    # The old password no longer logs in.
    old = deployment.secrets / "old"
    old.write_text(before["relay-server2"])
    with pytest.raises(Exception, match=r"ACCESS_REFUSED|refused|auth"):
        await connect(deployment.url("relay-server2", password_file=old), attempts=1)


def test_no_password_reaches_the_output_the_logs_or_argv(
    deployment: Deployment, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provision_deployment(deployment, rotate="viewer")
    argv = [
        sys.executable,
        "-m",
        "mrwbus",
        "provision",
        "--config",
        str(Path(__file__).parents[2] / "config" / "cluster.yaml"),
        "--management-url",
        deployment.management_url,
        "--amqp-url",
        f"amqps://guest@localhost:{deployment.node.tls_port}/",
        "--password-file",
        str(deployment.node.dir / "guest-password"),
        "--tls-ca",
        deployment.node.cert("ca.pem"),
        "--tls-cert",
        deployment.node.cert("client.pem"),
        "--tls-key",
        deployment.node.cert("client.key"),
        "--vhost",
        deployment.vhost,
        "--secrets",
        str(deployment.secrets),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    # config/cluster.yaml has server3 too: its users are new; everyone else keeps a password.
    assert "created: relay-server3, agent-server3" in done.stdout
    # Their users are deleted with the rest (tests/integration/deployment.py).
    shown = done.stdout + done.stderr + caplog.text + " ".join(argv)
    for password in deployment.passwords().values():
        assert password not in shown
