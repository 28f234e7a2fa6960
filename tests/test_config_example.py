"""config/example.yaml shows every option the schema has, and docs/configuration.md names them."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from ruamel.yaml import YAML

from monitor.config.schema import Config

ROOT = Path(__file__).resolve().parent.parent
COMMENTED_OUT = {"poll.user_agent"}


def _models(annotation: Any) -> list[tuple[str, type[BaseModel]]]:
    """The models inside a field's type, each with how it is reached ("", "[]" or "{}")."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [("", annotation)]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return _models(args[0])
    if origin in (typing.Union, types.UnionType):
        return [m for arg in args for m in _models(arg)]
    if origin in (tuple, list):
        return [("[]" + way, m) for way, m in _models(args[0])]
    if origin is dict:
        return [("{}" + way, m) for way, m in _models(args[1])]
    return []


def schema_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every key path the schema accepts: "poll.timeout", "feeds[].url", "targets{}.urls"."""
    paths = set()
    for name, field in model.model_fields.items():
        path = f"{prefix}{name}"
        paths.add(path)
        for way, inner in _models(field.annotation):
            paths |= schema_paths(inner, f"{path}{way}.")
    return paths


def document_paths(node: Any, prefix: str = "") -> set[str]:
    """Every key path a YAML document uses, in the same notation."""
    paths: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}{key}"
            paths.add(path)
            paths |= document_paths(value, f"{path}.")
    elif isinstance(node, list):
        for item in node:
            paths |= document_paths(item, prefix.removesuffix(".") + "[].")
    return paths


def test_example_configuration_shows_every_option() -> None:
    """Each key the schema accepts appears in config/example.yaml (new options get an example)."""
    text = (ROOT / "config" / "example.yaml").read_text()
    used = document_paths(YAML(typ="safe").load(text))
    # Shown commented out, because setting it replaces a better default (the version).
    for path in COMMENTED_OUT:
        assert f"# {path.rsplit('.', 1)[-1]}: " in text, path
        used.add(path)
    # A target is a URL string or a mapping; its options are shown on the mapping targets.
    used |= {path.replace("targets.desk-slack.", "targets{}.") for path in used}
    used |= {path.replace("topics.ukraine-war", "topics") for path in used}
    missing = sorted(schema_paths(Config) - used)
    assert missing == []


def test_reference_documents_every_option() -> None:
    """Each option's name appears as `key` in docs/configuration.md."""
    reference = (ROOT / "docs" / "configuration.md").read_text()
    names = {path.rsplit(".", 1)[-1] for path in schema_paths(Config)}
    assert sorted(n for n in names if f"`{n}`" not in reference) == []
