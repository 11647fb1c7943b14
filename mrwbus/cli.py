"""The `mrwbus` command: one function per verb; errors print as one sentence, not a traceback."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from mrwbus import __version__
from mrwbus.config import load_config
from mrwbus.errors import ConfigError, MrwbusError
from mrwbus.messages import Category, ControlRequest, ControlVerb, Event, new_id
from mrwbus.settings import ServiceSettings, amqp_url, management_url

Verb = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    verb: Verb = args.verb
    try:
        return verb(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    except MrwbusError as exc:
        print(f"mrwbus: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one sentence, the traceback on request
        if os.environ.get("MRWBUS_DEBUG"):
            raise
        print(
            f"mrwbus: unexpected {type(exc).__name__}: {exc} (set MRWBUS_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mrwbus", description="A fault-to-recovery bus on RabbitMQ."
    )
    parser.add_argument("--version", action="version", version=f"mrwbus {__version__}")
    verbs = parser.add_subparsers(required=True, metavar="VERB")

    def verb(name: str, function: Verb, help: str, broker: bool = True) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help, description=help)
        sub.set_defaults(verb=function)
        if broker:
            sub.add_argument(
                "--amqp-url", help="broker URL (default: $MRWBUS_AMQP_URL or the local broker)"
            )
        return sub

    for name, function, help_text, level in (
        ("run", run_service, "run the service", "INFO"),
        (
            "demo",
            run_demo,
            "the service plus a reference agent for every server, in one process",
            "WARNING",
        ),
    ):
        serving = verb(name, function, help_text)
        serving.add_argument("--config", required=True, help="the cluster configuration (YAML)")
        serving.add_argument("--log-level", default=level)
        serving.add_argument(
            "--http",
            default="127.0.0.1:8080",
            metavar="HOST:PORT",
            help="serve the status page, /metrics and /healthz here ('off' for none)",
        )

    check = verb(
        "check-config",
        check_config,
        "validate a configuration: prints OK or every error",
        broker=False,
    )
    check.add_argument("path")

    notify = verb("notify", notify_fault, "publish a fault exactly as a driver relay would")
    notify.add_argument("--server", required=True)
    notify.add_argument("--category", required=True, choices=[c.value for c in Category])
    notify.add_argument("--device", required=True)
    notify.add_argument("--message", default="")
    notify.add_argument("--id", dest="fault_id", help="the notification id (default: a new UUID)")
    notify.add_argument("--recovered", action="store_true", help="announce the device works again")

    status = verb("status", show_status, "every monitor on every server, groups and servers")
    status.add_argument("--json", action="store_true", help="machine-readable output")

    clear = verb("clear", clear_monitor, "return a monitor's status to Normal (counts kept)")
    clear.add_argument("monitor")
    clear.add_argument("--server", help="only on this server (default: every server)")
    clear.add_argument(
        "--reset-counts", action="store_true", help="also set restart/failover counts to zero"
    )

    for control, helptext in (
        (ControlVerb.SUSPEND, "record faults but take no action until resumed"),
        (ControlVerb.RESUME, "let a suspended monitor act again"),
    ):
        sub = verb(control.value, suspend_or_resume, helptext)
        sub.set_defaults(control=control)
        target = sub.add_mutually_exclusive_group(required=True)
        target.add_argument("monitor", nargs="?")
        target.add_argument("--all", action="store_true")

    watch = verb("watch", watch_events, "a live tail of events, one line each")
    watch.add_argument("--monitor", help="only this monitor's events")
    watch.add_argument("--server", help="only events about this server")
    watch.add_argument(
        "--kind", help="only this kind: fault, status, command, not_taken, result, ..."
    )
    watch.add_argument("--json", action="store_true", help="print each event as JSON")

    sim = verb(
        "simulate",
        simulate_fault,
        "a dry run with no broker: what would this fault do?",
        broker=False,
    )
    sim.add_argument("--config", required=True)
    sim.add_argument(
        "--fault",
        required=True,
        help='JSON, e.g. {"server": "server1", "category": "NIC", "device": "eth0"}',
    )
    sim.add_argument(
        "--state",
        default="{}",
        help="JSON: placement, alive, suspended, monitors' status and counts",
    )

    from mrwbus.dead_cli import add_dead_verbs

    add_dead_verbs(
        verbs,
        lambda sub: sub.add_argument(
            "--amqp-url", help="broker URL (default: $MRWBUS_AMQP_URL or the local broker)"
        ),
    )

    agent = verb("agent", run_agent, "run the reference node agent of one server")
    agent.add_argument("--server", required=True)
    agent.add_argument("--config", required=True)
    agent.add_argument(
        "--state-dir", help="where the agent keeps its journal (default: agent.state_dir)"
    )
    agent.add_argument("--log-level", default="INFO")
    return parser


# --- verbs ---------------------------------------------------------------------------------


def run_service(args: argparse.Namespace) -> int:
    return _serve(args, with_agents=False)


def run_demo(args: argparse.Namespace) -> int:
    return _serve(args, with_agents=True)


def _serve(args: argparse.Namespace, *, with_agents: bool) -> int:
    """The service (and, for the demo, a reference agent per server) until SIGTERM or Ctrl-C."""
    from mrwbus.agent import run_agent
    from mrwbus.logs import configure_logging
    from mrwbus.service import Service
    from mrwbus.web import StatusServer, parse_http_address

    config = load_config(args.config)
    http = None if args.http == "off" else parse_http_address(args.http)
    configure_logging(args.log_level)
    url = amqp_url(args.amqp_url)
    service = Service(config, ServiceSettings(amqp_url=url, management_url=management_url()))

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, _dump_tasks)
        running = [service.run(stop)]
        if with_agents:
            running += [
                run_agent(config, server, url, stop, source=args.config)
                for server in config.servers
            ]
        async with contextlib.AsyncExitStack() as stack:
            if http is not None:
                await stack.enter_async_context(StatusServer(service, *http))
            if with_agents:
                page = f"; status page: http://{http[0]}:{http[1]}/" if http else ""
                print(
                    f"service and agents for {', '.join(config.servers)} running{page}; Ctrl-C stops",
                    flush=True,
                )
            await asyncio.gather(*running)

    asyncio.run(serve())
    return 0


def check_config(args: argparse.Namespace) -> int:
    load_config(args.path)
    print("OK")
    return 0


def notify_fault(args: argparse.Namespace) -> int:
    from mrwbus.relay import make_fault, publish_fault

    fault = make_fault(
        args.server,
        args.category,
        args.device,
        args.message,
        state="recovered" if args.recovered else "error",
        fault_id=args.fault_id,
    )
    _run(publish_fault(amqp_url(args.amqp_url), fault))
    print(f"published fault {fault.id} ({fault.routing_key})")
    return 0


def show_status(args: argparse.Namespace) -> int:
    from mrwbus.status_table import render_status

    reply = _ask(args, ControlVerb.STATUS)
    assert reply.status is not None
    if args.json:
        print(reply.status.model_dump_json(indent=2))
    else:
        print(render_status(reply.status, color=sys.stdout.isatty()))
    return 0


def clear_monitor(args: argparse.Namespace) -> int:
    reply = _ask(
        args,
        ControlVerb.CLEAR,
        monitor=args.monitor,
        server=args.server,
        reset_counts=args.reset_counts,
    )
    print(reply.text)
    return 0


def suspend_or_resume(args: argparse.Namespace) -> int:
    reply = _ask(args, args.control, monitor=args.monitor, all=args.all)
    print(reply.text)
    return 0


def watch_events(args: argparse.Namespace) -> int:
    from mrwbus.bus.watch import format_event, watch_events

    def show(event: Event) -> None:
        if args.server and event.server != args.server:
            return
        print(event.model_dump_json() if args.json else format_event(event), flush=True)

    async def tail() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await watch_events(
            amqp_url(args.amqp_url), show, stop, kind=args.kind, monitor=args.monitor
        )

    _run(tail())
    return 0


def simulate_fault(args: argparse.Namespace) -> int:
    from mrwbus.errors import ContractError
    from mrwbus.messages import utc_now
    from mrwbus.simulate import build_state, parse_fault_argument, render_simulation, simulate

    config = load_config(args.config)
    try:
        fault_data, state_data = json.loads(args.fault), json.loads(args.state)
    except json.JSONDecodeError as exc:
        raise ContractError(f"--fault and --state must be JSON: {exc.msg}") from exc
    now = utc_now()
    cluster = build_state(config, state_data)
    print(render_simulation(simulate(config, parse_fault_argument(fault_data, now), cluster, now)))
    return 0


def run_agent(args: argparse.Namespace) -> int:
    from mrwbus.agent import run_agent
    from mrwbus.logs import configure_logging

    config = load_config(args.config)
    configure_logging(args.log_level)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run_agent(
            config, args.server, amqp_url(args.amqp_url), stop, state_dir=args.state_dir
        )

    asyncio.run(serve())
    return 0


def _dump_tasks() -> None:
    """SIGUSR1: print where every asyncio task waits, to find what a stuck service waits on."""
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}", file=sys.stderr)
        task.print_stack(limit=8, file=sys.stderr)


# --- helpers -------------------------------------------------------------------------------


def _ask(args: argparse.Namespace, verb: ControlVerb, **fields: Any) -> Any:
    from mrwbus.bus.rpc import ask_service
    from mrwbus.errors import ServiceError

    request = ControlRequest(id=new_id(), verb=verb, by=_operator(), **fields)
    reply = _run(ask_service(amqp_url(args.amqp_url), request))
    if not reply.ok:
        raise ServiceError(reply.error or "the service refused the request")
    return reply


def _operator() -> str:
    import getpass

    try:
        return f"operator {getpass.getuser()}"
    except Exception:
        return "operator"


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
