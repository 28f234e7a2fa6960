"""The parsed form of a rule query: a small tree of frozen values.

Leaves say what to look for (:class:`Word`, :class:`Prefix`, :class:`Phrase`,
:class:`Compare`); inner nodes combine them. Every node keeps the 1-based
column where it starts in its query text, so later checks (after topics are
expanded) can still point at the right place. ``text`` on a leaf is the term
as the user wrote it: it is what explanations show (``Hit.term``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

Op = Literal[">=", ">", "<=", "<"]
FieldName = Literal["title", "summary"]
# Which Entry fields a scope covers. ``summary:`` means the body of the entry:
# feeds put it in <description>, <content:encoded>, Atom summary or content
# with no rule, so a scope over one of them only would miss stories.
FIELDS: dict[str, frozenset[str]] = {
    "title": frozenset({"title"}),
    "summary": frozenset({"summary", "content"}),
}
ALL_FIELDS = frozenset({"title", "summary", "content"})


@dataclass(frozen=True, slots=True)
class Word:
    """A word and its English inflections: tokens whose key (stem) equals ``key``."""

    text: str
    key: str
    column: int


@dataclass(frozen=True, slots=True)
class Prefix:
    """``word*``: tokens whose folded form starts with ``prefix``."""

    text: str
    prefix: str
    column: int


@dataclass(frozen=True, slots=True)
class Phrase:
    """``"a b c"``: consecutive tokens matching each part in order, in one field."""

    text: str
    parts: tuple[Word | Prefix, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Compare:
    """``>=N`` and friends: a number in the text whose value compares true."""

    text: str
    op: Op
    value: float
    column: int

    def test(self, number: float) -> bool:
        """Whether ``number`` satisfies this comparison."""
        if self.op == ">=":
            return number >= self.value
        if self.op == ">":
            return number > self.value
        if self.op == "<=":
            return number <= self.value
        return number < self.value


@dataclass(frozen=True, slots=True)
class And:
    """Every child matches."""

    children: tuple[Node, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Or:
    """At least one child matches."""

    children: tuple[Node, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Not:
    """The child does not match (``NOT x`` and ``-x``)."""

    child: Node
    column: int


@dataclass(frozen=True, slots=True)
class Near:
    """Both sides match, and some hit of one is within ``distance`` words of a hit of the other."""

    left: Node
    right: Node
    distance: int
    column: int


@dataclass(frozen=True, slots=True)
class Scope:
    """``title:(...)`` / ``summary:(...)``: the child, looked for only in those fields."""

    field: FieldName
    child: Node
    column: int


@dataclass(frozen=True, slots=True)
class TopicRef:
    """``@name``: the query of a named topic, not yet looked up."""

    name: str
    column: int


@dataclass(frozen=True, slots=True)
class Topic:
    """A resolved ``@name``: the topic's own tree, in place of its reference."""

    name: str
    child: Node
    column: int  # of the reference, in the text that holds it


Leaf = Word | Prefix | Phrase | Compare
Node = Word | Prefix | Phrase | Compare | And | Or | Not | Near | Scope | TopicRef | Topic


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query and the text it came from."""

    text: str
    root: Node
    topics: tuple[str, ...] = ()  # the names of the @topics it refers to, unresolved


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-trees of a node (none for leaves and unresolved topics)."""
    if isinstance(node, And | Or):
        return node.children
    if isinstance(node, Not | Scope | Topic):
        return (node.child,)
    if isinstance(node, Near):
        return (node.left, node.right)
    return ()


def leaves(node: Node, *, positive_only: bool = False) -> Iterator[Leaf]:
    """Every leaf under ``node`` in query order (skipping those under NOT if asked)."""
    if isinstance(node, Word | Prefix | Phrase | Compare):
        yield node
        return
    if positive_only and isinstance(node, Not):
        return
    for child in children(node):
        yield from leaves(child, positive_only=positive_only)


def is_positive(node: Node) -> bool:
    """Whether a match of ``node`` always includes a hit of some word in the text.

    A query that can match with no hit would alert on the *absence* of words
    (``NOT sport``, ``a OR -b``): every other entry of every feed. Such a rule
    is refused rather than left to flood. Unresolved topics count as positive;
    they are checked again once expanded.
    """
    if isinstance(node, Word | Prefix | Phrase | Compare | Near | TopicRef):
        return True
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(is_positive(c) for c in node.children)
    if isinstance(node, Or):
        return all(is_positive(c) for c in node.children)
    return is_positive(node.child)
