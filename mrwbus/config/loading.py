"""Reading a configuration file: YAML in, a validated `ClusterConfig` out, or a `ConfigError`
that lists every problem with its line and key path, in the order of the file.

The same reader serves every verb that reads a configuration. The YAML is read with limits
(`config.yaml_reader`); then validation runs in two passes: pydantic checks each value's shape
(`config.model`), then `config.checks.check_references` checks that every name used is defined
and that no setting would silently do nothing, on whatever part of the file had the right shape.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mrwbus.config.checks import check_references, key_path, references_despite
from mrwbus.config.model import ClusterConfig
from mrwbus.config.yaml_reader import DEFAULT_LIMITS, Position, read_yaml
from mrwbus.errors import ConfigError, ConfigIssue, YamlRefused, one_line

DocumentCheck = Callable[[Mapping[str, Any]], Iterable[ConfigIssue]]
"""A check of the parsed YAML document (before and whatever the model says of it): a layer
above adds its own so (the relay validates its sources' keys: `relay.registry.load_config`),
and their issues are reported in the same run, with the same key paths."""


def load_config(path: str | Path, *, checks: Sequence[DocumentCheck] = ()) -> ClusterConfig:
    """Read and validate a configuration file; raise `ConfigError` listing every problem."""
    source = str(path)
    limit = DEFAULT_LIMITS.max_file_bytes
    try:
        with open(path, "rb") as file:
            raw = file.read(limit + 1)
    except OSError as exc:
        raise ConfigError(source, [ConfigIssue("", f"cannot be read: {exc.strerror}")]) from exc
    if len(raw) > limit:
        raise ConfigError(
            source,
            [ConfigIssue("", f"is over {limit:,} bytes: is this the cluster configuration?")],
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(source, [ConfigIssue("", "is not valid UTF-8", line)]) from exc
    return parse_config(text, source, checks=checks)


def parse_config(
    text: str, source: str = "<config>", *, checks: Sequence[DocumentCheck] = ()
) -> ClusterConfig:
    # A large configuration is some 10^5 small objects that all live on: without the pause,
    # the cyclic collector walks them again and again (over half the time at 10,000 monitors).
    with _collector_paused():
        return _parse_config(text, source, checks)


@contextmanager
def _collector_paused() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parse_config(text: str, source: str, checks: Sequence[DocumentCheck]) -> ClusterConfig:
    try:
        document = read_yaml(text)
    except YamlRefused as exc:
        raise ConfigError(source, [exc.issue]) from None
    data, duplicates = document.data, document.duplicates
    if not isinstance(data, dict):
        raise ConfigError(
            source,
            [*duplicates, ConfigIssue("", "must be a mapping with servers, groups, monitors")],
        )
    added = [issue for check in checks for issue in check(data)]
    try:
        config = ClusterConfig.model_validate(data)
    except ValidationError as exc:
        # Every error in one run: the names are checked too, on what is left of the file
        # once the entries with type errors are taken out.
        shape = issues_from(exc)
        names = references_despite(data, [error["loc"] for error in exc.errors()])
        raise ConfigError(
            source, in_file_order([*duplicates, *shape, *added, *names], document.positions)
        ) from exc
    issues = [*duplicates, *added, *check_references(config)]
    if issues:
        raise ConfigError(source, in_file_order(issues, document.positions))
    return config


def in_file_order(issues: list[ConfigIssue], positions: dict[str, Position]) -> list[ConfigIssue]:
    """Each issue with the line and column of its key path (or of the nearest key above it
    that was written), sorted as they come in the file; issues of the whole file first."""
    located = [_locate(issue, positions) for issue in issues]
    return sorted(located, key=lambda issue: (issue.line or 0, issue.column or 0))


def _locate(issue: ConfigIssue, positions: dict[str, Position]) -> ConfigIssue:
    if issue.line is not None:
        return issue
    path = issue.path
    while path:
        if path in positions:
            line, column = positions[path]
            return replace(issue, line=line, column=column)
        path = path.rpartition(".")[0]
    return issue


def issues_from(error: ValidationError, prefix: Sequence[str] = ()) -> list[ConfigIssue]:
    """pydantic's errors as issues with key paths (under `prefix`), in words for an operator."""
    issues = []
    for detail in error.errors():
        path = ".".join(str(part) for part in (*prefix, *key_path(detail["loc"])))
        problem = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            problem = "is not a known key"
        elif detail["type"] == "missing":
            problem = "is required"
        elif detail["type"] == "string_pattern_mismatch":
            problem = f"{_short(detail['input'])} is not a valid name (letters, digits, _ and -)"
        elif path.endswith(".timing") or ".timing." in path:
            problem = "must be always, or {active: GROUP-OR-RESOURCE}"
        elif detail["type"] == "enum":
            problem = f"{_short(detail['input'])} is not one of: {detail['ctx']['expected']}"
        issues.append(ConfigIssue(path, problem))
    return _dedupe(issues)


def _short(value: object) -> str:
    """A value from the file as it may be quoted in an error: never longer than a word or two."""
    return one_line(repr(value), 40)


def _dedupe(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    seen: dict[str, ConfigIssue] = {}
    for issue in issues:
        # A union reports one error per member; the first says enough for an operator.
        seen.setdefault(issue.path, issue)
    return list(seen.values())
