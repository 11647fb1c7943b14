"""The `mrwbus` command: the parser is built here, each verb group lives in a module of its own
(`daemons`, `operators`, `dead`, `admin`, `offline`), each with a `register(verbs)` function.

Errors print as one sentence, never a traceback, and the exit code says which kind of failure it
was (`common.EXIT_CODES`). One-shot verbs print nothing but their answer: the libraries' log
lines (aiormq's connection warnings, say) are silenced there; daemons log JSON lines instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from mrwbus import __version__
from mrwbus.cli import admin, daemons, dead, history_verbs, offline, operators, resource_verbs
from mrwbus.cli.common import (
    EXIT_BROKER,
    EXIT_BUG,
    EXIT_CODES,
    EXIT_FAILED,
    Verb,
)
from mrwbus.errors import BrokerUnavailable, ConfigError, MrwbusError

VERB_GROUPS = (daemons, operators, history_verbs, dead, admin, offline, resource_verbs)
"""Add a module here to add its verbs; `register(verbs)` adds them to the parser."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # a usage error exits here with status 2
    verb: Verb = args.verb
    if args.one_shot:
        _quiet_libraries()
    try:
        return verb(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_FAILED
    except BrokerUnavailable as exc:
        print(f"mrwbus: {exc}", file=sys.stderr)
        return EXIT_BROKER
    except MrwbusError as exc:
        print(f"mrwbus: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one sentence, the traceback on request
        if os.environ.get("MRWBUS_DEBUG"):
            raise
        print(
            f"mrwbus: unexpected {type(exc).__name__}: {exc} (set MRWBUS_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_BUG


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mrwbus",
        description="A fault-to-recovery bus on RabbitMQ. `mrwbus VERB --help` for each verb.",
        epilog=EXIT_CODES + "\n\nenvironment:\n"
        "  MRWBUS_AMQP_URL            the broker, when --amqp-url is not given\n"
        "  MRWBUS_AMQP_URL_FILE       a file holding the broker URL, when neither is given\n"
        "  MRWBUS_AMQP_PASSWORD_FILE  the broker password's file, when --password-file is not\n"
        "                             given (docs/security.md)\n"
        "  MRWBUS_TLS_CA, _CERT, _KEY TLS files for amqps://, when --tls-* are not given\n"
        "  MRWBUS_MANAGEMENT_URL      run, demo: the management API (unacked counts, ages)\n"
        "  NO_COLOR                   set to anything: no colour, even on a terminal\n"
        "  MRWBUS_DEBUG               set to anything: a traceback instead of one sentence",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mrwbus {__version__}")
    verbs = parser.add_subparsers(required=True, metavar="VERB")
    for group in VERB_GROUPS:
        group.register(verbs)
    parser.set_defaults(root_parser=parser)  # for `completion`, which describes every verb
    return parser


def _quiet_libraries() -> None:
    """A one-shot verb's output is its answer or one sentence: no library log line.

    Without a handler, Python prints warnings through `logging.lastResort`; a NullHandler on the
    root logger stops that. MRWBUS_DEBUG brings the log back, as JSON lines on stderr.
    """
    if os.environ.get("MRWBUS_DEBUG"):
        from mrwbus.logs import configure_logging

        configure_logging("DEBUG")
        return
    root = logging.getLogger()
    if not root.handlers:  # a host that configured logging (pytest, an embedding) keeps it
        root.addHandler(logging.NullHandler())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
