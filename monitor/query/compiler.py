"""Query trees to compiled rules over shared term ids, with the clauses that pre-select them.

Every distinct term of every rule (a stem, a ``prefix*``, a ``>=N``) gets one
integer id, so the matcher finds each term once per entry however many rules
use it. For each rule the compiler also derives *required clauses*: sets of
term ids, one of which must occur in the entry whenever the rule matches
(``a AND (b OR c)`` requires {a} and {b, c}; NOT requires nothing). They are
a necessary condition, never a sufficient one: the exact semantics stay in
:mod:`monitor.query.evaluate`. The cheapest clause, by a rough estimate of how
common its terms are, is the rule's *trigger* in the matcher's inverted index.
"""

from __future__ import annotations

from collections.abc import Sequence

from monitor.query import evaluate as ev
from monitor.query import nodes as q

# Words so common in news that a rule should rather wait for its other terms.
# Until the matcher has seen real text, a term's cost is a guess at the share
# of entries holding it.
# Keys (stems) of three letters or more; shorter ones count as common anyway.
# fmt: off
_COMMON = frozenset({
    "the", "and", "are", "been", "but", "for", "from", "had", "has", "have", "her", "his",
    "its", "said", "say", "she", "than", "that", "their", "they", "this", "was", "were",
    "will", "with", "would", "after", "over", "new", "more", "two", "one", "also", "not",
    "who", "which", "about", "out", "into",
})
# fmt: on


class Rule:
    """One compiled rule: its tree, its required clauses, and its leaves' texts in query order."""

    __slots__ = ("clauses", "index", "leaves", "name", "order", "root", "terms")

    def __init__(
        self,
        name: str,
        index: int,
        root: ev.Node,
        clauses: tuple[frozenset[int], ...],
        leaves: list[str],
        terms: frozenset[int],
    ) -> None:
        self.terms = terms  # every term the rule mentions, under NOT too
        self.name = name
        self.index = index
        self.root = root
        self.clauses = clauses
        self.leaves = leaves
        # Where each term text is first written in the query, to list terms in that order.
        self.order = {text: i for i, text in reversed(list(enumerate(leaves)))}


class Compiler:
    """Turns expanded query trees into compiled nodes over shared term ids."""

    def __init__(self) -> None:
        self.terms: dict[tuple[object, ...], int] = {}
        self.cost: list[float] = []
        self.words: dict[str, int] = {}
        self.prefixes: dict[str, int] = {}
        self.compares: dict[int, q.Compare] = {}
        self.mentioned: set[int] = set()  # terms of the rule being compiled

    def term(self, ident: tuple[object, ...], cost: float) -> int:
        found = self.terms.get(ident)
        if found is None:
            found = self.terms[ident] = len(self.cost)
            self.cost.append(cost)
        self.mentioned.add(found)
        return found

    def leaf_term(self, leaf: q.Word | q.Prefix | q.Compare) -> int:
        if isinstance(leaf, q.Word):
            common = leaf.key in _COMMON or len(leaf.key) < 3
            tid = self.term(("w", leaf.key), 0.3 if common else 0.01)
            self.words[leaf.key] = tid
        elif isinstance(leaf, q.Prefix):
            tid = self.term(("p", leaf.prefix), 0.01 + 0.3 / len(leaf.prefix) ** 2)
            self.prefixes[leaf.prefix] = tid
        else:
            tid = self.term(("c", leaf.op, leaf.value), 0.3)
            self.compares.setdefault(tid, leaf)
        return tid

    def rule(self, name: str, index: int, root: q.Node) -> Rule:
        leaves: list[str] = []
        self.mentioned = set()
        node, required = self.node(root, ev.ALL, leaves)
        return Rule(name, index, node, tuple(required), leaves, frozenset(self.mentioned))

    def node(self, n: q.Node, mask: int, leaves: list[str]) -> tuple[ev.Node, list[frozenset[int]]]:
        """The compiled node and its required clauses (each: one of these terms must occur)."""
        if isinstance(n, q.Word | q.Prefix | q.Compare):
            tid = self.leaf_term(n)
            leaves.append(n.text)
            return ev.Term(tid, len(leaves) - 1), [frozenset({tid})]
        if isinstance(n, q.Phrase):
            tids = tuple(self.leaf_term(p) for p in n.parts)
            leaves.append(n.text)
            return ev.Phrase(tids, len(leaves) - 1), [frozenset({t}) for t in set(tids)]
        if isinstance(n, q.And):
            kids, required = [], []
            for child in n.children:
                node, req = self.node(child, mask, leaves)
                kids.append(node)
                required += req
            return ev.And(tuple(kids)), required
        if isinstance(n, q.Or):
            kids, union = [], set[int]()
            complete = True
            for child in n.children:
                node, req = self.node(child, mask, leaves)
                kids.append(node)
                if req:
                    union |= self.cheapest(req)
                else:
                    complete = False
            return ev.Or(tuple(kids)), [frozenset(union)] if complete else []
        if isinstance(n, q.Not):
            node, _ = self.node(n.child, mask, leaves)
            return ev.Not(node), []
        if isinstance(n, q.Near):
            left, lreq = self.node(n.left, mask, leaves)
            right, rreq = self.node(n.right, mask, leaves)
            # A side must have hits; if its own clauses say nothing, some positive leaf must occur.
            lreq = lreq or [self.positive_terms(n.left)]
            rreq = rreq or [self.positive_terms(n.right)]
            flat_left, flat_right = ev.flat_terms(left), ev.flat_terms(right)
            if flat_left and flat_right:
                # The common shape, (a OR b*) NEAR/n (c OR >=100): no tree to walk.
                return ev.NearTerms(flat_left, flat_right, n.distance), lreq + rreq
            return ev.Near(left, right, n.distance), lreq + rreq
        if isinstance(n, q.Scope):
            bits = ev.FIELD_BITS[n.field]
            node, req = self.node(n.child, mask & bits, leaves)
            return ev.Scope(node, bits), req
        if isinstance(n, q.Topic):
            return self.node(n.child, mask, leaves)
        raise AssertionError(f"unresolved topic reference @{n.name}")  # expanded before compile

    def positive_terms(self, n: q.Node) -> frozenset[int]:
        found: set[int] = set()
        for leaf in q.leaves(n, positive_only=True):
            if isinstance(leaf, q.Phrase):
                found.add(self.leaf_term(leaf.parts[0]))
            else:
                found.add(self.leaf_term(leaf))
        return frozenset(found)

    def cheapest(self, clauses: Sequence[frozenset[int]]) -> frozenset[int]:
        """The clause least likely to be satisfied, by the prior costs."""
        return cheapest(clauses, self.cost)


def cheapest(clauses: Sequence[frozenset[int]], cost: Sequence[float]) -> frozenset[int]:
    """The clause whose terms are expected in the fewest entries (``cost``: share per term)."""
    return min(clauses, key=lambda c: sum(cost[t] for t in c))
