"""`mrwbus resource-agents list|describe` (what the installed OCF agents accept) and
`mrwbus resources start|stop|monitor` (a group's OCF resources run by hand on this server).

No broker: both work on this machine only. `resources start` is how a group is first brought
up where the configuration wants it (mrwbus moves groups, it does not place them at first),
and how an administrator checks a configuration before the agent runs it.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from mrwbus.cli.common import add_group, add_verb
from mrwbus.errors import MrwbusError
from mrwbus.relay.registry import load_config

if TYPE_CHECKING:
    from mrwbus.agent.ocf_resources import OcfResource

AGENTS = """what the OCF resource agents installed here accept (OCF_ROOT, default /usr/lib/ocf)

Examples:
    mrwbus resource-agents list
    mrwbus resource-agents describe heartbeat:IPaddr2
"""

RESOURCES = """start, stop or monitor a group's OCF resources on this server, by hand

Examples:
    mrwbus resources start pg --server db1 --config /etc/mrwbus/cluster.yaml
    mrwbus resources monitor pg --server db1 --config /etc/mrwbus/cluster.yaml
    mrwbus resources stop postgres --server db1 --config /etc/mrwbus/cluster.yaml
"""


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    agents = add_group(verbs, "resource-agents", AGENTS, actions="list or describe")
    add_verb(agents, "list", list_agents, broker=False)
    describe = add_verb(agents, "describe", describe_agent, broker=False)
    describe.add_argument("agent", metavar="AGENT", help="provider:type, e.g. heartbeat:IPaddr2")

    resources = add_group(verbs, "resources", RESOURCES, actions="start, stop or monitor")
    for name, function in (("start", start), ("stop", stop), ("monitor", monitor)):
        sub = add_verb(resources, name, function, broker=False)
        sub.add_argument("target", metavar="GROUP|RESOURCE", help="a group, or one resource")
        sub.add_argument("--server", required=True, metavar="NAME", help="this server's name")
        sub.add_argument(
            "--config", required=True, metavar="PATH", help="the cluster configuration (YAML)"
        )


def list_agents(args: argparse.Namespace) -> int:
    """every OCF resource agent installed here, as provider:type

    Examples:
        mrwbus resource-agents list | grep heartbeat:
    """
    from mrwbus.agent.resource_agents import installed_agents, ocf_root

    found = installed_agents(ocf_root())
    if not found:
        raise MrwbusError(f"no OCF resource agent under {ocf_root()}/resource.d")
    for agent in found:
        print(agent)
    return 0


def describe_agent(args: argparse.Namespace) -> int:
    """the parameters an agent takes (required first, with types and defaults) and its timeouts

    Examples:
        mrwbus resource-agents describe heartbeat:IPaddr2
        mrwbus resource-agents describe ocf:pacemaker:Dummy
    """
    from mrwbus.agent.resource_agents import ocf_root, read_metadata
    from mrwbus.ocf.contract import AgentName
    from mrwbus.ocf.metadata import describe_agent as render

    try:
        agent = AgentName.parse(args.agent)
    except ValueError as exc:
        raise MrwbusError(str(exc)) from exc
    print(render(str(agent), read_metadata(agent, ocf_root())))
    return 0


def start(args: argparse.Namespace) -> int:
    """start a group's resources in order (or one resource), stopping them again if one fails

    Examples:
        mrwbus resources start pg --server db1 --config cluster.yaml
    """
    return _run(args, "failover.start")


def stop(args: argparse.Namespace) -> int:
    """stop a group's resources in reverse order (or one resource), ending at a failed stop

    Examples:
        mrwbus resources stop pg --server db1 --config cluster.yaml
    """
    return _run(args, "failover.stop")


def monitor(args: argparse.Namespace) -> int:
    """each resource's monitor: running, not running, failed (exit status 0 when all run)

    Examples:
        mrwbus resources monitor pg --server db1 --config cluster.yaml
    """
    from mrwbus.agent.ocf import OcfGroupProbe

    group, resources = _target(args)
    probe = OcfGroupProbe(group, resources)
    asyncio.run(probe(group))
    for line in probe.describe():
        print(line)
    running = all(run.state.value == "running" for run in probe.last)
    return 0 if running else 1


def _run(args: argparse.Namespace, name: str) -> int:
    from mrwbus.agent.ocf import OcfGroupHandler
    from mrwbus.messages import Outcome

    group, resources = _target(args)
    result = asyncio.run(OcfGroupHandler(name, group, resources).run())
    print(result.detail)
    return 0 if result.outcome is Outcome.SUCCEEDED else 1


def _target(args: argparse.Namespace) -> tuple[str, list[OcfResource]]:
    from mrwbus.agent.ocf_resources import resources_on
    from mrwbus.agent.resource_agents import ocf_root

    config = load_config(args.config)
    if args.server not in config.servers:
        raise MrwbusError(f"{args.config} has no server {args.server!r}")
    groups = resources_on(config, args.server, ocf_root(), source=args.config)
    if args.target in groups:
        return args.target, groups[args.target]
    for group, resources in groups.items():
        chosen = [r for r in resources if r.name == args.target]
        if chosen:
            return group, chosen
    raise MrwbusError(
        f"{args.target!r} is no group or resource run by OCF agents on {args.server} "
        f"(those: {', '.join(groups) or 'none'})"
    )
