"""The errors mrwbus raises, each a sentence an operator can act on.

MrwbusError
 ├── ConfigError        the cluster configuration is invalid; the service refuses to start
 ├── ContractError      a message on the bus breaks the wire contract; it is dead-lettered
 ├── BrokerUnavailable  RabbitMQ cannot be reached after the retries allowed
 ├── ServiceError       the running service refused or did not answer an operator's request
 └── RelayError         `mrwbus relay` cannot start: its spool or its --http address
"""

from __future__ import annotations

from dataclasses import dataclass


class MrwbusError(Exception):
    """Base of every error mrwbus raises on purpose; its text is meant for an operator."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration file: where (a dotted key path) and what."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" if self.path else self.problem


class ConfigError(MrwbusError):
    """Raised when a configuration file cannot be read or fails validation.

    Carries every issue found, each with its key path, so one run shows all of them.
    """

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        lines = [f"{source}: {issue}" for issue in issues]
        super().__init__("\n".join(lines))


class ContractError(MrwbusError):
    """Raised when a message body or its properties break the wire contract.

    The text becomes the `x-mrwbus-error` header of the dead-lettered message.
    """


class BrokerUnavailable(MrwbusError):
    """Raised when RabbitMQ does not answer after the configured retries."""


class ServiceError(MrwbusError):
    """Raised when the running service refuses an operator request or does not answer it."""


class RelayError(MrwbusError):
    """Raised when the relay cannot start: its spool cannot be written, or `--http` is not an
    address it can listen on. The relay refuses to start rather than run without a spool."""
