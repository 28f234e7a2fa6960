"""Exact evaluation of one compiled rule over the occurrences found in an entry.

The matcher (:mod:`monitor.query.matcher`) finds where every term of every
rule occurs; this module decides, for one rule whose terms occurred, whether
it matches and which occurrences explain the match. Semantics, shared with
the test-only reference evaluator and documented in the README ("Rule language"):

- A node evaluates to ``None`` (no match) or a list of hits ``(leaf, start,
  end)``: word positions, ``end`` inclusive (a phrase or "2.5 million" spans
  several words). NOT matches with no hits.
- AND keeps the hits of all its children; OR those of the branches that matched.
- ``a NEAR/n b``: both sides match, and a hit of one side lies within ``n``
  words of a hit of the other (positions differ by at most ``n``, counted
  between the nearest ends, either order). Only the hits in such pairs are kept.
- A scope evaluates its child over the words of its fields only.

Positions of different fields are far apart (more than the largest NEAR
distance), so neither a phrase nor NEAR reaches from one field into another.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Protocol

Hits = list[tuple[int, int, int]]  # (leaf id, first word position, last word position)
TITLE, SUMMARY, CONTENT = 1, 2, 4
ALL = TITLE | SUMMARY | CONTENT
FIELD_BITS = {"title": TITLE, "summary": SUMMARY | CONTENT}


class Occurrences(Protocol):
    """Where the terms of the matcher occur in one entry."""

    # term -> (first position, last position, field bit) of each occurrence, sorted.
    occ: dict[int, list[tuple[int, int, int]]]

    def starts(self, term: int) -> frozenset[int]:
        """The positions where a one-word term occurs, in any field."""
        ...


class Node:
    """A compiled query node."""

    __slots__ = ()

    def eval(self, doc: Occurrences, mask: int) -> Hits | None:
        """The hits that satisfy this node within the fields in ``mask``, or None."""
        raise NotImplementedError


class Term(Node):
    """A word, prefix or number comparison, found by the matcher as ``term``."""

    __slots__ = ("leaf", "term")

    def __init__(self, term: int, leaf: int) -> None:
        self.term = term
        self.leaf = leaf

    def eval(self, doc: Occurrences, mask: int) -> Hits | None:
        found = doc.occ.get(self.term)
        if not found:
            return None
        leaf = self.leaf
        if mask == ALL:
            return [(leaf, s, e) for s, e, _ in found]
        return [(leaf, s, e) for s, e, bit in found if bit & mask] or None


class Phrase(Node):
    """Consecutive one-word terms."""

    __slots__ = ("leaf", "terms")

    def __init__(self, terms: tuple[int, ...], leaf: int) -> None:
        self.terms = terms
        self.leaf = leaf

    def eval(self, doc: Occurrences, mask: int) -> Hits | None:
        rest = [doc.starts(t) for t in self.terms[1:]]
        last = len(self.terms) - 1
        hits = [
            (self.leaf, s, s + last)
            for s, _, bit in doc.occ.get(self.terms[0], ())
            if bit & mask and all(s + i in later for i, later in enumerate(rest, 1))
        ]
        return hits or None


class And(Node):
    """Every child matched: all their hits."""

    __slots__ = ("children",)

    def __init__(self, children: tuple[Node, ...]) -> None:
        self.children = children

    def eval(self, doc: Occurrences, mask: int) -> Hits | None:
        hits: Hits = []
        for child in self.children:
            found = child.eval(doc, mask)
            if found is None:
                return None
            hits += found
        return hits


class Or(Node):
    """Some child matched: the hits of every child that did."""

    __slots__ = ("children",)

    def __init__(self, children: tuple[Node, ...]) -> None:
        self.children = children

    def eval(self, doc: Occurrences, mask: int) -> Hits | None:
        hits: Hits | None = None
        for child in self.children:
            found = child.eval(doc, mask)
            if found is not None:
                hits = found if hits is None else hits + found
        return hits


class Not(Node):
    """The child did not match: no hits of its own."""

    __slots__ = ("child",)

    def __init__(self, child: Node) -> None:
        self.child = child

    def eval(self, doc: Occurrences, mask: int) -> Hits | None:
        return [] if self.child.eval(doc, mask) is None else None


class Scope(Node):
    """The child, over some fields only."""

    __slots__ = ("child", "mask")

    def __init__(self, child: Node, mask: int) -> None:
        self.child = child
        self.mask = mask

    def eval(self, doc: Occurrences, mask: int) -> Hits | None:
        return self.child.eval(doc, mask & self.mask)


class Near(Node):
    """Both sides matched with a pair of hits at most ``distance`` words apart."""

    __slots__ = ("distance", "left", "right")

    def __init__(self, left: Node, right: Node, distance: int) -> None:
        self.left = left
        self.right = right
        self.distance = distance

    def eval(self, doc: Occurrences, mask: int) -> Hits | None:
        left = self.left.eval(doc, mask)
        if not left:
            return None
        right = self.right.eval(doc, mask)
        if not right:
            return None
        return near_pairs(left, right, self.distance) or None


class NearTerms(Node):
    """:class:`Near` between two ORs of terms (or single terms), without walking a tree."""

    __slots__ = ("distance", "left", "right")

    def __init__(
        self, left: tuple[tuple[int, int], ...], right: tuple[tuple[int, int], ...], distance: int
    ) -> None:
        self.left = left  # (term, leaf) pairs
        self.right = right
        self.distance = distance

    def eval(self, doc: Occurrences, mask: int) -> Hits | None:
        occ = doc.occ
        left = [
            (leaf, s, e)
            for term, leaf in self.left
            for s, e, bit in occ.get(term, ())
            if bit & mask
        ]
        if not left:
            return None
        right = [
            (leaf, s, e)
            for term, leaf in self.right
            for s, e, bit in occ.get(term, ())
            if bit & mask
        ]
        if not right:
            return None
        return near_pairs(left, right, self.distance) or None


def flat_terms(node: Node) -> tuple[tuple[int, int], ...] | None:
    """The (term, leaf) pairs of a Term or an OR of Terms; None for any other shape."""
    if isinstance(node, Term):
        return ((node.term, node.leaf),)
    if isinstance(node, Or) and all(isinstance(c, Term) for c in node.children):
        return tuple((c.term, c.leaf) for c in node.children if isinstance(c, Term))
    return None


def near_pairs(left: Hits, right: Hits, distance: int) -> Hits:
    """The hits of either side that have a partner on the other side within ``distance``."""
    kept: dict[tuple[int, int, int], None] = {}
    if len(left) * len(right) <= 64:
        for hit in left:
            _, s, e = hit
            for other in right:
                if max(0, other[1] - e, s - other[2]) <= distance:
                    kept[hit] = None
                    kept[other] = None
        return list(kept)
    right = sorted(set(right), key=_start)
    starts = [s for _, s, _ in right]
    widest = max(e - s for _, s, e in right)
    for hit in dict.fromkeys(left):
        _, s, e = hit
        lo = bisect_left(starts, s - distance - widest)
        hi = bisect_right(starts, e + distance)
        for other in right[lo:hi]:
            _, s2, e2 = other
            if max(0, s2 - e, s - e2) <= distance:
                kept[hit] = None
                kept[other] = None
    return list(kept)


_start: Callable[[tuple[int, int, int]], int] = lambda hit: hit[1]  # noqa: E731
