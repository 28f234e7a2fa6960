"""pydantic's validation errors, said as ``file:line:col: message`` (SPEC §3, STYLE point 6).

pydantic reports each error at a ``loc``: the keys and indices leading to the
bad value, plus the odd tag of its own (a union member, ``[key]``). The
location map of :class:`~monitor.config.source.Document` uses the same paths,
so each error lands on the line and column the user wrote the value at — or,
for an unknown key, the key itself, with the closest valid key suggested.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from monitor.config.expand import PathKey
from monitor.config.schema import Config
from monitor.config.source import Document, dotted, has
from monitor.config.units import describe
from monitor.errors import ConfigError

# Error types whose pydantic message is better put another way for YAML users.
_EXPECTED = {
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected text",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "dict_type": "expected a mapping (key: value lines)",
    "model_type": "expected a mapping (key: value lines)",
    "model_attributes_type": "expected a mapping (key: value lines)",
    "time_type": "expected a time of day, HH:MM",
    "time_parsing": "expected a time of day, HH:MM",
    "invalid_key": "keys must be text",
}


def schema_errors(exc: ValidationError, doc: Document) -> list[ConfigError]:
    """One :class:`ConfigError` per pydantic error, placed in the file.

    Errors inside a value whose ``${VAR}`` expansion failed are dropped: that
    failure was reported already, and the value is not what the user meant.
    """
    errors = []
    for error in exc.errors(include_url=False):
        path = data_path(doc.data, tuple(error["loc"]))
        if doc.is_unusable(path) or _items_failed(error):
            continue
        errors.append(_translate(error, path, doc))
    return errors


def _items_failed(error: ErrorDetails) -> bool:
    """A "too short" error that only repeats that the list's items were invalid.

    pydantic counts the items that validated: a list of two bad feeds is
    reported as each bad feed, and again as "at least 1 item, not 0".
    """
    given = error.get("input")
    minimum = error.get("ctx", {}).get("min_length", 0)
    return error["type"] == "too_short" and isinstance(given, list) and len(given) >= minimum


def data_path(data: Any, loc: tuple[int | str, ...]) -> PathKey:
    """The path into ``data`` that pydantic's ``loc`` points at, without pydantic's own tags."""
    path: list[Any] = []
    node = data
    for index, key in enumerate(loc):
        if key == "[key]":
            break  # the error is about the key at the path so far
        if has(node, key):
            node = node[key]
        elif index == len(loc) - 1 and isinstance(node, dict):
            pass  # a key that is missing (or a field of a before-validated shape)
        else:
            continue  # a union member's tag, or a shape our before-validators changed
        path.append(key)
    return tuple(path)


def _translate(error: ErrorDetails, path: PathKey, doc: Document) -> ConfigError:
    kind = error["type"]
    subject = dotted(path)
    if kind == "extra_forbidden":
        parent, key = path[:-1], path[-1]
        where = f"{dotted(parent)}: " if parent else ""
        hint = did_you_mean(str(key), field_names(parent))
        return ConfigError(f"{where}unknown key {str(key)!r}{hint}", doc.locate_key(path))
    if kind == "missing":
        parent, key = path[:-1], path[-1]
        where = f"{dotted(parent)}: " if parent else ""
        return ConfigError(f"{where}missing required key {str(key)!r}", doc.locate_key(parent))
    if kind == "invalid_key" or error["loc"][-1:] == ("[key]",):
        return ConfigError(f"{subject}: keys must be text", doc.locate_key(path))
    value = error.get("input")
    # A null value has no text of its own: ruamel places it after the key.
    location = doc.locate_key(path) if value is None else doc.locate(path)
    if kind == "invalid":
        return ConfigError(
            f"{subject}: {error.get('ctx', {}).get('reason', error['msg'])}", location
        )
    if value is None and kind.endswith("_type"):
        return ConfigError(f"{subject}: no value given (null)", location)
    if kind in _EXPECTED:
        return ConfigError(f"{subject}: {_EXPECTED[kind]}, got {describe(value)}", location)
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return ConfigError(
            f"{subject}: expected one of {expected}, got {describe(value)}", location
        )
    if kind == "too_short" and error.get("ctx", {}).get("min_length") == 1:
        return ConfigError(f"{subject}: must not be empty", location)
    message = error["msg"].replace("Input should be", "must be")
    message = message.replace("Value error, ", "")
    return ConfigError(f"{subject}: {message}", location)


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def field_names(path: PathKey) -> list[str]:
    """The keys valid in the mapping at ``path``, read from the schema's annotations."""
    annotation: Any = Config
    for key in path:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(key))
            if field is None:
                return []
            annotation = field.annotation
        elif get_origin(annotation) in (list, tuple):
            annotation = get_args(annotation)[0]
        elif get_origin(annotation) is dict:
            annotation = get_args(annotation)[1]
        else:
            return []
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return list(annotation.model_fields)
    return []


def _unwrap(annotation: Any) -> Any:
    """The type inside ``Annotated[...]`` and ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation
