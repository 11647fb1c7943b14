"""The long-running verbs: `run` (the service), `demo` (service plus agents) and `agent`.

Each tells systemd when it is ready (`mrwbus.sd_notify`, a no-op outside systemd) and stops
gracefully on SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import sys
from collections.abc import Callable

from mrwbus import sd_notify
from mrwbus.cli.common import Verb, add_log_level, add_verb, broker_url
from mrwbus.config.settings import ServiceSettings, management_url
from mrwbus.relay.registry import load_config

COLLECTOR_THRESHOLDS = (50_000, 20, 100)
"""The cyclic collector's generation thresholds in the service. With Python's default (700, 10,
10) the collector took a fifth of the service's time in a burst of faults (measured: 3.0 s of
13 s for 20,000 first faults): every decision leaves state that lives on, so the old generation
kept growing and was walked again and again. The state is plain dataclasses and dicts that
reference counting frees; the rare cycle waits a little longer."""


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for name, function, level in (("run", run_service, "INFO"), ("demo", run_demo, "WARNING")):
        serving = add_verb(verbs, name, function)
        serving.set_defaults(one_shot=False)
        serving.add_argument(
            "--config", required=True, metavar="PATH", help="the cluster configuration (YAML)"
        )
        add_log_level(serving, level)
        serving.add_argument(
            "--http",
            default="127.0.0.1:8080",
            metavar="HOST:PORT",
            type=_http_address,
            help="serve the status page, /metrics and /healthz here; 'off' for none "
            "(default: 127.0.0.1:8080)",
        )

    agent = _per_server_daemon(verbs, "agent", run_agent, "acts for")
    agent.add_argument(
        "--state-dir",
        metavar="DIR",
        help="where the agent keeps its journal of handled commands (default: agent.state_dir)",
    )
    agent.add_argument(
        "--once", action="store_true", help="print what the probes see now, and exit"
    )
    agent.add_argument(
        "--http",
        metavar="HOST:PORT",
        type=_http_address,
        help="serve /healthz and /metrics here (default: none)",
    )
    add_log_level(agent, "INFO")

    relay = _per_server_daemon(verbs, "relay", run_relay, "watches")
    relay.add_argument(
        "--once", action="store_true", help="print what the sources see now, and exit"
    )
    relay.add_argument(
        "--http", metavar="HOST:PORT", help="serve /healthz and /metrics here (default: none)"
    )
    add_log_level(relay, "INFO")


def _per_server_daemon(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    function: Verb,
    does: str,
) -> argparse.ArgumentParser:
    """A daemon that runs once per server (agent, relay): `--server` and `--config`."""
    sub = add_verb(verbs, name, function)
    sub.set_defaults(one_shot=False)
    sub.add_argument(
        "--server",
        required=True,
        metavar="NAME",
        help=f"the server this {name} {does} (a key of `servers` in the configuration)",
    )
    sub.add_argument(
        "--config", required=True, metavar="PATH", help="the cluster configuration (YAML)"
    )
    return sub


def _http_address(text: str) -> tuple[str, int] | None:
    from mrwbus.web import StatusPageError, parse_http_address

    if text == "off":
        return None
    try:
        return parse_http_address(text)
    except StatusPageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def run_service(args: argparse.Namespace) -> int:
    """run the service: decide recoveries for faults, serve the status page

    Examples:
        mrwbus run --config /etc/mrwbus/cluster.yaml
        mrwbus run --config cluster.yaml --http 0.0.0.0:8080   # in a container
        mrwbus run --config cluster.yaml --http off --log-level WARNING
    """
    return _serve(args, with_agents=False)


def run_demo(args: argparse.Namespace) -> int:
    """the service plus a harmless reference agent for every server, in one process

    Examples:
        mrwbus demo --config config/cluster.yaml
    """
    return _serve(args, with_agents=True)


def _serve(args: argparse.Namespace, *, with_agents: bool) -> int:
    """The service (and, for the demo, a reference agent per server) until SIGTERM or Ctrl-C."""
    from mrwbus.logs import configure_logging
    from mrwbus.service.service import Service
    from mrwbus.web.healthz import role_of

    config = load_config(args.config)
    http: tuple[str, int] | None = args.http
    configure_logging(args.log_level)
    url = broker_url(args)
    service = Service(config, ServiceSettings(amqp_url=url, management_url=management_url()))
    if not config.security.verify_senders:
        print(
            "mrwbus: UNVERIFIED: security.verify_senders is false, so anyone who can log in to"
            " the broker can send commands; development only (docs/security.md)",
            file=sys.stderr,
            flush=True,
        )

    def service_state() -> str | None:
        if service.consuming.is_set():
            return "active: consuming faults"
        # A standby replica is started too: it is where it should be, waiting for the lock.
        if role_of(service.health) == "standby":
            return "standby: waiting for the leader lock"
        return None

    async def serve() -> None:
        stop = _stop_on_signals()
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, _dump_tasks)
        running = [service.run(stop), sd_notify.announce(service_state, stop)]
        if with_agents:
            from mrwbus.agent import run_agent

            running += [
                run_agent(config, server, url, stop, source=args.config)
                for server in config.servers
            ]
        async with contextlib.AsyncExitStack() as stack:
            if http is not None:
                from mrwbus.web.server import StatusServer  # aiohttp's server: only when serving

                await stack.enter_async_context(StatusServer(service, *http))
            if with_agents:
                page = f"; status page: http://{http[0]}:{http[1]}/" if http else ""
                print(
                    f"service and agents for {', '.join(config.servers)} running{page}; Ctrl-C stops",
                    flush=True,
                )
            await asyncio.gather(*running)

    # The configuration lives as long as the process: out of the collector's way (`gc.freeze`).
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
    with asyncio.Runner(loop_factory=_service_loop()) as runner:
        runner.run(serve())
    return 0


def _service_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop for the service where it is installed: its socket writes cost a fraction of the
    standard loop's, and the service writes a frame per publish (docs/performance.md).
    `MRWBUS_EVENT_LOOP=asyncio` keeps the standard loop."""
    if os.environ.get("MRWBUS_EVENT_LOOP", "uvloop") != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_agent(args: argparse.Namespace) -> int:
    """run the reference node agent of one server: carry out its recovery commands

    Examples:
        mrwbus agent --server server1 --config /etc/mrwbus/cluster.yaml
        mrwbus agent --server server1 --config cluster.yaml --state-dir /var/lib/mrwbus-agent
        mrwbus agent --server server1 --config cluster.yaml --once   # what the probes see now
        mrwbus agent --server server1 --config cluster.yaml --http 127.0.0.1:9103
    """
    from mrwbus.agent import build_reference_agent
    from mrwbus.agent.reference import print_probes
    from mrwbus.logs import configure_logging

    config = load_config(args.config)
    if args.once:
        print_probes(config, args.server, source=args.config)
        return 0
    configure_logging(args.log_level)
    agent = build_reference_agent(
        config, args.server, broker_url(args), state_dir=args.state_dir, source=args.config
    )
    http: tuple[str, int] | None = args.http

    def agent_state() -> str | None:
        return f"consuming the commands of {args.server}" if agent.ready.is_set() else None

    async def serve() -> None:
        from mrwbus.agent.agent_http import serve_agent_http

        stop = _stop_on_signals()
        runner = await serve_agent_http(agent, *http) if http else None
        try:
            await asyncio.gather(agent.run(stop), sd_notify.announce(agent_state, stop))
        finally:
            if runner is not None:
                await runner.cleanup()

    asyncio.run(serve())
    return 0


