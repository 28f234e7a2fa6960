"""The configuration file as read: plain data, where each value stood, and its secrets.

ruamel.yaml's round-trip loader keeps the line and column of every key and
value; :func:`read_document` walks that tree once, expanding ``${VAR}`` in
every string, and hands back plain Python data (for pydantic) with a map from
each value's path — a tuple of keys and indices, like pydantic's error
``loc`` — to its :class:`~monitor.errors.Location`.

Positions are only needed to report mistakes, and the round-trip loader is
pure Python: a 2,000-feed file takes it 0.4 s, a large part of an unchanged
poll cycle's start. :func:`read_plain` reads the same YAML 1.2 through ruamel's C parser
(about 8x faster) without positions; the loader falls back to
:func:`read_document` whenever anything is wrong, so every message still has
its ``file:line:col``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
    SingleQuotedScalarString,
)

from monitor.config.expand import PathKey, expand, is_secret, malformed_message, missing_message
from monitor.config.scalars import offset_position
from monitor.errors import ConfigError, Location


@dataclass(slots=True)
class Document:
    """A parsed configuration file, before validation."""

    file: str  # as the user named it: error locations print it
    text: str
    data: Any  # plain dicts, lists and scalars, with ${VAR} expanded
    values: dict[PathKey, Location] = field(default_factory=dict)
    keys: dict[PathKey, Location] = field(default_factory=dict)
    styles: dict[PathKey, str] = field(default_factory=dict)  # string scalars: plain ' " | >
    raw: dict[PathKey, str] = field(default_factory=dict)  # string scalars before expansion
    errors: list[ConfigError] = field(default_factory=list)
    unusable: set[PathKey] = field(default_factory=set)  # values whose expansion failed
    secrets: set[str] = field(default_factory=set)

    def locate(self, path: PathKey) -> Location:
        """Where the value at ``path`` (or its nearest enclosing value) starts."""
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return Location(self.file, 1, 1)

    def locate_key(self, path: PathKey) -> Location:
        """Where the key naming the value at ``path`` stands (its value, for list items)."""
        return self.keys.get(path) or self.locate(path)

    def locate_offset(self, path: PathKey, offset: int) -> Location:
        """The position of character ``offset`` (0-based) of the string at ``path``.

        Exact for single-line plain and quoted scalars and for literal blocks
        that went through no ``${VAR}`` substitution; else the scalar's start.
        """
        start = self.locate(path)
        style, raw = self.styles.get(path), self.raw.get(path)
        value = self.value_at(path)
        if style is None or raw is None or raw != value or path not in self.values:
            return start
        lines = self.text.splitlines()
        found = offset_position(lines, start.line - 1, start.column - 1, style, raw, offset)
        return start if found is None else Location(self.file, found[0] + 1, found[1] + 1)

    def value_at(self, path: PathKey) -> Any:
        """The expanded value at ``path``, or None when there is none."""
        node = self.data
        for key in path:
            if not has(node, key):
                return None
            node = node[key]
        return node

    def is_unusable(self, path: PathKey) -> bool:
        """Whether ``path`` lies in a value whose ``${VAR}`` expansion already failed."""
        return any(path[: len(bad)] == bad for bad in self.unusable)


def read_document(path: str | os.PathLike[str], env: Mapping[str, str]) -> Document:
    """Read, parse and expand one configuration file.

    File-level problems (missing, unreadable, not UTF-8, YAML syntax, empty,
    not a mapping) raise :class:`ConfigError`; problems with single values
    (unset variables) are collected in ``Document.errors``.
    """
    file = os.fspath(path)
    text = _read_text(file)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True  # keeps the scalar style, to place query columns
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        raise _syntax_error(file, exc) from None
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position)
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1)
        raise ConfigError(
            f"character not allowed in YAML: {exc.reason}", Location(file, line + 1, column + 1)
        ) from None
    except YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", Location(file, 1, 1)) from None
    if tree is None:
        raise ConfigError("the configuration file is empty", Location(file, 1, 1))
    if not isinstance(tree, CommentedMap):
        kind = "a list" if isinstance(tree, CommentedSeq) else f"the value {str(tree)[:40]!r}"
        raise ConfigError(
            f"the configuration must be a mapping of settings (state:, feeds:, rules: ...), "
            f"not {kind}",
            Location(file, 1, 1),
        )
    doc = Document(file=file, text=text, data=None)
    doc.values[()] = Location(file, tree.lc.line + 1, tree.lc.col + 1)
    doc.data = _walk(doc, tree, (), env)
    return doc


def read_positions(file: str, text: str) -> dict[PathKey, Location]:
    """Where each value of an already validated file's ``text`` stands."""
    yaml = YAML(typ="rt")
    tree = yaml.load(text)
    doc = Document(file=file, text=text, data=None)
    if isinstance(tree, CommentedMap):
        doc.values[()] = Location(file, tree.lc.line + 1, tree.lc.col + 1)
        _walk(doc, tree, (), {})
    return doc.values


