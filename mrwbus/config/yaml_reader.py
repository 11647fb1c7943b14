"""YAML text to plain data, in one walk that also finds keys given twice.

A configuration is read once into nodes (libyaml when present); the walk turns them into data
and notes every key a mapping gives twice, which plain YAML silently overwrites with the last.
PyYAML's own constructor did the same in two walks at a fraction of the speed (a large
configuration is 10^5 nodes); it still reads what this walk leaves to it (merge keys, recursive
anchors, and every scalar that is not a string).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from mrwbus.errors import ConfigIssue


def yaml_data(text: str) -> tuple[object, list[ConfigIssue]]:
    """The document as plain data (None when empty), and the keys given twice. Raises
    `yaml.YAMLError` for text that is not YAML."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        duplicates: list[ConfigIssue] = []
        data = _data_of(loader, root, duplicates) if root is not None else None
    finally:
        loader.dispose()
    return data, duplicates


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


def _data_of(loader: yaml.SafeLoader, root: yaml.Node, duplicates: list[ConfigIssue]) -> object:
    """Strings, mappings and sequences straight off the nodes; every other scalar is PyYAML's
    own (`construct_object`); PyYAML's constructor for the whole document when the walk meets
    what it leaves to it."""
    try:
        return _walk(loader, root, "", duplicates)
    except (_NeedsConstructor, RecursionError):
        duplicates.clear()
        duplicates.extend(_duplicate_keys(root))
        return loader.construct_document(root)


class _NeedsConstructor(Exception):
    """A node this walk leaves to PyYAML's constructor (a merge key)."""


def _walk(
    loader: yaml.SafeLoader, node: yaml.Node, path: str, duplicates: list[ConfigIssue]
) -> object:
    tag = node.tag
    if tag == _STR:
        return node.value
    if tag == _MAP:
        result: dict[object, object] = {}
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                raise _NeedsConstructor
            name = str(key_node.value)
            child = f"{path}.{name}" if path else name
            if name in seen:
                duplicates.append(_twice(child, key_node))
            seen.add(name)
            key = key_node.value if key_node.tag == _STR else loader.construct_object(key_node)
            result[key] = _walk(loader, value_node, child, duplicates)
        return result
    if tag == _SEQ:
        return [
            _walk(loader, item, f"{path}.{index}" if path else str(index), duplicates)
            for index, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


def _twice(path: str, key_node: yaml.Node) -> ConfigIssue:
    return ConfigIssue(path, f"is defined twice (again on line {key_node.start_mark.line + 1})")


def _duplicate_keys(node: yaml.Node, path: str = "") -> Iterator[ConfigIssue]:
    """Keys given twice in one mapping, which plain YAML silently overwrites."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            if key in seen:
                yield _twice(child, key_node)
            seen.add(key)
            yield from _duplicate_keys(value_node, child)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _duplicate_keys(item, f"{path}.{index}" if path else str(index))
