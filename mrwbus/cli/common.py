"""What every verb module of the command line shares: exit codes, verb registration, the broker
option, the request/reply helper and the colour decision."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import textwrap
from collections.abc import Callable, Coroutine
from typing import IO, Any

from mrwbus.messages import ControlRequest, ControlVerb, new_id
from mrwbus.settings import amqp_urls

Verb = Callable[[argparse.Namespace], int]

# Exit codes, documented in `mrwbus --help` and docs/operations.md. Scripts rely on them: keep them.
EXIT_OK = 0
EXIT_FAILED = 1
"""Refused by the service, an invalid configuration, a failed action."""
EXIT_USAGE = 2
"""A usage error: argparse's own code, for a bad option or value."""
EXIT_BROKER = 3
"""RabbitMQ could not be reached."""
EXIT_BUG = 70
"""An unexpected exception: a bug in mrwbus (EX_SOFTWARE of sysexits.h), never confused with 2."""

EXIT_CODES = f"""\
exit codes:
  {EXIT_OK}   ok
  {EXIT_FAILED}   refused or failed (the service said no, an invalid configuration, ...)
  {EXIT_USAGE}   usage error (an unknown option, a value not among the choices, ...)
  {EXIT_BROKER}   RabbitMQ could not be reached
  {EXIT_BUG}  an unexpected error: a bug (MRWBUS_DEBUG=1 prints the traceback)
  130 interrupted (Ctrl-C)"""

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def add_verb(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    function: Verb,
    *,
    broker: bool = True,
    doc: str | None = None,
) -> argparse.ArgumentParser:
    """One verb, documented by its function's docstring (or `doc`): the first line is the
    one-line help, the lines after `Examples:` the epilog, so the help lives beside the code."""
    text = inspect.cleandoc(doc or function.__doc__ or "")
    summary, _, examples = text.partition("Examples:")
    help = " ".join(summary.split())
    assert help and examples.strip(), f"mrwbus {name}: the docstring needs a summary and Examples:"
    sub = verbs.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.set_defaults(verb=function, one_shot=True)
    if broker:
        sub.add_argument(
            "--amqp-url",
            metavar="URL",
            action="append",
            help="the broker; repeat it (or separate with commas) for each node of a cluster "
            "(default: $MRWBUS_AMQP_URL, else amqp://guest:guest@localhost/)",
        )
    return sub


def add_log_level(sub: argparse.ArgumentParser, default: str) -> None:
    sub.add_argument(
        "--log-level",
        default=default,
        type=str.upper,
        choices=LOG_LEVELS,
        help=f"how much to log, as JSON lines on stderr (default: {default})",
    )


def color_enabled(stream: IO[str]) -> bool:
    """Colour only for a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


def ask(args: argparse.Namespace, verb: ControlVerb, **fields: Any) -> Any:
    """One request to the running service; `ServiceError` when it refuses."""
    from mrwbus.bus.rpc import ask_service
    from mrwbus.errors import ServiceError

    request = ControlRequest(id=new_id(), verb=verb, by=operator(), **fields)
    reply = run(ask_service(amqp_urls(args.amqp_url), request))
    if not reply.ok:
        raise ServiceError(reply.error or "the service refused the request")
    return reply


def operator() -> str:
    import getpass

    try:
        return f"operator {getpass.getuser()}"
    except Exception:
        return "operator"


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coroutine)
