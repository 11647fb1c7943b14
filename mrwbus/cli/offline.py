"""The verbs that need no broker: check-config, simulate, schema and completion."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mrwbus.cli.common import add_verb
from mrwbus.relay.registry import load_config


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = add_verb(verbs, "check-config", check_config, broker=False)
    check.add_argument("path", metavar="PATH", help="the cluster configuration (YAML)")
    check.add_argument(
        "--skip-agents",
        action="store_true",
        help="do not check resources against the OCF agents installed here (their meta-data)",
    )

    sim = add_verb(verbs, "simulate", simulate_fault, broker=False)
    sim.add_argument(
        "--config", required=True, metavar="PATH", help="the cluster configuration (YAML)"
    )
    sim.add_argument(
        "--fault",
        required=True,
        metavar="JSON",
        type=_json_object,
        help='the fault, e.g. {"server": "server1", "category": "NIC", "device": "eth0"}',
    )
    sim.add_argument(
        "--state",
        default={},
        metavar="JSON",
        type=_json_object,
        help="placement, alive, suspended, monitors' status and counts (default: {})",
    )

    from mrwbus.operators.wire_schema import message_names

    schema = add_verb(verbs, "schema", write_schema, broker=False)
    what = schema.add_mutually_exclusive_group()
    what.add_argument(
        "message",
        nargs="?",
        choices=message_names(),
        metavar="MESSAGE",
        help=f"print only this message's schema: {', '.join(message_names())}",
    )
    what.add_argument(
        "--out",
        metavar="DIR",
        type=Path,
        help="write MESSAGE.json for every message into DIR instead of printing",
    )

    completion = add_verb(verbs, "completion", print_completion, broker=False)
    completion.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete in")


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc.msg} at column {exc.colno}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object ({...})")
    return value


def check_config(args: argparse.Namespace) -> int:
    """validate a configuration: prints every error with its key path, or OK and any warnings

    Type errors and wrong names are reported together, in one run (exit status 1). A valid
    configuration prints OK (exit status 0), after a warning for each action that no
    configured agent handler would carry out on a server the monitor watches. Resources run
    by OCF agents are checked against each agent's own meta-data, as installed under OCF_ROOT
    (default /usr/lib/ocf): the agent, and each parameter's name, type and presence.

    Examples:
        mrwbus check-config /etc/mrwbus/cluster.yaml
        mrwbus check-config cluster.yaml --skip-agents   # on a machine without the OCF agents
    """
    from mrwbus.agent.resource_agents import check_agents, ocf_root
    from mrwbus.errors import ConfigError
    from mrwbus.operators.config_warnings import unhandled_actions

    config = load_config(args.path)
    if config.resources and not args.skip_agents:
        issues = check_agents(config, ocf_root())
        if issues:
            raise ConfigError(args.path, issues)
    for warning in unhandled_actions(config):
        print(f"{args.path}: warning: {warning}")
    print("OK")
    return 0


def simulate_fault(args: argparse.Namespace) -> int:
    """a dry run with no broker: what would this fault do?

    Examples:
        mrwbus simulate --config cluster.yaml --fault '{"server": "server1", "category": "NIC", "device": "eth0"}'
        mrwbus simulate --config cluster.yaml --fault '{"server": "server1", "category": "NIC", "device": "eth0"}' --state '{"alive": {"server2": false}}'
    """
    from mrwbus.messages import utc_now
    from mrwbus.operators.simulate import (
        build_state,
        parse_fault_argument,
        render_simulation,
        simulate,
    )

    config = load_config(args.config)
    now = utc_now()
    cluster = build_state(config, args.state)
    print(render_simulation(simulate(config, parse_fault_argument(args.fault, now), cluster, now)))
    return 0


def write_schema(args: argparse.Namespace) -> int:
    """the JSON Schema of the wire messages, for relay and agent authors

    Examples:
        mrwbus schema FaultNotification          # one schema on stdout
        mrwbus schema --out docs/schema          # every message, one file each
        mrwbus schema | jq 'keys'                # every message, one JSON object
    """
    from mrwbus.operators.wire_schema import message_names, render, write_schemas

    if args.out is not None:
        for path in write_schemas(args.out):
            print(path)
        return 0
    names = [args.message] if args.message else message_names()
    if len(names) == 1:
        sys.stdout.write(render(names[0]))
    else:
        # Every schema in one JSON object keyed by message name, so `| jq` works on the lot.
        merged = {name: json.loads(render(name)) for name in names}
        print(json.dumps(merged, indent=2, sort_keys=True, ensure_ascii=False))
    return 0


def print_completion(args: argparse.Namespace) -> int:
    """print a shell completion script for mrwbus

    Examples:
        source <(mrwbus completion bash)                  # this shell
        mrwbus completion bash > /etc/bash_completion.d/mrwbus
        mrwbus completion zsh > "${fpath[1]}/_mrwbus"     # or: source <(mrwbus completion zsh)
    """
    from mrwbus.cli.completion import completion_script

    # The whole command's parser, handed down by `build_parser` (this module is part of it).
    sys.stdout.write(completion_script(args.root_parser, args.shell))
    return 0
