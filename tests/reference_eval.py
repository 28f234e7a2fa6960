"""A deliberately plain evaluator of parsed queries, for tests only.

It walks the query tree over the token lists of an entry's fields, scanning
every token for every leaf: no caches, no inverted index, no term ids. The
compiled matcher must agree with it exactly (tests/test_query_property.py).
The semantics it spells out are the ones the README ("Rule language") describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from monitor.model import Hit
from monitor.query import nodes as q
from monitor.query.normalize import Token, has_scale, number_value, scale_word, tokenize

FIELD_ORDER = ("title", "summary", "content")
# A hit: (term text, field, first token index, last token index).
RefHit = tuple[str, str, int, int]


@dataclass(frozen=True)
class Result:
    """What the reference says about one query and one entry."""

    matched: bool
    terms: tuple[str, ...]
    hits: frozenset[Hit]


def _part_matches(part: q.Word | q.Prefix, token: Token) -> bool:
    if isinstance(part, q.Word):
        return token.key == part.key
    return token.folded.startswith(part.prefix)


class Reference:
    """The fields of one entry, tokenised, and a plain recursive evaluation over them."""

    def __init__(self, title: str, summary: str = "", content: str = "") -> None:
        self.texts = {"title": title, "summary": summary, "content": content}
        self.tokens = {name: tokenize(text) for name, text in self.texts.items()}

    def leaf_hits(self, leaf: q.Leaf, fields: frozenset[str]) -> set[RefHit]:
        hits: set[RefHit] = set()
        for field in fields:
            toks = self.tokens[field]
            for i, tok in enumerate(toks):
                if isinstance(leaf, q.Word | q.Prefix):
                    if _part_matches(leaf, tok):
                        hits.add((leaf.text, field, i, i))
                elif isinstance(leaf, q.Phrase):
                    n = len(leaf.parts)
                    window = toks[i : i + n]
                    if len(window) == n and all(
                        _part_matches(p, t) for p, t in zip(leaf.parts, window, strict=True)
                    ):
                        hits.add((leaf.text, field, i, i + n - 1))
                else:
                    value = number_value(tok.raw)
                    if value is None:
                        continue
                    last = i
                    if not has_scale(tok.raw) and i + 1 < len(toks):
                        scale = scale_word(toks[i + 1].raw)
                        if scale is not None:
                            value, last = value * scale, i + 1
                    if leaf.test(value):
                        hits.add((leaf.text, field, i, last))
        return hits

    def eval(self, node: q.Node, fields: frozenset[str]) -> set[RefHit] | None:
        """None when ``node`` does not match; otherwise the hits that satisfy it."""
        if isinstance(node, q.Word | q.Prefix | q.Phrase | q.Compare):
            return self.leaf_hits(node, fields) or None
        if isinstance(node, q.And):
            results = [self.eval(c, fields) for c in node.children]
            if any(r is None for r in results):
                return None
            return set().union(*[r for r in results if r is not None])
        if isinstance(node, q.Or):
            matched = [r for r in (self.eval(c, fields) for c in node.children) if r is not None]
            return set().union(*matched) if matched else None
        if isinstance(node, q.Not):
            return set() if self.eval(node.child, fields) is None else None
        if isinstance(node, q.Scope):
            return self.eval(node.child, fields & q.FIELDS[node.field])
        if isinstance(node, q.Topic):
            return self.eval(node.child, fields)
        if isinstance(node, q.Near):
            left = self.eval(node.left, fields)
            right = self.eval(node.right, fields)
            if not left or not right:
                return None
            kept = set()
            for a in left:
                for b in right:
                    gap = max(0, b[2] - a[3], a[2] - b[3])
                    if a[1] == b[1] and gap <= node.distance:
                        kept |= {a, b}
            return kept or None
        raise AssertionError(f"unexpected node {node!r}")

    def evaluate(self, root: q.Node) -> Result:
        """Match ``root`` (topics already expanded) against the whole entry."""
        hits = self.eval(root, q.ALL_FIELDS)
        if hits is None:
            return Result(False, (), frozenset())
        used = {text for text, _, _, _ in hits}
        order = [leaf.text for leaf in q.leaves(root)]
        terms = tuple(dict.fromkeys(t for t in order if t in used))
        out = set()
        for text, field, first, last in hits:
            toks = self.tokens[field]
            out.add(Hit(field, toks[first].start, toks[last].end, text))
        return Result(True, terms, frozenset(out))


def expand_all(root: q.Node, topics: Mapping[str, str]) -> q.Node:
    """``root`` with topic references replaced, the plain way (no cycle checks: tests only)."""
    from monitor.query.parser import parse

    if isinstance(root, q.TopicRef):
        return q.Topic(root.name, expand_all(parse(topics[root.name]).root, topics), root.column)
    if isinstance(root, q.And):
        return q.And(tuple(expand_all(c, topics) for c in root.children), root.column)
    if isinstance(root, q.Or):
        return q.Or(tuple(expand_all(c, topics) for c in root.children), root.column)
    if isinstance(root, q.Not):
        return q.Not(expand_all(root.child, topics), root.column)
    if isinstance(root, q.Scope):
        return q.Scope(root.field, expand_all(root.child, topics), root.column)
    if isinstance(root, q.Near):
        return q.Near(
            expand_all(root.left, topics),
            expand_all(root.right, topics),
            root.distance,
            root.column,
        )
    return root
