"""One entry, as the rules that may match it see it: word positions and explanations.

Built only when some rule survived the cheap checks of the matcher, for the
terms those rules mention. Positions count tokens; each field starts far
after the previous one ends (more than the largest NEAR distance), so neither
a phrase nor NEAR reaches across fields. Character offsets, for the hits of
rules that did match, come from the chunk cache and the field text.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate, compress, starmap
from operator import not_

from monitor.model import Hit, RuleMatch
from monitor.query.chunks import ChunkCache
from monitor.query.compiler import Rule
from monitor.query.evaluate import Hits

_GAP = 1 << 20
Occurrence = tuple[int, int, int]  # first and last word position, field bit


class Field:
    """One field of the entry: its text, its chunks, and where its words are."""

    __slots__ = (
        "_chars",
        "_spaced",
        "_tokens",
        "base",
        "bit",
        "cache",
        "chunks",
        "name",
        "size",
        "text",
    )

    def __init__(
        self,
        name: str,
        bit: int,
        text: str,
        chunks: list[str],
        cache: ChunkCache,
        base: int,
        regular: bool,
    ) -> None:
        self.name = name
        self.bit = bit
        self.text = text
        self.chunks = chunks
        self.cache = cache
        self.base = base  # position of its first word
        self._tokens: Sequence[int] | None = range(len(chunks) + 1) if regular else None
        self.size = len(chunks) if regular else sum(map(cache.counts.__getitem__, chunks))
        self._chars: list[int] | None = None
        self._spaced = False

    @property
    def tokens(self) -> Sequence[int]:
        """Index of the first token of each chunk, and the token count last."""
        if self._tokens is None:
            counts = self.cache.counts.__getitem__
            self._tokens = list(accumulate(map(counts, self.chunks), initial=0))
        return self._tokens

    def start(self, chunk: int) -> int:
        """Character offset where a chunk (by index) starts in the text."""
        if self._chars is None:
            chunks, text = self.chunks, self.text
            lengths = list(accumulate(map(len, chunks), initial=0))
            # One separator between chunks, as html_to_text leaves text: plain arithmetic.
            self._spaced = lengths[-1] + len(chunks) - 1 == len(text)
            if self._spaced:
                self._chars = lengths
            else:
                found, at = [], 0
                for piece in chunks:
                    at = text.index(piece, at)
                    found.append(at)
                    at += len(piece)
                self._chars = found
        return self._chars[chunk] + chunk if self._spaced else self._chars[chunk]

    def span(self, first: int, last: int) -> tuple[int, int]:
        """Character offsets from the start of token ``first`` to the end of token ``last``."""
        tokens, chunks, infos = self.tokens, self.chunks, self.cache.chunks
        if isinstance(tokens, range):
            a, b = first, last
        else:
            a, b = bisect_right(tokens, first) - 1, bisect_right(tokens, last) - 1
        start = self.start(a) + infos[chunks[a]].spans[first - tokens[a]][0]
        end = self.start(b) + infos[chunks[b]].spans[last - tokens[b]][1]
        return start, end


class Document:
    """The entry's fields and the occurrences of the terms some surviving rule needs."""

    __slots__ = ("_starts", "cache", "fields", "occ")

    def __init__(
        self,
        cache: ChunkCache,
        texts: Sequence[str],
        splits: Sequence[list[str]],
        every: list[str],
        needed: set[int],
        scaling: bool,
    ) -> None:
        self.cache = cache
        self.fields: list[Field] = []
        regular = cache.irregular.isdisjoint(every)
        base = 0
        for name, bit, text, chunks in zip(
            ("title", "summary", "content"), (1, 2, 4), texts, splits, strict=True
        ):
            field = Field(name, bit, text, chunks, cache, base, regular)
            self.fields.append(field)
            base += field.size + _GAP
        self.occ: dict[int, list[Occurrence]] = {}
        self._starts: dict[int, frozenset[int]] = {}
        self._locate(needed, scaling)

    def starts(self, term: int) -> frozenset[int]:
        """The positions where a one-word term occurs."""
        found = self._starts.get(term)
        if found is None:
            found = self._starts[term] = frozenset(s for s, _, _ in self.occ.get(term, ()))
        return found

    def _locate(self, needed: set[int], scaling: bool) -> None:
        """Fill ``occ`` with each occurrence of the needed terms.

        ``scaling`` says whether the entry holds a scale word, so that its
        numbers may be scaled.
        """
        cache, occ = self.cache, self.occ
        # Numbers count with what a scale word may make of them ("2.5" -> "2.5 million").
        holds = (cache.scaled_terms_of if scaling else cache.terms_of).__getitem__
        compares = [(t, *cache.tests[t]) for t in cache.compare_ids.intersection(needed)]
        infos = cache.chunks
        for field in self.fields:
            chunks = field.chunks
            if not chunks:
                continue
            base, bit, tokens = field.base, field.bit, field.tokens
            # [i for i, c in enumerate(chunks) if not needed.isdisjoint(holds(c))], in C.
            wanted = map(not_, map(needed.isdisjoint, map(holds, chunks)))
            for i in compress(range(len(chunks)), wanted):
                info, at = infos[chunks[i]], base + tokens[i]
                for j, tid in info.pairs:
                    if tid in needed:
                        occ.setdefault(tid, []).append((at + j, at + j, bit))
                if not compares:
                    continue
                for j, value, scaled in info.numbers:
                    last = at + j
                    if scaling and not scaled:
                        scale = cache.next_scale(chunks, i, j)
                        if scale is not None:
                            value, last = value * scale, last + 1
                    for tid, test, threshold in compares:
                        if test(value, threshold):
                            occ.setdefault(tid, []).append((at + j, last, bit))

    def explain(self, rule: Rule, raw: Hits) -> RuleMatch:
        """The RuleMatch for evaluated hits: character offsets, and the terms in query order."""
        fields, leaves = self.fields, rule.leaves
        second, third = fields[1].base, fields[2].base
        found = set()
        for leaf, s, e in raw:
            field = fields[2] if s >= third else fields[1] if s >= second else fields[0]
            base = field.base
            found.add((field.name, *field.span(s - base, e - base), leaves[leaf]))
        terms = sorted({hit[3] for hit in found}, key=rule.order.__getitem__)
        # Sorted by (field, start), as RuleMatch promises; end and term break ties.
        return RuleMatch(rule.name, tuple(terms), tuple(starmap(Hit, sorted(found))))
