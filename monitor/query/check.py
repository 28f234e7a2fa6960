"""Checks a parsed query must pass, and ``@topic`` expansion (SPEC §3 ``topics:``, §4).

A rule that parses may still be unable to work: it might only exclude words
(and so alert on every other entry), or ask for words near each other in two
different fields (and so never match). Both are refused here with the column
to fix, so that an invalid rule never silently matches nothing, nor everything.

Topics are expanded in place (as :class:`~monitor.query.nodes.Topic` nodes
that remember where the reference was written), following references to
other topics; a reference to an unknown topic, or a cycle, is a
:class:`~monitor.errors.TopicError`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from monitor.errors import QuerySyntaxError, TopicError
from monitor.query.nodes import (
    ALL_FIELDS,
    FIELDS,
    And,
    Compare,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Prefix,
    Query,
    Scope,
    Topic,
    TopicRef,
    Word,
    is_positive,
)

_ONLY_EXCLUDES = (
    "only excludes words (NOT / -), so it would match every entry without them; "
    "add a word to look for"
)


class _Checker:
    def __init__(self, query: Query) -> None:
        self.query = query

    def error(self, message: str, column: int, anchor: Topic | None) -> QuerySyntaxError:
        if anchor is not None:
            # The problem lies inside a topic's text: point at the reference the user wrote.
            return QuerySyntaxError(
                f"{message} (inside @{anchor.name})", self.query.text, anchor.column
            )
        return QuerySyntaxError(message, self.query.text, column)

    def positive(self, node: Node, anchor: Topic | None, what: str = "the query") -> None:
        """Explain, at the right column, why ``node`` could match without any hit."""
        if is_positive(node):
            return
        if isinstance(node, Topic):
            self.positive(node.child, anchor or node, what)
        elif isinstance(node, Scope):
            self.positive(node.child, anchor, what)
        elif isinstance(node, Or):
            branch = next(c for c in node.children if not is_positive(c))
            self.positive(branch, anchor, "this OR branch")
        raise self.error(f"{what} {_ONLY_EXCLUDES}", node.column, anchor)

    def structure(self, node: Node, fields: frozenset[str], anchor: Topic | None) -> None:
        """Scopes that exclude each other, and NEAR sides that can never meet."""
        if isinstance(node, Scope):
            inner = fields & FIELDS[node.field]
            if not inner:
                raise self.error(
                    f"{node.field}:(...) inside {_scope_name(fields)}:(...) can never match",
                    node.column,
                    anchor,
                )
            self.structure(node.child, inner, anchor)
        elif isinstance(node, Topic):
            self.structure(node.child, fields, anchor or node)
        elif isinstance(node, And | Or):
            for child in node.children:
                self.structure(child, fields, anchor)
        elif isinstance(node, Not):
            self.structure(node.child, fields, anchor)
        elif isinstance(node, Near):
            self.structure(node.left, fields, anchor)
            self.structure(node.right, fields, anchor)
            left = hit_fields(node.left, fields)
            right = hit_fields(node.right, fields)
            for side, found in (("left", left), ("right", right)):
                if not found:
                    raise self.error(
                        f"NEAR needs a word to look for on its {side}; that side only "
                        "excludes words. To exclude a pair, write NOT (a NEAR/5 b)",
                        node.column,
                        anchor,
                    )
            if not left & right:
                raise self.error(
                    "NEAR joins words that can never be in the same field "
                    f"({_scope_name(left)} and {_scope_name(right)})",
                    node.column,
                    anchor,
                )


def _scope_name(fields: frozenset[str]) -> str:
    """How the user wrote a set of fields: by the scope that selects them."""
    return next((name for name, covered in FIELDS.items() if fields <= covered), "any field")


def hit_fields(node: Node, fields: frozenset[str] = ALL_FIELDS) -> frozenset[str]:
    """The fields in which ``node`` can produce hits (none: it only excludes)."""
    if isinstance(node, Word | Prefix | Phrase | Compare | TopicRef):
        return fields
    if isinstance(node, Not):
        return frozenset()
    if isinstance(node, Scope):
        return hit_fields(node.child, fields & FIELDS[node.field])
    if isinstance(node, Topic):
        return hit_fields(node.child, fields)
    if isinstance(node, Near):
        return hit_fields(node.left, fields) & hit_fields(node.right, fields)
    found: frozenset[str] = frozenset()
    for child in node.children:
        found |= hit_fields(child, fields)
    return found


def validate(query: Query, *, positive: bool = True) -> None:
    """Raise :class:`QuerySyntaxError` if the query cannot work as a rule.

    ``positive=False`` skips the "looks for at least one word" check, for
    topics: a topic of exclusions (``-sport -celebrity``) is a fine building block.
    """
    checker = _Checker(query)
    checker.structure(query.root, ALL_FIELDS, None)
    if positive:
        checker.positive(query.root, None)


class TopicCycleError(TopicError):
    """Topics that refer to each other in a loop; ``cycle`` names them in order."""

    def __init__(self, cycle: tuple[str, ...]) -> None:
        self.cycle = cycle
        chain = " -> ".join(f"@{n}" for n in (*cycle, cycle[0]))
        super().__init__(f"topics refer to each other in a cycle: {chain}")


def expand(
    node: Node,
    topics: Mapping[str, Query],
    *,
    broken: frozenset[str] = frozenset(),
    path: tuple[str, ...] = (),
    done: dict[str, Node] | None = None,
) -> Node:
    """``node`` with every ``@topic`` replaced by the topic's (expanded) tree.

    ``broken`` names topics whose own text has an error (reported on its own).
    ``done`` memoises expanded topics across calls; ``path`` is the chain of
    topics being expanded, to report cycles.
    """
    done = {} if done is None else done

    def again(child: Node) -> Node:
        return expand(child, topics, broken=broken, path=path, done=done)

    if isinstance(node, TopicRef):
        name = node.name
        if name in path:
            raise TopicCycleError(path[path.index(name) :])
        if name in broken:
            raise TopicError(f"@{name} at column {node.column} is itself invalid (see its error)")
        if name not in topics:
            near = difflib.get_close_matches(name, [*topics, *broken], n=1)
            hint = f"; did you mean @{near[0]}?" if near else ""
            raise TopicError(f"unknown topic @{name} at column {node.column}{hint}")
        if name not in done:
            done[name] = expand(
                topics[name].root, topics, broken=broken, path=(*path, name), done=done
            )
        return Topic(name, done[name], node.column)
    if isinstance(node, And):
        return And(tuple(again(c) for c in node.children), node.column)
    if isinstance(node, Or):
        return Or(tuple(again(c) for c in node.children), node.column)
    if isinstance(node, Not):
        return Not(again(node.child), node.column)
    if isinstance(node, Scope):
        return Scope(node.field, again(node.child), node.column)
    if isinstance(node, Near):
        return Near(again(node.left), again(node.right), node.distance, node.column)
    return node
