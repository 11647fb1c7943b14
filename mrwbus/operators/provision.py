"""`mrwbus provision`: the vhost, the topology and one broker user per role, idempotently.

Users and permissions go through the management HTTP API, as the administrator; the topology
is declared over AMQP by `bus.topology` (the one place that declares it), as the service user. Each user's password
is generated into `<secrets>/<user>` (mode 0600) and never printed or logged; a user whose file
exists keeps its password, and `rotate` replaces exactly one. See docs/security.md.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from mrwbus.bus.connection import Urls, connect_any, url_list
from mrwbus.bus.roles import SERVICE, Role, roles_for
from mrwbus.bus.topology import DEFAULT_HISTORY_MAX_AGE, declare_service_topology
from mrwbus.config.model import DEFAULT_DEAD_LIMITS, DeadLetterLimits
from mrwbus.config.settings import PASSWORD_FILE, TLS_QUERY, read_password, tls_context
from mrwbus.errors import ProvisionError

log = logging.getLogger(__name__)

PASSWORD_BYTES = 32


@dataclass(frozen=True)
class Provisioned:
    """What a run did, by user name: for the operator's summary (no secrets in it)."""

    created: tuple[str, ...]
    rotated: tuple[str, ...]
    kept: tuple[str, ...]

    def summary(self, secrets_dir: str | Path) -> str:
        lines = [
            f"{title}: {', '.join(users)}"
            for title, users in (
                ("created", self.created),
                ("rotated", self.rotated),
                ("kept", self.kept),
            )
            if users
        ]
        return "\n".join([*lines, f"passwords are in {secrets_dir}/<user> (mode 0600)"])


def write_secret(directory: Path, user: str, password: str) -> Path:
    """Write a password to `directory/user`, readable by its owner only, atomically."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / user
    temporary = directory / f".{user}.new"
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(password + "\n")
    os.replace(temporary, path)
    return path


class Management:
    """The few management API calls provisioning needs."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, vhost: str, *, password_file: str | None
    ) -> None:
        base = URL(url)
        password = read_password(password_file) if password_file else base.password
        credentials = f"{base.user or 'guest'}:{password or ''}".encode()
        self.headers = {"Authorization": "Basic " + base64.b64encode(credentials).decode()}
        self.base = base.with_user(None).with_password(None)
        self.session = session
        self.vhost = quote(vhost, safe="")

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> int:
        async with self.session.request(
            method, f"{str(self.base).rstrip('/')}/api/{path}", json=body, headers=self.headers
        ) as response:
            if response.status >= 400 and not (method == "GET" and response.status == 404):
                # The API's reason names the object, never a password (we send those only in
                # bodies of user updates, and it does not echo them).
                reason = (await response.text())[:300]
                raise ProvisionError(
                    f"management API {method} /api/{path}: {response.status} {reason}"
                )
            return response.status

    async def ensure_vhost(self) -> None:
        await self._call("PUT", f"vhosts/{self.vhost}", {})

    async def user_exists(self, user: str) -> bool:
        return await self._call("GET", f"users/{quote(user, safe='')}") == 200

    async def set_password(self, user: str, password: str, tags: str = "") -> None:
        body = {"password": password, "tags": tags}
        await self._call("PUT", f"users/{quote(user, safe='')}", body)

    async def grant(self, role: Role) -> None:
        user = quote(role.user, safe="")
        await self._call(
            "PUT",
            f"permissions/{self.vhost}/{user}",
            {"configure": role.configure, "write": role.write, "read": role.read},
        )
        for topic in role.topics:
            await self._call(
                "PUT",
                f"topic-permissions/{self.vhost}/{user}",
                {"exchange": topic.exchange, "write": topic.write, "read": topic.read},
            )


async def provision(
    servers: Iterable[str],
    *,
    management_url: str,
    amqp_url: Urls,
    vhost: str,
    secrets_dir: str | Path,
    rotate: str | None = None,
    dead_limits: DeadLetterLimits = DEFAULT_DEAD_LIMITS,
    history_max_age: timedelta = DEFAULT_HISTORY_MAX_AGE,
) -> Provisioned:
    """Create (or bring up to date) the vhost, the topology and every role's user.

    `amqp_url` gives the broker's AMQP host and TLS files (or a cluster's nodes, each with the
    same files), and the administrator's password file for the management API when
    `management_url` carries none (see `mrwbus.config.settings.amqp_urls`).
    """
    servers = list(servers)
    directory = Path(secrets_dir)
    roles = roles_for(servers)
    if rotate is not None and rotate not in {role.user for role in roles}:
        known = ", ".join(role.user for role in roles)
        raise ProvisionError(f"--rotate {rotate}: no such user (known: {known})")
    created: list[str] = []
    rotated: list[str] = []
    kept: list[str] = []
    query = URL(url_list(amqp_url)[0]).query  # every URL carries the same files
    password_file = query.get(PASSWORD_FILE)
    connector = None
    if URL(management_url).scheme == "https":
        tls = tls_context(*(query.get(key) for key in TLS_QUERY.values()))
        connector = aiohttp.TCPConnector(ssl=tls)
    async with aiohttp.ClientSession(connector=connector) as session:
        api = Management(session, management_url, vhost, password_file=password_file)
        await api.ensure_vhost()
        for role in roles:
            secret = directory / role.user
            exists = await api.user_exists(role.user)
            if exists and secret.exists() and role.user != rotate:
                kept.append(role.user)
            else:
                # A new user, one to rotate, or one whose password file was lost.
                password = secrets.token_urlsafe(PASSWORD_BYTES)
                await api.set_password(role.user, password, role.tags)
                write_secret(directory, role.user, password)
                (rotated if exists else created).append(role.user)
            await api.grant(role)
    await declare_topology(
        amqp_url, vhost, servers, directory / SERVICE, dead_limits, history_max_age
    )
    log.info(
        "provisioned vhost %s: %d users created, %d rotated", vhost, len(created), len(rotated)
    )
    return Provisioned(tuple(created), tuple(rotated), tuple(kept))


async def declare_topology(
    amqp_url: Urls,
    vhost: str,
    servers: list[str],
    service_password: Path,
    dead_limits: DeadLetterLimits = DEFAULT_DEAD_LIMITS,
    history_max_age: timedelta = DEFAULT_HISTORY_MAX_AGE,
) -> None:
    """Declare the topology in `vhost` as the service user (which may, and so proves it can),
    on the host of `amqp_url` (any node of a cluster) with its TLS files."""
    path = "/" if vhost == "/" else "/" + quote(vhost, safe="")
    as_service = []
    for given in url_list(amqp_url):
        url = URL(given)
        query = {**url.query, PASSWORD_FILE: str(service_password)}
        url = url.with_user(SERVICE).with_password(None).with_path(path, encoded=True)
        as_service.append(str(url.with_query(query)))
    connection = await connect_any(as_service, "mrwbus-provision")
    try:
        channel = await connection.channel()
        await declare_service_topology(channel, servers, dead_limits, history_max_age)
    finally:
        await connection.close()
