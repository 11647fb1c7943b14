"""Reading a configuration file: YAML in, a validated `ClusterConfig` out, or a `ConfigError`
that lists every problem with its key path.

Validation runs in two passes: pydantic checks each value's shape (`config.model`), then
`config.checks.check_references` checks that every name used is defined and that no setting
would silently do nothing. A layer above may add checks of its own over the parsed document
(`checks`): the relay validates its sources' keys so (`mrwbus.relay.registry.load_config`),
and their issues are reported in the same run, with the same key paths.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from mrwbus.config.checks import check_references, references_despite
from mrwbus.config.model import ClusterConfig
from mrwbus.config.yaml_reader import yaml_data
from mrwbus.errors import ConfigError, ConfigIssue

DocumentCheck = Callable[[Mapping[str, Any]], Iterable[ConfigIssue]]
"""A check of the parsed YAML document (before and whatever the model says of it)."""


def load_config(path: str | Path, *, checks: Sequence[DocumentCheck] = ()) -> ClusterConfig:
    """Read and validate a configuration file; raise `ConfigError` listing every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(source, [ConfigIssue("", f"cannot be read: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(source, [ConfigIssue("", "is not valid UTF-8")]) from exc
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
        data, duplicates = yaml_data(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [ConfigIssue("", f"is not valid YAML: {exc}")]) from exc
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
        raise ConfigError(source, [*duplicates, *shape, *added, *names]) from exc
    issues = [*duplicates, *added, *check_references(config)]
    if issues:
        raise ConfigError(source, issues)
    return config


def issues_from(error: ValidationError, prefix: Sequence[str] = ()) -> list[ConfigIssue]:
    """pydantic's errors as issues with key paths (under `prefix`), in words for an operator."""
    issues = []
    for detail in error.errors():
        loc = (*prefix, *detail["loc"])
        path = ".".join(str(part) for part in loc if not _is_union_tag(part))
        problem = detail["msg"].removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            problem = "is not a known key"
        elif detail["type"] == "missing":
            problem = "is required"
        elif detail["type"] == "string_pattern_mismatch":
            problem = f"{detail['input']!r} is not a valid name (letters, digits, _ and -)"
        elif detail["type"] == "enum":
            problem = f"{detail['input']!r} is not one of: {detail['ctx']['expected']}"
        issues.append(ConfigIssue(path, problem))
    return _dedupe(issues)


def _is_union_tag(part: int | str) -> bool:
    # pydantic names the union member tried (e.g. `literal['always']`); it is not a key.
    return isinstance(part, str) and (
        "[" in part or part in {"ActiveTiming", "MonitorServerConfig"}
    )


def _dedupe(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    seen: dict[str, ConfigIssue] = {}
    for issue in issues:
        # A union reports one error per member; the first says enough for an operator.
        seen.setdefault(issue.path, issue)
    return list(seen.values())
