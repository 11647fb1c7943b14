"""A real three-node RabbitMQ cluster on loopback (`tests/cluster/rabbitmq-cluster`), a vhost
per test on it, and a TCP proxy that can go silent like a dead switch."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

TOOL = Path(__file__).with_name("rabbitmq-cluster")
NODES = ("a", "b", "c")
FIRST_PORT = 5681


def tool(*args: str, timeout: float = 180) -> str:
    done = subprocess.run(
        [str(TOOL), *args], check=True, capture_output=True, text=True, timeout=timeout
    )
    return done.stdout


def port_of(node: str) -> int:
    return FIRST_PORT + NODES.index(node)


def node_of_port(port: int) -> str:
    return NODES[port - FIRST_PORT]


def running() -> list[str]:
    return [line.split()[0] for line in tool("status").splitlines() if line.endswith("running")]


def ctl(*args: str, nodes: tuple[str, ...] = NODES) -> str:
    """rabbitmqctl on the first node that answers."""
    error: subprocess.CalledProcessError | None = None
    for node in nodes:
        try:
            return subprocess.run(
                ["rabbitmqctl", "-q", "-n", f"rabbit-{node}@localhost", *args],
                check=True,
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout
        except subprocess.CalledProcessError as exc:
            error = exc
    assert error is not None
    raise error


@dataclass
class ClusterVhost:
    """A vhost of its own on the cluster, and the URLs of its three nodes."""

    name: str = field(default_factory=lambda: f"mrwbus-cluster-{uuid.uuid4().hex[:10]}")

    def url(self, node: str, port: int | None = None) -> str:
        return f"amqp://guest:guest@127.0.0.1:{port or port_of(node)}/{self.name}"

    @property
    def urls(self) -> list[str]:
        return [self.url(node) for node in NODES]

    def create(self) -> None:
        ctl("add_vhost", self.name)
        ctl("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")

    def delete(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            ctl("delete_vhost", self.name)

    def leader_of(self, queue: str) -> str:
        """The node (a, b or c) that leads a quorum queue or stream."""
        rows = json.loads(
            ctl("list_queues", "-p", self.name, "name", "leader", "--formatter", "json")
        )
        leader = next(row["leader"] for row in rows if row["name"] == queue)
        return str(leader).removeprefix("rabbit-").split("@")[0]


async def down(node: str) -> None:
    await asyncio.to_thread(tool, "down", node)


async def up(node: str) -> None:
    await asyncio.to_thread(tool, "up", node)


class SilentProxy:
    """Forwards TCP to a broker node until `silence()`: then it stops forwarding either way,
    with no FIN and no RST, as a dead switch does; `resume()` forwards what waited since."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> SilentProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def silence(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self._open.wait()
                data = await source.read(65536)
                # Data read just before the silence waits for the resume, like a lost packet
                # that TCP sends again once the path is back.
                await self._open.wait()
                if not data:
                    break
                sink.write(data)
                await sink.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            sink.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
