"""Checks that look at more than one value: names that must exist, names that must be unique.

They read the plain data of the :class:`~monitor.config.source.Document`
rather than validated models, so that they run — and their errors are reported
together with every schema error — even when another part of the file is
invalid. Each check skips values of the wrong shape: the schema reports those.

Rule queries are checked by the rule language itself (:mod:`monitor.query`,
imported lazily so the two packages can progress apart); templates by Jinja2's
sandbox; target URLs by Apprise.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any, cast

from monitor.config.expand import PathKey
from monitor.config.services import url_problem
from monitor.config.source import Document
from monitor.config.translate import did_you_mean
from monitor.errors import ConfigError, QueryError, QuerySyntaxError

CheckRules = Callable[[Mapping[str, str], Mapping[str, str]], list[tuple[str, QueryError]]]


def cross_errors(doc: Document) -> list[ConfigError]:
    """Every reference and uniqueness error in ``doc``."""
    data = doc.data if isinstance(doc.data, dict) else {}
    targets = data.get("targets")
    target_names = [str(name) for name in targets] if isinstance(targets, dict) else None
    feeds = _rows(data.get("feeds"), ("feeds",))
    rules = _rows(data.get("rules"), ("rules",))
    errors = [
        *_unique(doc, feeds, "url", "feed URL"),
        *_unique(doc, feeds, "name", "feed name"),
        *_unique(doc, rules, "name", "rule name"),
        *_target_urls(doc, targets),
        *_rule_references(doc, rules, feeds, target_names),
        *_templates(doc, rules),
        *_queries(doc, rules, data.get("topics")),
    ]
    if target_names is not None:
        for path, name in _strings(doc, ("health", "notify")):
            if name.strip() not in target_names:
                errors.append(_unknown_target(doc, path, "health.notify", name, target_names))
    return errors


def _rows(value: Any, path: PathKey) -> list[tuple[PathKey, dict[Any, Any]]]:
    """The mappings of a list section, with their paths."""
    if not isinstance(value, list):
        return []
    return [((*path, index), row) for index, row in enumerate(value) if isinstance(row, dict)]


def _text(value: Any) -> str | None:
    """A scalar as the schema will read it (numbers become text), else None."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _strings(doc: Document, path: PathKey) -> Iterator[tuple[PathKey, str]]:
    """The names in a one-or-list value (``notify: x`` or ``notify: [x, y]``), with paths."""
    value = doc.value_at(path)
    items = (
        [(path, value)]
        if not isinstance(value, list)
        else [((*path, index), item) for index, item in enumerate(value)]
    )
    for item_path, item in items:
        text = _text(item)
        if text and not doc.is_unusable(item_path):
            yield item_path, text


def _unique(
    doc: Document, rows: list[tuple[PathKey, dict[Any, Any]]], key: str, what: str
) -> Iterator[ConfigError]:
    first: dict[str, PathKey] = {}
    for path, row in rows:
        value = _text(row.get(key))
        if not value or doc.is_unusable((*path, key)):
            continue
        if value in first:
            line = doc.locate((*first[value], key)).line
            yield ConfigError(
                f"{what} {value!r} appears twice (first on line {line})",
                doc.locate((*path, key)),
            )
        else:
            first[value] = path


def _unknown_target(
    doc: Document, path: PathKey, subject: str, name: str, targets: list[str]
) -> ConfigError:
    hint = did_you_mean(name, targets) or f" (targets: {', '.join(targets) or 'none'})"
    return ConfigError(f"{subject}: unknown target {name!r}{hint}", doc.locate(path))


def _rule_references(
    doc: Document,
    rules: list[tuple[PathKey, dict[Any, Any]]],
    feeds: list[tuple[PathKey, dict[Any, Any]]],
    target_names: list[str] | None,
) -> Iterator[ConfigError]:
    feed_names = sorted({name for _, row in feeds if (name := _text(row.get("name")))})
    feed_tags = sorted({tag for path, _ in feeds for _, tag in _strings(doc, (*path, "tags"))})
    for path, rule in rules:
        subject = f"rule {_text(rule.get('name')) or dotted_index(path)!r}"
        if target_names is not None:
            for item_path, name in _strings(doc, (*path, "notify")):
                if name not in target_names:
                    yield _unknown_target(doc, item_path, subject, name, target_names)
        if not isinstance(rule.get("feeds"), dict) or not feeds:
            continue
        for key, known, what in (("names", feed_names, "feed name"), ("tags", feed_tags, "tag")):
            for item_path, name in _strings(doc, (*path, "feeds", key)):
                if name not in known:
                    hint = did_you_mean(name, known) or (
                        f" (known: {', '.join(known)})" if known else ""
                    )
                    yield ConfigError(
                        f"{subject}: feeds scope names no feed with {what} {name!r}{hint}",
                        doc.locate(item_path),
                    )


def dotted_index(path: PathKey) -> str:
    """``rules[2]`` for an unnamed rule."""
    return f"{path[0]}[{path[1]}]"


def _target_urls(doc: Document, targets: Any) -> Iterator[ConfigError]:
    if not isinstance(targets, dict):
        return
    for name, value in targets.items():
        path: PathKey = ("targets", name)
        if isinstance(value, dict):
            path = (*path, "urls")
        elif not isinstance(value, str | list):
            continue
        for url_path, url in _strings(doc, path):
            problem = url_problem(url)
            if problem is not None:
                yield ConfigError(f"target {str(name)!r}: {problem}", doc.locate(url_path))


def _templates(doc: Document, rules: list[tuple[PathKey, dict[Any, Any]]]) -> Iterator[ConfigError]:
    found = [
        (path, rule, template)
        for path, rule in rules
        if isinstance(template := rule.get("template"), str)
        and not doc.is_unusable((*path, "template"))
    ]
    if not found:
        return
    # Imported only now: most configurations have no template, and Jinja2 takes a
    # noticeable part of start-up to import.
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # Configured like the renderer's (monitor.render), so what passes here compiles there.
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    for path, rule, template in found:
        try:
            environment.from_string(template)
        except TemplateSyntaxError as exc:
            # Jinja2 counts lines from 1; point at the start of the bad one.
            offset = sum(len(line) + 1 for line in template.split("\n")[: max(exc.lineno - 1, 0)])
            yield ConfigError(
                f"rule {_text(rule.get('name')) or dotted_index(path)!r}: "
                f"template error: {exc.message}",
                doc.locate_offset((*path, "template"), min(offset, len(template))),
            )


def _check_rules() -> CheckRules | None:
    """The rule language's validator, or None while that package is not there."""
    try:
        module = importlib.import_module("monitor.query")
    except ImportError:
        return None
    return cast(CheckRules | None, getattr(module, "check_rules", None))


def _queries(
    doc: Document, rules: list[tuple[PathKey, dict[Any, Any]]], topics: Any
) -> Iterator[ConfigError]:
    check_rules = _check_rules()
    if check_rules is None:
        return
    paths: dict[str, PathKey] = {}
    queries: dict[str, str] = {}
    for path, rule in rules:
        name, query = _text(rule.get("name")), rule.get("query")
        if name and isinstance(query, str) and name not in queries:
            queries[name], paths[name] = query, (*path, "query")
    named_topics: dict[str, str] = {}
    if isinstance(topics, dict):
        for topic, query in topics.items():
            if isinstance(query, str):
                named_topics[str(topic)] = query
                paths[f"@{topic}"] = ("topics", topic)
    for name, error in check_rules(queries, named_topics):
        if name not in paths or doc.is_unusable(paths[name]):
            continue
        path = paths[name]
        subject = f"topic {name[1:]!r}" if name.startswith("@") else f"rule {name!r}"
        if isinstance(error, QuerySyntaxError):
            yield ConfigError(
                f"{subject}: {error.message} (column {error.column} of the query)",
                doc.locate_offset(path, max(error.column - 1, 0)),
            )
        else:
            # The rule language names the rule or topic itself, mostly.
            message = str(error).removeprefix(f"{subject}: ")
            yield ConfigError(f"{subject}: {message}", doc.locate(path))
