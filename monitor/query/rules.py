"""From configured rule and topic texts to a :class:`Matcher`, or to every error at once."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

from monitor.errors import QueryError, QuerySyntaxError, TopicError
from monitor.query.check import TopicCycleError, expand, validate
from monitor.query.matcher import Matcher
from monitor.query.nodes import Node, Query
from monitor.query.parser import parse


def parse_query(text: str) -> Query:
    """Parse one query (SPEC §4) and check it can work as a rule.

    ``@topic`` references are left unresolved (see :func:`compile_rules`).
    Raises :class:`~monitor.errors.QuerySyntaxError` with a 1-based column.
    """
    query = _parsed(_text(text))
    validate(query, positive=True)
    return query


def _text(text: object) -> str:
    if not isinstance(text, str):
        raise QuerySyntaxError(f"a query must be text, not {type(text).__name__}", str(text), 1)
    return text


# A reload mostly sees the queries it saw before: parse and check each text once.
# (Queries are immutable; errors are not cached and are raised afresh.)
@lru_cache(maxsize=1 << 16)
def _parsed(text: str) -> Query:
    return parse(text)


@lru_cache(maxsize=1 << 16)
def _checked(query: Query) -> None:
    validate(query, positive=True)


def _prepare(
    rules: Mapping[str, str], topics: Mapping[str, str] | None
) -> tuple[list[str], list[Node], list[tuple[str, QueryError]]]:
    """Every rule parsed, expanded and checked; the errors, topics first, in config order."""
    errors: list[tuple[str, QueryError]] = []
    parsed: dict[str, Query] = {}
    broken: set[str] = set()
    for name, text in (topics or {}).items():
        try:
            query = _parsed(_text(text))
            validate(query, positive=False)
        except QuerySyntaxError as exc:
            errors.append((f"@{name}", exc.for_rule(f"@{name}")))
            broken.add(name)
        else:
            parsed[name] = query
    frozen_broken = frozenset(broken)
    done: dict[str, Node] = {}
    cycles: set[frozenset[str]] = set()
    for name, query in parsed.items():
        try:
            expanded = expand(query.root, parsed, broken=frozen_broken, path=(name,), done=done)
            # Scopes and NEAR sides may conflict across the topics it uses.
            validate(Query(query.text, expanded), positive=False)
        except TopicCycleError as exc:
            if frozenset(exc.cycle) not in cycles:
                cycles.add(frozenset(exc.cycle))
                errors.append((f"@{name}", TopicCycleError(exc.cycle)))
        except TopicError as exc:
            errors.append((f"@{name}", TopicError(f"topic {name!r}: {exc}")))
        except QuerySyntaxError as exc:
            errors.append((f"@{name}", exc.for_rule(f"@{name}")))
    names: list[str] = []
    roots: list[Node] = []
    for name, text in rules.items():
        try:
            query = _parsed(_text(text))
            if query.topics:
                query = Query(
                    query.text,
                    expand(query.root, parsed, broken=frozen_broken, done=done),
                    query.topics,
                )
                validate(query, positive=True)
            else:
                _checked(query)
            root = query.root
        except QuerySyntaxError as exc:
            errors.append((name, exc.for_rule(name)))
        except TopicError as exc:
            errors.append((name, TopicError(f"rule {name!r}: {exc}")))
        else:
            names.append(name)
            roots.append(root)
    return names, roots, errors


def check_rules(
    rules: Mapping[str, str], topics: Mapping[str, str] | None = None
) -> list[tuple[str, QueryError]]:
    """Every problem in rules and topics, as ``(rule name or "@topic", error)``, topics first.

    An empty list means :func:`compile_rules` will succeed. Configuration
    validation uses this to report all problems together (STYLE point 6).
    """
    return _prepare(rules, topics)[2]


def compile_rules(rules: Mapping[str, str], topics: Mapping[str, str] | None = None) -> Matcher:
    """Compile every rule (name -> query text, in order) into one :class:`Matcher`.

    Raises the first problem :func:`check_rules` would list: a
    :class:`~monitor.errors.QuerySyntaxError` naming its rule (``.rule``; a
    topic's name with its ``@``) and column, or a
    :class:`~monitor.errors.TopicError` naming the rule and topic.
    """
    names, roots, errors = _prepare(rules, topics)
    if errors:
        raise errors[0][1]
    return Matcher(names, roots)
