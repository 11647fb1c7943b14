"""YAML text to plain data, read with limits, in one pass over the parser's events.

Every verb that reads a configuration (`run`, `agent`, `demo`, `relay`, `check-config`,
`simulate`) reads it here, through `config.loading`. A configuration is an administrator's file,
but it may be copied from anywhere, and plain YAML lets a few hundred bytes stand for
gigabytes: nine nested anchors ("billion laughs") expand to 10^9 nodes, and a recursive anchor
(`x: &x [*x]`) to an endless one. So this reader never expands an alias by walking it, never
recurses (the events are taken one by one onto a stack of its own), and refuses, each with a
line and what to do:

- a file over `YamlLimits.max_file_bytes`, a scalar over `max_scalar_bytes`;
- nesting deeper than `max_depth`;
- an alias to an anchor still open (a recursive alias), more than `max_aliases` aliases, or a
  document whose aliases expand it past `max_nodes` nodes.

An alias shares the anchor's data (as PyYAML's own constructor does); its expanded size is
counted, not built. Keys given twice in one mapping, which plain YAML silently overwrites with
the last, are noted, and so is where each key path was written (`YamlDocument.positions`), so
that every error can name its line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from mrwbus.errors import ConfigIssue, YamlRefused, one_line


@dataclass(frozen=True)
class YamlLimits:
    """What a configuration file may hold; far above any real cluster's (10,000 monitors on
    1,000 servers is some 2 MB and 10^5 nodes)."""

    max_file_bytes: int = 16 * 1024 * 1024
    max_scalar_bytes: int = 64 * 1024
    max_depth: int = 32
    max_aliases: int = 10_000
    max_nodes: int = 1_000_000


DEFAULT_LIMITS = YamlLimits()


Position = tuple[int, int]
"""A line and a column, both counted from 1."""


@dataclass
class YamlDocument:
    data: object
    duplicates: list[ConfigIssue] = field(default_factory=list)
    positions: dict[str, Position] = field(default_factory=dict)
    """Dotted key path -> where its key (or its list item) was written."""


def read_yaml(text: str, limits: YamlLimits = DEFAULT_LIMITS) -> YamlDocument:
    """The document as plain data (None when empty), its keys given twice, and where every key
    path was written. Raises `YamlRefused`."""
    if len(text) > limits.max_file_bytes:
        raise YamlRefused(_too_big_file(len(text.encode("utf-8")), limits))
    loader = _Loader(text)
    try:
        return _Reader(loader, limits).read()
    except yaml.MarkedYAMLError as exc:
        raise YamlRefused(_not_yaml(exc, text)) from None
    except yaml.YAMLError as exc:
        raise YamlRefused(ConfigIssue("", f"is not valid YAML: {one_line(str(exc))}")) from None
    finally:
        loader.dispose()


def _too_big_file(size: int, limits: YamlLimits) -> ConfigIssue:
    return ConfigIssue(
        "",
        f"is {size:,} bytes, at most {limits.max_file_bytes:,} allowed:"
        " is this the cluster configuration?",
    )


def _not_yaml(exc: yaml.MarkedYAMLError, text: str) -> ConfigIssue:
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return ConfigIssue("", f"is not valid YAML: {one_line(str(exc.problem))}")
    line, column = mark.line + 1, mark.column + 1
    if 0 <= mark.index < len(text) and text[mark.index] == "\t":
        return ConfigIssue(
            "",
            "a tab in the indentation: YAML indents with spaces only; replace the tab with spaces",
            line,
            column,
        )
    what = " ".join(part for part in (exc.problem, exc.context) if part)
    return ConfigIssue("", f"is not valid YAML: {one_line(what)}", line, column)


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[valid-type,misc]
    """The safe loader (libyaml's when present), remembering the implicit tag of each scalar:
    PyYAML resolves every plain scalar with regular expressions in Python, and a large
    configuration repeats the same words (keys, actions, counts) tens of thousands of times."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._tags: dict[tuple[str, tuple[bool, bool]], str] = {}

    def resolve(self, kind: type[yaml.Node], value: Any, implicit: Any) -> str:
        if kind is not yaml.ScalarNode:
            return str(super().resolve(kind, value, implicit))
        key = (value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            tag = self._tags[key] = str(super().resolve(kind, value, implicit))
        return tag


_TAG = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ, _MERGE = _TAG + "str", _TAG + "map", _TAG + "seq", _TAG + "merge"
_MERGE_KEY = object()
"""Stands for `<<` among a mapping's keys."""


@dataclass
class _Open:
    """A mapping or sequence whose end event has not come yet."""

    path: str
    anchor: str | None
    line: int
    items: list[object] | None = None  # a sequence
    mapping: dict[object, object] | None = None
    merges: list[object] = field(default_factory=list)
    key: object = None
    key_name: str = ""
    has_key: bool = False
    seen: set[str] = field(default_factory=set)
    size: int = 1
    height: int = 1


@dataclass
class _Anchor:
    value: object
    size: int
    depth: int


class _Reader:
    def __init__(self, loader: yaml.SafeLoader, limits: YamlLimits) -> None:
        # Any: PyYAML's stubs leave the event API untyped.
        self.loader: Any = loader
        self.limits = limits
        self.stack: list[_Open] = []
        self.anchors: dict[str, _Anchor] = {}
        self.open_anchors: set[str] = set()
        self.aliases = 0
        self.nodes = 0
        self.document = YamlDocument(None)

    def read(self) -> YamlDocument:
        loader = self.loader
        loader.get_event()  # stream start
        if loader.check_event(yaml.StreamEndEvent):
            return self.document
        loader.get_event()  # document start
        result: list[object] = []
        while not loader.check_event(yaml.DocumentEndEvent):
            self._take(loader.get_event(), result)
        loader.get_event()
        if not loader.check_event(yaml.StreamEndEvent):
            event = loader.get_event()
            raise YamlRefused(
                ConfigIssue(
                    "",
                    "holds a second document (after ---): a configuration is one document",
                    *_at(event),
                )
            )
        self.document.data = result[0] if result else None
        return self.document

    def _take(self, event: yaml.Event, result: list[object]) -> None:
        if isinstance(event, yaml.ScalarEvent):
            self._value(event, *self._scalar(event), result)
        elif isinstance(event, yaml.AliasEvent):
            self._value(event, *self._alias(event), result)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self._open(event)
        else:  # the end of a mapping or a sequence
            done = self.stack.pop()
            if done.anchor is not None:
                self.open_anchors.discard(done.anchor)
            value: object = done.items if done.items is not None else self._merged(done)
            if done.anchor is not None:
                self.anchors[done.anchor] = _Anchor(value, done.size, done.height)
            self._value(event, value, done.size, done.height, result, opened=True)

    def _open(self, event: yaml.MappingStartEvent | yaml.SequenceStartEvent) -> None:
        if len(self.stack) >= self.limits.max_depth:
            raise self._refuse(
                event, f"nests deeper than {self.limits.max_depth} levels: flatten it"
            )
        is_map = isinstance(event, yaml.MappingStartEvent)
        expected = _MAP if is_map else _SEQ
        if event.tag not in (None, "!", expected):
            raise self._refuse(event, f"has the tag {one_line(event.tag, 60)}: leave tags out")
        path = self._child_path(event)
        self._count(event, 1)
        opened = _Open(path, event.anchor, _at(event)[0])
        if is_map:
            opened.mapping = {}
        else:
            opened.items = []
        if event.anchor is not None:
            self.open_anchors.add(event.anchor)
        self.stack.append(opened)

    def _scalar(self, event: yaml.ScalarEvent) -> tuple[object, int, int]:
        value = event.value
        if len(value) > self.limits.max_scalar_bytes:
            raise self._refuse(
                event,
                f"a value of {len(value.encode('utf-8')):,} bytes, at most "
                f"{self.limits.max_scalar_bytes:,} allowed: shorten it",
            )
        self._count(event, 1)
        tag = event.tag
        if tag is None or tag == "!":
            tag = (
                _STR if tag == "!" else self.loader.resolve(yaml.ScalarNode, value, event.implicit)
            )
        if tag == _STR:
            data: object = value
        elif tag == _MERGE:
            data = _MERGE_KEY
        else:
            marks: Any = (event.start_mark, event.end_mark)  # libyaml's marks, typed apart
            node = yaml.ScalarNode(tag, value, marks[0], marks[1], style=event.style)
            try:
                data = self.loader.construct_object(node, deep=True)
            except (ValueError, TypeError, OverflowError):  # e.g. `!!int abc`
                raise self._refuse(
                    event, f"{one_line(repr(value), 40)} is not a {tag.rpartition(':')[2]}"
                ) from None
        if event.anchor is not None:
            self.anchors[event.anchor] = _Anchor(data, 1, 0)
        return data, 1, 0

    def _alias(self, event: yaml.AliasEvent) -> tuple[object, int, int]:
        name = str(event.anchor)
        if name in self.open_anchors:
            raise self._refuse(
                event, f"the alias *{one_line(name, 60)} refers to itself: write the value out"
            )
        anchor = self.anchors.get(name)
        if anchor is None:
            raise self._refuse(event, f"the alias *{one_line(name, 60)} has no anchor before it")
        self.aliases += 1
        if self.aliases > self.limits.max_aliases:
            raise self._refuse(
                event, f"more than {self.limits.max_aliases:,} aliases: write the values out"
            )
        if len(self.stack) + anchor.depth > self.limits.max_depth:
            raise self._refuse(
                event, f"nests deeper than {self.limits.max_depth} levels: flatten it"
            )
        self._count(event, anchor.size)
        return anchor.value, anchor.size, anchor.depth

    def _count(self, event: yaml.Event, size: int) -> None:
        self.nodes += size
        if self.nodes > self.limits.max_nodes:
            raise self._refuse(
                event,
                f"its aliases expand it past {self.limits.max_nodes:,} values:"
                " write the values out, or use fewer aliases",
            )

    def _value(
        self,
        event: yaml.Event,
        value: object,
        size: int,
        height: int,
        result: list[object],
        opened: bool = False,
    ) -> None:
        if not self.stack:
            result.append(value)
            return
        parent = self.stack[-1]
        parent.size += size
        parent.height = max(parent.height, height + 1)
        if parent.items is not None:
            if not opened:
                self._note(f"{parent.path}.{len(parent.items)}".lstrip("."), event)
            parent.items.append(value)
            return
        assert parent.mapping is not None
        if not parent.has_key:
            if opened:
                raise self._refuse(event, "a key must be a word, not a list or a mapping")
            parent.key, parent.key_name, parent.has_key = value, _key_name(event, value), True
            if value is not _MERGE_KEY:
                self._key(parent, event)
            return
        parent.has_key = False
        if parent.key is _MERGE_KEY:
            parent.merges.extend(value if isinstance(value, list) else [value])
            return
        parent.mapping[parent.key] = value

    def _key(self, parent: _Open, event: yaml.Event) -> None:
        name = parent.key_name
        path = f"{parent.path}.{name}" if parent.path else name
        line, column = _at(event)
        if name in parent.seen:
            self.document.duplicates.append(
                ConfigIssue(
                    path,
                    f"is defined twice (again on line {line})",
                    line,
                    column,
                )
            )
        parent.seen.add(name)
        self._note(path, event)

    def _note(self, path: str, event: yaml.Event) -> None:
        self.document.positions[path] = _at(event)

    def _child_path(self, event: yaml.Event) -> str:
        """The key path of the mapping or sequence being opened, noting where a list item
        starts (a mapping's value was noted at its key)."""
        if not self.stack:
            return ""
        parent = self.stack[-1]
        if parent.items is not None:
            path = f"{parent.path}.{len(parent.items)}".lstrip(".")
            self._note(path, event)
            return path
        return f"{parent.path}.{parent.key_name}" if parent.path else parent.key_name

    def _merged(self, done: _Open) -> dict[object, object]:
        assert done.mapping is not None
        if not done.merges:
            return done.mapping
        merged: dict[object, object] = {}
        for source in done.merges:
            if not isinstance(source, dict):
                raise YamlRefused(
                    ConfigIssue(done.path, "<< must name a mapping (or a list of them)", done.line)
                )
            for key, value in source.items():
                merged.setdefault(key, value)
        merged.update(done.mapping)
        return merged

    def _refuse(self, event: yaml.Event, problem: str) -> YamlRefused:
        path = ""
        if self.stack:
            parent = self.stack[-1]
            path = parent.path
            if parent.mapping is not None and parent.has_key:
                path = f"{path}.{parent.key_name}" if path else parent.key_name
        return YamlRefused(ConfigIssue(path, problem, *_at(event)))


def _at(event: yaml.Event) -> Position:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)


def _key_name(event: yaml.Event, value: object) -> str:
    """A key as written (`01` stays `01`), or the value an alias gave it."""
    return str(event.value) if isinstance(event, yaml.ScalarEvent) else str(value)