def read_plain(path: str | os.PathLike[str], env: Mapping[str, str]) -> Document | None:
    """The fast reading: the same data and secrets as :func:`read_document`, no positions.

    None when the file holds anything :func:`read_document` reports on (a
    syntax error, a value that is not plain data, a failed ``${VAR}``
    expansion): the caller then reads it again, with positions.
    """
    file = os.fspath(path)
    text = _read_text(file)
    yaml = YAML(typ="safe", pure=False)  # the C parser when ruamel.yaml.clib is installed
    try:
        tree = yaml.load(text)
    except YAMLError:
        return None
    if not isinstance(tree, dict):
        return None
    doc = Document(file=file, text=text, data=None)
    try:
        doc.data = _walk_plain(doc, tree, (), env)
    except _NeedsPositions:
        return None
    return doc


class _NeedsPositions(Exception):
    """Raised inside :func:`_walk_plain` to abandon the fast reading."""


def _walk_plain(doc: Document, node: Any, path: PathKey, env: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        result: dict[Any, Any] = {}
        for key, value in node.items():
            # Other keys take read_document's own conversions and messages.
            if not isinstance(key, str):
                raise _NeedsPositions
            result[key] = _walk_plain(doc, value, (*path, key), env)
        return result
    if isinstance(node, list):
        return [_walk_plain(doc, value, (*path, i), env) for i, value in enumerate(node)]
    if isinstance(node, str):
        expanded = expand(node, env)
        if expanded.missing or expanded.malformed is not None:
            raise _NeedsPositions
        for name, value in expanded.variables:
            if is_secret(path, name, value):
                doc.secrets.add(value)
        return expanded.value
    if isinstance(node, bool | int | float) or node is None:
        return node
    raise _NeedsPositions  # timestamps, tagged scalars


def _read_text(file: str) -> str:
    try:
        data = Path(file).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {file}") from None
    except IsADirectoryError:
        raise ConfigError(f"configuration path is a directory, not a file: {file}") from None
    except PermissionError:
        raise ConfigError(f"cannot read configuration file {file}: permission denied") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {file}: {exc.strerror}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start)
        column = len(data[data.rfind(b"\n", 0, exc.start) + 1 : exc.start].decode(errors="replace"))
        raise ConfigError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8",
            Location(file, line + 1, column + 1),
        ) from None


def _syntax_error(file: str, exc: MarkedYAMLError) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    location = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
    problem = str(exc.problem or exc.context or "not valid YAML")
    if problem.startswith("found duplicate key"):
        # ruamel quotes both values, which may be secrets written inline.
        key = problem.split('"')[1] if problem.count('"') >= 2 else "?"
        problem = f'duplicate key "{key}" (each key may appear once in a mapping)'
    elif exc.context:
        problem = f"{problem} ({exc.context})"
    return ConfigError(f"YAML syntax error: {problem}", location)


def has(node: Any, key: object) -> bool:
    """Whether ``node[key]`` exists in plain data (a dict key, or an index of a list)."""
    if isinstance(node, dict):
        return key in node
    return isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)


def _walk(doc: Document, node: Any, path: PathKey, env: Mapping[str, str]) -> Any:
    """Convert one ruamel node to plain data, recording locations as it goes."""
    if isinstance(node, CommentedMap):
        result: dict[Any, Any] = {}
        for key, value in node.items():
            child = (*path, _plain_key(key))
            # Keys merged in with "<<:" have no position of their own.
            if key in node.lc.data:
                line, col = node.lc.key(key)
                doc.keys[child] = Location(doc.file, line + 1, col + 1)
                line, col = node.lc.value(key)
                doc.values[child] = Location(doc.file, line + 1, col + 1)
            result[child[-1]] = _walk(doc, value, child, env)
        return result
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            child = (*path, index)
            if index in node.lc.data:
                line, col = node.lc.item(index)
                doc.values[child] = Location(doc.file, line + 1, col + 1)
            items.append(_walk(doc, value, child, env))
        return items
    if isinstance(node, str):
        return _string(doc, node, path, env)
    if isinstance(node, ScalarBoolean):
        return bool(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    # Timestamps, tagged scalars: pydantic reports them as the wrong type.
    return node


def _plain_key(key: Any) -> Any:
    if isinstance(key, str):
        return str(key)
    if isinstance(key, bool | int | float) or key is None:
        return key
    return str(key)  # a mapping used as a key; rejected later as an unknown key


def _string(doc: Document, node: str, path: PathKey, env: Mapping[str, str]) -> str:
    raw = str(node)
    doc.raw[path] = raw
    doc.styles[path] = _style(node)
    result = expand(raw, env)
    location = doc.locate(path)
    for name in result.missing:
        doc.errors.append(ConfigError(f"{dotted(path)}: {missing_message(name)}", location))
    if result.malformed is not None:
        doc.errors.append(
            ConfigError(f"{dotted(path)}: {malformed_message(result.malformed)}", location)
        )
    if result.missing or result.malformed is not None:
        doc.unusable.add(path)
    for name, value in result.variables:
        if is_secret(path, name, value):
            doc.secrets.add(value)
    return result.value


def _style(node: str) -> str:
    if isinstance(node, SingleQuotedScalarString):
        return "'"
    if isinstance(node, DoubleQuotedScalarString):
        return '"'
    if isinstance(node, LiteralScalarString):
        return "|"
    if isinstance(node, FoldedScalarString):
        return ">"
    return "plain"


def dotted(path: PathKey) -> str:
    """A path as users read it: ``rules[2].notify[0]``, ``targets.desk-slack``."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) and not isinstance(key, bool) else f".{key}"
    return text.lstrip(".") or "(top level)"
