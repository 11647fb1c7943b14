"""The errors mrwbus raises, each a sentence an operator can act on.

MrwbusError
 ├── ConfigError        the cluster configuration is invalid; the service refuses to start
 ├── ContractError      a message on the bus breaks the wire contract; it is dead-lettered
 ├── BrokerUnavailable  RabbitMQ cannot be reached after the retries allowed
 ├── NotConnected       something must be sent while no broker session is up
 ├── ServiceError       the running service refused or did not answer an operator's request
 ├── StatusPageError    the status page cannot listen where asked; the service refuses to start
 ├── JournalFailed      a journal (the service's stream, an agent's ledger) cannot be written
 ├── JournalLocked      another agent process already uses the same command ledger
 ├── RelayError         `mrwbus relay` cannot start: its spool or its --http address
 ├── AgentError         `mrwbus agent` cannot serve its --http address
 ├── ProvisionError     the management API refused a step of `mrwbus provision`
 ├── AlertRejected      Alertmanager refused an alert as malformed; it is dead-lettered
 ├── ResourceAgentError an OCF resource agent is not installed or its meta-data is unreadable
 │    └── MetadataError its meta-data is no resource-agent XML
 └── Passing            an answer worth retrying or reporting, never shown as a failure of mrwbus
      ├── YamlRefused               a file is not YAML, or breaks a limit (becomes a ConfigError)
      ├── ManagementUnreachable     the management API did not answer (AMQP figures only)
      └── AlertmanagerUnavailable   Alertmanager cannot take alerts now (retried)

None of them is a `ConnectionError`: the session's reconnect path (`bus.session`) catches
connection and channel failures only, so a disk or journal problem never looks like a broker
outage (see `JournalFailed` for what it does instead). The one `ConnectionError` of mrwbus is
`bus.session.SessionLost`, on purpose: a session that must be renewed.
"""

from __future__ import annotations

from dataclasses import dataclass


class MrwbusError(Exception):
    """Base of every error mrwbus raises on purpose; its text is meant for an operator."""


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration file: where (a dotted key path, and the line and column
    when known, both from 1) and what."""

    path: str
    problem: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        problem = one_line(self.problem)
        return f"{self.path}: {problem}" if self.path else problem

    def located(self, source: str) -> str:
        """`source:line:column: path: problem`, the form editors and compilers use."""
        if self.line is None:
            return f"{source}: {self}"
        column = f":{self.column}" if self.column is not None else ""
        return f"{source}:{self.line}{column}: {self}"


LINE_LIMIT = 300
"""No problem is printed longer than this: a value from the file is never echoed whole."""


def one_line(text: str, limit: int = LINE_LIMIT) -> str:
    """`text` on one line (runs of white space, newlines included, become one space), cut to
    `limit` characters with `...`."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class ConfigError(MrwbusError):
    """Raised when a configuration file cannot be read or fails validation.

    Carries every issue found, each with its key path, so one run shows all of them.
    """

    def __init__(self, source: str, issues: list[ConfigIssue]) -> None:
        self.source = source
        self.issues = issues
        lines = [issue.located(source) for issue in issues]
        super().__init__("\n".join(lines))


class ContractError(MrwbusError):
    """Raised when a message body or its properties break the wire contract.

    The text becomes the `x-mrwbus-error` header of the dead-lettered message.
    """


class BrokerUnavailable(MrwbusError):
    """Raised when RabbitMQ does not answer after the configured retries."""


class NotConnected(MrwbusError):
    """Raised when something must be published while no broker session is up.

    Not a `ConnectionError` on purpose: it is a state of this process, not a failure of the
    broker, and it must not be mistaken for one by the reconnect path.
    """


class ServiceError(MrwbusError):
    """Raised when the running service refuses an operator request or does not answer it."""


class StatusPageError(MrwbusError):
    """Raised when the status page cannot listen where asked: a malformed HOST:PORT, or an
    address that is taken or not this machine's. The service refuses to start."""


class JournalFailed(MrwbusError):
    """Raised when a journal cannot be written or read back.

    In an agent (its command ledger on disk) the delivery is handed back to its queue, whose
    delivery limit dead-letters it if the disk stays broken. In the service (the journal
    stream) the active replica stops deciding: it steps down, releasing the leader lock, and
    stands by to lead again with its state rebuilt from the journal. Neither is a broker
    outage, so neither is counted as one.
    """


class JournalLocked(MrwbusError):
    """Raised when another agent process already uses the same command ledger directory."""


class RelayError(MrwbusError):
    """Raised when the relay cannot start: its spool cannot be written, or `--http` is not an
    address it can listen on. The relay refuses to start rather than run without a spool."""


class AgentError(MrwbusError):
    """Raised when `mrwbus agent` cannot start: its `--http` address cannot be served."""


class AlertRejected(MrwbusError):
    """Raised when Alertmanager answers a post of alerts with a 4xx status other than 429:
    the alerts are malformed and retrying cannot help. The forwarder dead-letters the events
    (`mrwbus dead list`) with Alertmanager's answer as the reason. A 5xx, a 429, a timeout or
    a refused connection is no rejection: the post is retried."""


class ResourceAgentError(MrwbusError):
    """Raised when an OCF resource agent cannot be found under `OCF_ROOT`, or its `meta-data`
    action fails or prints no resource-agent XML (`mrwbus.ocf`)."""


class ProvisionError(MrwbusError):
    """Raised when the management API refuses a step of `mrwbus provision` (a user, a
    permission, a topic permission); the text says which step and the API's answer."""


class MetadataError(ResourceAgentError):
    """Raised when an OCF agent's `meta-data` output is no resource-agent XML."""


class Passing(MrwbusError):
    """Base of the answers that are retried or turned into another error by whoever catches
    them; none reaches an operator as it is."""


class YamlRefused(Passing):
    """Raised by `config.yaml_reader` when the text is not YAML or breaks a limit; `issue` says
    where and what to do, and `config.loading` reports it as a `ConfigError`."""

    def __init__(self, issue: ConfigIssue) -> None:
        super().__init__(str(issue))
        self.issue = issue


class ManagementUnreachable(Passing):
    """Raised when the management API does not answer (or not with a listing): the queue
    figures fall back to what AMQP tells."""


class AlertmanagerUnavailable(Passing):
    """Raised when Alertmanager cannot take alerts now (unreachable, a 5xx, a 429): retried."""
