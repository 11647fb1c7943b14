"""The kinds of relay source, and one server's relay settings resolved from the `relay:` section.

Each kind is declared by its own module (`KIND`, a `sources.SourceKind`: its key, its
configuration model, how it builds sources, its cross-checks). `KINDS` is the registration:
a new source is one module and one line here; nothing else in the relay or the configuration
names it.

`mrwbus.config` keeps the keys of the sources as written (it sits below the relay); this module
validates them, for `check-config` and every verb that reads the file (`load_config`), with
the key path of each problem (`relay.logs.kernel.patterns.0.regex: ...`), and resolves them per
server (`for_server`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from mrwbus.config.loading import issues_from
from mrwbus.config.loading import load_config as load_cluster_config
from mrwbus.config.loading import parse_config as parse_cluster_config
from mrwbus.config.model import ClusterConfig
from mrwbus.config.relay import DEFAULT_DEBOUNCE, RELAY_KEYS, SERVER_KEYS, RelayConfig
from mrwbus.errors import ConfigIssue
from mrwbus.relay import fc, logfile, nic, program
from mrwbus.relay.sources import Source, SourceKind

KINDS: tuple[SourceKind, ...] = (nic.KIND, fc.KIND, logfile.KIND, program.KIND)
"""Every kind of source, in the order the relay starts them."""

_BY_KEY = {kind.key: kind for kind in KINDS}
_ADAPTERS = {kind.key: TypeAdapter(kind.section) for kind in KINDS}


@dataclass(frozen=True)
class RelaySettings:
    """One server's relay settings, resolved from the common and per-server configuration.

    `sources` holds each configured kind's section, validated; `settings.<key>` reads one
    (`settings.nic`, `settings.logs`), the kind's empty value when it is not configured."""

    server: str
    debounce: timedelta
    sources: Mapping[str, Any]
    spool_dir: str
    publish_user_id: bool

    def __getattr__(self, key: str) -> Any:
        kind = _BY_KEY.get(key)
        if kind is None:
            raise AttributeError(key)
        return self.sources.get(key, kind.empty)

    def build_sources(self) -> list[Source]:
        """The sources configured, in the order of `KINDS`."""
        built: list[Source] = []
        for kind in KINDS:
            if kind.key in self.sources:
                built += kind.build(self.sources[kind.key])
        return built


def for_server(relay: RelayConfig, server: str) -> RelaySettings:
    """The settings in force on `server`: its override of each key, else the common one.
    The sections were validated when the file was read (`load_config`)."""
    own = relay.servers.get(server)
    common = relay.source_sections()
    if own is not None:
        common.update(
            {key: value for key, value in own.source_sections().items() if value is not None}
        )
    debounce = own.debounce if own is not None and own.debounce is not None else relay.debounce
    sources = {
        key: _ADAPTERS[key].validate_python(value)
        for key, value in common.items()
        if key in _BY_KEY and value is not None
    }
    return RelaySettings(
        server=server,
        debounce=debounce or DEFAULT_DEBOUNCE,
        sources=sources,
        spool_dir=relay.spool_dir,
        publish_user_id=relay.publish_user_id,
    )


def check_sources(document: Mapping[str, Any]) -> Iterator[ConfigIssue]:
    """Every problem with the sources' keys of a parsed YAML document's `relay:` section (and
    of each `relay.servers.<name>`), with its key path: unknown keys, shapes, cross-checks."""
    relay = document.get("relay")
    if not isinstance(relay, Mapping):
        return  # absent, or not a mapping: the configuration's own model says so
    yield from _check_section(relay, RELAY_KEYS, ("relay",))
    servers = relay.get("servers")
    if isinstance(servers, Mapping):
        for name, own in servers.items():
            if isinstance(own, Mapping):
                yield from _check_section(own, SERVER_KEYS, ("relay", "servers", str(name)))


def _check_section(
    section: Mapping[str, Any], own_keys: frozenset[str], where: tuple[str, ...]
) -> Iterator[ConfigIssue]:
    for key, value in section.items():
        if key in own_keys:
            continue
        path = (*where, str(key))
        kind = _BY_KEY.get(key)
        if kind is None:
            yield ConfigIssue(".".join(path), "is not a known key")
            continue
        if value is None:
            continue
        try:
            validated = _ADAPTERS[key].validate_python(value)
        except ValidationError as exc:
            yield from issues_from(exc, path)
            continue
        yield from kind.check(validated, ".".join(path))


def parse_config(text: str, source: str = "<config>") -> ClusterConfig:
    """`mrwbus.config.loading.parse_config` with the relay's sources checked too."""
    return parse_cluster_config(text, source, checks=[check_sources])


def load_config(path: str | Path) -> ClusterConfig:
    """`mrwbus.config.loading.load_config` with the relay's sources checked too: what every
    verb reads, so that a file `check-config` refuses is refused by every verb alike."""
    return load_cluster_config(path, checks=[check_sources])
