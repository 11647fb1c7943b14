"""The operators' one-shot verbs against a running service: status, clear, suspend, resume,
place, fence, watch, and notify (a fault published exactly as a driver relay would)."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from mrwbus.cli.common import add_verb, ask, ask_async, broker_url, color_enabled, run
from mrwbus.messages import Category, ControlVerb, Event, EventKind, FenceAction
from mrwbus.terminal import printable


def register(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    notify = add_verb(verbs, "notify", notify_fault)
    notify.add_argument(
        "--server", required=True, metavar="NAME", help="the server whose driver saw the fault"
    )
    notify.add_argument(
        "--category",
        required=True,
        choices=[c.value for c in Category],
        help="the fault category",
    )
    notify.add_argument(
        "--device", required=True, help="the device that failed, e.g. eth0 (at most 1023 bytes)"
    )
    notify.add_argument(
        "--message", default="", help="free text from the driver, for operators (default: none)"
    )
    notify.add_argument(
        "--id",
        dest="fault_id",
        metavar="ID",
        help="the notification id; the same id twice is decided once (default: a new UUID)",
    )
    notify.add_argument(
        "--recovered", action="store_true", help="announce that the device works again"
    )

    status = add_verb(verbs, "status", show_status)
    status.add_argument("--json", action="store_true", help="machine-readable output")

    clear = add_verb(verbs, "clear", clear_monitor)
    clear.add_argument("monitor", metavar="MONITOR", help="the monitor resource to clear")
    clear.add_argument(
        "--server", metavar="NAME", help="only on this server (default: every server)"
    )
    clear.add_argument(
        "--reset-counts", action="store_true", help="also set restart/failover counts to zero"
    )

    for control, summary in (
        (ControlVerb.SUSPEND, "record faults but take no action until resumed"),
        (ControlVerb.RESUME, "let a suspended monitor act again"),
    ):
        name = control.value
        doc = f"{summary}\n\nExamples:\n    mrwbus {name} mrw1\n    mrwbus {name} --all"
        sub = add_verb(verbs, name, suspend_or_resume, doc=doc)
        sub.set_defaults(control=control)
        target = sub.add_mutually_exclusive_group(required=True)
        target.add_argument("monitor", nargs="?", metavar="MONITOR", help="the monitor resource")
        target.add_argument("--all", action="store_true", help="every monitor")

    place = add_verb(verbs, "place", place_group)
    place.add_argument("group", metavar="GROUP", help="the failover group to correct")
    place.add_argument(
        "server",
        metavar="SERVER|none",
        help="the server the group really runs on, or 'none' when it runs nowhere",
    )
    place.add_argument(
        "--reason", required=True, help="why the service's view was wrong, for the event log"
    )

    fence = add_verb(verbs, "fence", fence_server)
    fence.add_argument("server", metavar="SERVER", help="the server whose BMC a peer drives")
    fence.add_argument(
        "--action",
        choices=[action.value for action in FenceAction if action is not FenceAction.DIAG],
        default=FenceAction.OFF.value,
        help="what to ask its BMC (default: off; status only reads the power)",
    )
    fence.add_argument("--force", action="store_true", help="even if it is the last healthy server")
    fence.add_argument(
        "--wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for the outcome (default: 120)",
    )

    watch = add_verb(verbs, "watch", watch_events)
    watch.add_argument("--monitor", metavar="NAME", help="only this monitor's events")
    watch.add_argument("--server", metavar="NAME", help="only events about this server")
    watch.add_argument(
        "--kind",
        choices=[kind.value for kind in EventKind],
        help="only events of this kind",
    )
    watch.add_argument("--json", action="store_true", help="print each event as JSON")


def notify_fault(args: argparse.Namespace) -> int:
    """publish a fault exactly as a driver relay would

    Examples:
        mrwbus notify --server server1 --category NIC --device eth0 --message "link down"
        mrwbus notify --server server1 --category NIC --device eth0 --recovered
        mrwbus notify --server server1 --category FC --device host1 --id fc-0001   # resend-safe
    """
    from mrwbus.relay import make_fault, publish_fault

    fault = make_fault(
        args.server,
        args.category,
        args.device,
        args.message,
        state="recovered" if args.recovered else "error",
        fault_id=args.fault_id,
    )
    run(publish_fault(broker_url(args), fault))
    print(f"published fault {fault.id} ({fault.routing_key})")
    return 0


def show_status(args: argparse.Namespace) -> int:
    """every monitor on every server, every group and where it runs, every server, the bus's queues

    Examples:
        mrwbus status
        mrwbus status --json | jq '.monitors[] | select(.status == "Error")'
        NO_COLOR=1 mrwbus status
    """
    from mrwbus.operators.status_table import render_status

    reply = ask(args, ControlVerb.STATUS)
    assert reply.status is not None
    if args.json:
        print(reply.status.model_dump_json(indent=2))
    else:
        print(render_status(reply.status, color=color_enabled(sys.stdout)))
    return 0


def clear_monitor(args: argparse.Namespace) -> int:
    """return a monitor's status to Normal (counts kept unless --reset-counts)

    Examples:
        mrwbus clear mrw1
        mrwbus clear mrw1 --server server1 --reset-counts
    """
    reply = ask(
        args,
        ControlVerb.CLEAR,
        monitor=args.monitor,
        server=args.server,
        reset_counts=args.reset_counts,
    )
    print(printable(reply.text))
    return 0


def suspend_or_resume(args: argparse.Namespace) -> int:
    reply = ask(args, args.control, monitor=args.monitor, all=args.all)
    print(printable(reply.text))
    return 0


def place_group(args: argparse.Namespace) -> int:
    """correct where a group runs when the service's view is wrong (refused during its failover)

    The service then acts on the corrected view: recoveries target the group where you placed
    it, and failovers leave from there. Agents' next reports (their probes) still win.

    Examples:
        mrwbus place pg db2 --reason "failover ended half-done; postgres runs on db2"
        mrwbus place pg none --reason "stopped by hand for maintenance"
    """
    server = None if args.server == "none" else args.server
    reply = ask(args, ControlVerb.PLACE, group=args.group, server=server, reason=args.reason)
    print(printable(reply.text))
    return 0


def watch_events(args: argparse.Namespace) -> int:
    """a live tail of events, one line each, until Ctrl-C

    Examples:
        mrwbus watch
        mrwbus watch --monitor mrw1 --kind command
        mrwbus watch --server server1 --json
    """
    from mrwbus.bus.watch import format_event, watch_events

    def show(event: Event) -> None:
        if args.server and event.server != args.server:
            return
        print(event.model_dump_json() if args.json else printable(format_event(event)), flush=True)

    async def tail() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await watch_events(broker_url(args), show, stop, kind=args.kind, monitor=args.monitor)

    run(tail())
    return 0


FENCE_OUTCOMES = {"MRW-1002": 0, "MRW-1004": 1}
"""The events that end `mrwbus fence`, and its exit status for each."""


def fence_server(args: argparse.Namespace) -> int:
    """power a server off (or on, reboot it, read its power) through its BMC, by a peer's agent

    The service picks a peer whose agent runs the server's fence agent, and believes only the
    power state the BMC reports back; once a server is fenced off or rebooted, its groups fail
    over. Operators only; the last healthy server only with --force. Exit 0 once the BMC
    confirmed, 1 when every peer failed (the service keeps trying).

    Examples:
        mrwbus fence server1 --action status     # test the BMC settings: nothing changes
        mrwbus fence server1                     # off; its groups then fail over
        mrwbus fence server1 --action on
    """
    from mrwbus.bus.watch import format_event, watch_events

    async def fence() -> int:
        stop, ready = asyncio.Event(), asyncio.Event()
        outcome: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def show(event: Event) -> None:
            if event.server != args.server or outcome.done():
                return
            print(printable(format_event(event)), flush=True)
            if event.code in FENCE_OUTCOMES:
                outcome.set_result(FENCE_OUTCOMES[event.code])

        url = broker_url(args)
        watching = asyncio.create_task(
            watch_events(url, show, stop, kind=EventKind.FENCE.value, ready=ready)
        )
        try:
            await asyncio.wait_for(ready.wait(), 30)
            reply = await ask_async(
                args,
                ControlVerb.FENCE,
                server=args.server,
                fence_action=args.action,
                force=args.force,
            )
            print(printable(reply.text), flush=True)
            return await asyncio.wait_for(outcome, args.wait)
        except TimeoutError:
            print(f"no outcome within {args.wait:g} s; see `mrwbus status`", file=sys.stderr)
            return 1
        finally:
            stop.set()
            await asyncio.gather(watching, return_exceptions=True)

    result: int = run(fence())
    return result