def run_relay(args: argparse.Namespace) -> int:
    """run the driver relay of one server: NIC links, FC ports, kernel log, programs -> faults

    Examples:
        mrwbus relay --server server1 --config /etc/mrwbus/cluster.yaml
        mrwbus relay --server server1 --config cluster.yaml --once   # what the sources see now
        mrwbus relay --server server1 --config cluster.yaml --http 127.0.0.1:9102
    """
    from mrwbus.logs import configure_logging
    from mrwbus.relay.command import print_once, relay_settings, serve_relay, start_relay

    settings = relay_settings(load_config(args.config), args.config, args.server)
    if args.once:
        print_once(settings)
        return 0
    configure_logging(args.log_level)

    async def serve() -> None:
        stop = _stop_on_signals()
        relay = start_relay(settings, broker_url(args))
        # Ready once watching: with the broker away, faults wait in the spool.
        await asyncio.gather(
            serve_relay(relay, args.http, stop),
            sd_notify.announce(lambda: "watching its sources", stop),
        )

    asyncio.run(serve())
    return 0


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _dump_tasks() -> None:
    """SIGUSR1: print where every asyncio task waits, to find what a stuck service waits on."""
    for task in asyncio.all_tasks():
        print(f"--- {task.get_name()}", file=sys.stderr)
        task.print_stack(limit=8, file=sys.stderr)
