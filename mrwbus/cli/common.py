"""What every verb module of the command line shares: exit codes, verb registration, the broker
options (URL, password file, TLS files), the request/reply helper and the colour decision."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import os
import textwrap
from collections.abc import Callable, Coroutine
from typing import IO, Any, TypeVar

from mrwbus.config.settings import amqp_urls
from mrwbus.messages import ControlRequest, ControlVerb, new_id

Verb = Callable[[argparse.Namespace], int]
T = TypeVar("T")

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
    sub = _documented(verbs, name, doc or function.__doc__ or "")
    sub.set_defaults(verb=function, one_shot=True)
    if broker:
        add_broker_options(sub)
    return sub


def add_broker_options(sub: argparse.ArgumentParser) -> None:
    """The broker URL and, so that no password sits in a URL, an environment dump or argv, the
    password file and the TLS files (docs/security.md)."""
    sub.add_argument(
        "--amqp-url",
        metavar="URL",
        action="append",
        help="the broker; repeat it (or separate with commas) for each node of a cluster "
        "(default: $MRWBUS_AMQP_URL, else the file $MRWBUS_AMQP_URL_FILE names, "
        "else amqp://guest:guest@localhost/)",
    )
    sub.add_argument(
        "--password-file",
        metavar="PATH",
        help="read the broker password from this file (default: $MRWBUS_AMQP_PASSWORD_FILE), "
        "so that it is in no URL, environment or argv",
    )
    for option, what in (
        ("ca", "the CA that signs the broker's certificate"),
        ("cert", "this client's certificate"),
        ("key", "this client's private key"),
    ):
        sub.add_argument(
            f"--tls-{option}",
            metavar="PATH",
            help=f"for amqps:// URLs: {what} (default: $MRWBUS_TLS_{option.upper()})",
        )


def broker_url(args: argparse.Namespace) -> list[str]:
    """The broker URLs of a verb's options (one, or every node of a cluster), each with the
    password file and TLS files (file names only: they are read when connecting,
    `settings.connection_parameters`)."""
    return amqp_urls(
        args.amqp_url,
        password_file=args.password_file,
        tls_ca=args.tls_ca,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )


def add_group(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], name: str, doc: str, actions: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """A verb whose work is done by verbs of its own (`mrwbus dead list`), documented by `doc`
    as `add_verb` documents a verb; `actions` is the help of the ACTION argument. Add each
    action with `add_verb` on the returned subparsers."""
    group = _documented(verbs, name, doc)
    group.set_defaults(one_shot=True)
    return group.add_subparsers(required=True, metavar="ACTION", help=actions)


def _documented(
    verbs: argparse._SubParsersAction[argparse.ArgumentParser], name: str, doc: str
) -> argparse.ArgumentParser:
    text = inspect.cleandoc(doc)
    summary, _, examples = text.partition("Examples:")
    help = " ".join(summary.split())
    assert help and examples.strip(), f"mrwbus {name}: the docstring needs a summary and Examples:"
    return verbs.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip(), "  "),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def checked(parse: Callable[[str], T]) -> Callable[[str], T]:
    """An option's `type` from a parser that raises `ValueError`: its sentence becomes the usage
    error (exit 2), where argparse alone would only say "invalid value"."""

    def check(text: str) -> T:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from exc

    return check


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
    return run(ask_async(args, verb, **fields))


async def ask_async(args: argparse.Namespace, verb: ControlVerb, **fields: Any) -> Any:
    """`ask`, inside a running event loop."""
    from mrwbus.bus.rpc import ask_service
    from mrwbus.errors import ServiceError

    request = ControlRequest(id=new_id(), verb=verb, by=operator(), **fields)
    reply = await ask_service(broker_url(args), request)
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
