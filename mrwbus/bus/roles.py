"""The broker users of a deployment and the narrowest permissions each needs (docs/security.md).

Pure: the configuration in, the roles out; `mrwbus provision` applies them. RabbitMQ checks
three regexes per user and vhost (configure, write, read: matched against exchange and queue
names) and, on topic exchanges, two regexes per exchange (write: the routing key of a publish;
read: the key of a binding). `^$` matches no name. The default exchange is `amq.default`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from mrwbus.bus.topology import (
    COMMANDS,
    CONTROL,
    DEAD,
    EVENTS,
    FAULTS,
    HISTORY,
    HISTORY_INDEX,
    RESULTS,
    agent_queue,
)
from mrwbus.messages import ControlVerb

SERVICE = "mrwbus-service"
OPERATOR = "operator"
VIEWER = "viewer"
NOTHING = "^$"
GENERATED = r"amq\.gen-.*"
"""Server-named queues: the operator tools' reply and watch queues (exclusive to their owner)."""

VIEWER_VERBS = (ControlVerb.PING, ControlVerb.STATUS)


def relay_user(server: str) -> str:
    return f"relay-{server}"


def agent_user(server: str) -> str:
    return f"agent-{server}"


@dataclass(frozen=True)
class TopicPermission:
    exchange: str
    write: str = NOTHING
    read: str = NOTHING


@dataclass(frozen=True)
class Role:
    user: str
    configure: str
    write: str
    read: str
    topics: tuple[TopicPermission, ...] = field(default=())
    tags: str = ""
    """The user's tags. The service's is `management`: it may then close its own user's
    connections through the management API (a silent replica's: `bus.leader`); it also lets
    it read, in the API and the web UI, the vhosts it already has permissions on."""


def names(*patterns: str) -> str:
    """A regex matching exactly these names (already-escaped regexes)."""
    return f"^({'|'.join(patterns)})$" if len(patterns) > 1 else f"^{patterns[0]}$"


def exact(name: str) -> str:
    return re.escape(name)


def service_role() -> Role:
    # The service declares and owns the topology, publishes commands and events, replies
    # through the default exchange, and keeps its journal: everything under mrwbus.
    own = r"mrwbus\..*"
    return Role(
        SERVICE,
        configure=names(own, GENERATED),
        write=names(own, GENERATED, r"amq\.default"),
        read=names(own, GENERATED),
        tags="management",
    )


def relay_role(server: str) -> Role:
    return Role(
        relay_user(server),
        configure=NOTHING,
        write=names(exact(FAULTS)),
        read=NOTHING,
        topics=(TopicPermission(FAULTS, write=rf"^{exact(server)}\.[^.]+$"),),
    )


def agent_role(server: str) -> Role:
    # Its own queue: declared (configure), bound to the commands (write on the queue, read on
    # the exchange, topic read on the binding key) and consumed (read).
    queue = exact(agent_queue(server))
    return Role(
        agent_user(server),
        configure=names(queue),
        write=names(queue, exact(RESULTS), exact(DEAD)),
        read=names(queue, exact(COMMANDS)),
        topics=(
            TopicPermission(COMMANDS, read=rf"^{exact(server)}\."),
            TopicPermission(RESULTS, write=rf"^{exact(server)}\.(result|report)$"),
        ),
    )


def operator_role(
    user: str = OPERATOR,
    verbs: Iterable[ControlVerb] = tuple(ControlVerb),
    reads: tuple[str, ...] = (EVENTS, DEAD, HISTORY, HISTORY_INDEX),
) -> Role:
    # A control request goes to the control exchange keyed by its verb; the reply comes back
    # to a server-named exclusive queue; `watch` binds another one to the events. Operators
    # also read `mrwbus.dead` (`mrwbus dead list|show|purge`; replay goes through the service)
    # and the history streams (`mrwbus history`, `mrwbus what-if`).
    return Role(
        user,
        configure=names(GENERATED),
        write=names(GENERATED, exact(CONTROL)),
        read=names(GENERATED, *map(exact, reads)),
        topics=(
            TopicPermission(CONTROL, write=names(*(verb.value for verb in verbs))),
            TopicPermission(EVENTS, read=".*"),
        ),
    )


def viewer_role() -> Role:
    return operator_role(VIEWER, VIEWER_VERBS, reads=(EVENTS, HISTORY, HISTORY_INDEX))


def roles_for(servers: Iterable[str]) -> list[Role]:
    """Every user of a deployment of these servers."""
    servers = list(servers)
    return [
        service_role(),
        *map(relay_role, servers),
        *map(agent_role, servers),
        operator_role(),
        viewer_role(),
    ]
