"""What each piece of text holds for a set of rules, learned once and remembered.

Entries are cut on whitespace into *chunks* ("soldiers,", "north-korean",
"1,200"). A chunk is tokenised, folded and stemmed the first time it is seen,
and what its tokens match (word and prefix terms, numbers, scale words) is
kept in a cache. News reuses its words, so after a short warm-up nearly every
chunk of a new entry is already known, and finding the terms of an entry is a
few set operations in C (:meth:`ChunkCache.scan`).

Tokens never contain whitespace, so the tokens of the chunks, in order, are
exactly the tokens :func:`monitor.query.normalize.tokenize` finds in the text.
"""

from __future__ import annotations

import operator
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping

from monitor.query.nodes import Compare
from monitor.query.normalize import (
    SCALE_WORDS,
    TOKEN_RE,
    fold,
    has_scale,
    key,
    number_value,
    scale_word,
)

CACHE_LIMIT = 300_000
_SCALES = sorted(set(SCALE_WORDS.values()))
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


class Chunk:
    """What one whitespace-separated chunk of text holds, for the rules at hand."""

    __slots__ = ("count", "numbers", "pairs", "scales", "spans")

    def __init__(self) -> None:
        self.count = 0  # tokens in the chunk
        self.spans: tuple[tuple[int, int], ...] = ()  # of each token, within the chunk
        self.pairs: tuple[tuple[int, int], ...] = ()  # (token index, word or prefix term)
        self.numbers: tuple[tuple[int, float, bool], ...] = ()  # (token index, value, has scale)
        self.scales: tuple[float | None, ...] = ()  # per token, when some token is a scale word


class ChunkCache:
    """Chunks seen so far, and the term tables of the rules they are checked against."""

    def __init__(
        self,
        words: Mapping[str, int],
        prefixes: Mapping[str, int],
        compares: Mapping[int, Compare],
    ) -> None:
        self.words = words
        self.prefixes = prefixes
        self.prefix_lengths = sorted({len(p) for p in prefixes})
        self.compares = compares
        self.compare_ids = frozenset(compares)
        self.tests = {tid: (_OPERATORS[c.op], c.value) for tid, c in compares.items()}
        # Thresholds sorted per operator: a number satisfies a prefix or a suffix of each list.
        by_op: dict[str, list[tuple[float, int]]] = {">=": [], ">": [], "<=": [], "<": []}
        for tid, cmp in compares.items():
            by_op[cmp.op].append((cmp.value, tid))
        self.thresholds = {op: sorted(v) for op, v in by_op.items()}
        self.limits = {op: [v for v, _ in items] for op, items in self.thresholds.items()}
        self.reset()

    def reset(self) -> None:
        """Forget every chunk (memory stays bounded in a long-running daemon)."""
        self.chunks: dict[str, Chunk] = {}
        self.counts: dict[str, int] = {}  # tokens per chunk
        self.terms_of: dict[str, tuple[int, ...]] = {}  # chunk -> the terms it holds
        # The same, plus what its numbers hold under any scale word ("2.5" -> "2.5 million").
        self.scaled_terms_of: dict[str, tuple[int, ...]] = {}
        self.scaling: set[str] = set()  # chunks with a scale word ("million")
        self.irregular: set[str] = set()  # chunks of other than one token
        self.values: dict[float, tuple[int, ...]] = {}

    def scan(self, chunks: list[str]) -> tuple[set[int], bool]:
        """Every term the chunks of an entry may hold, and whether it has a scale word.

        Exact for words, prefixes and plain numbers; for numbers, when the
        entry has a scale word anywhere, every scaling is assumed ("2.5" and
        "million" may be "2.5 million"), which exact evaluation narrows down.
        """
        if len(self.chunks) > CACHE_LIMIT:
            self.reset()
        while True:
            scaled = bool(self.compares) and not self.scaling.isdisjoint(chunks)
            table = self.scaled_terms_of if scaled else self.terms_of
            try:
                # One pass in C over every chunk; a chunk never seen raises KeyError.
                return set().union(*map(table.__getitem__, chunks)), scaled
            except KeyError:
                self.learn(set(chunks).difference(self.chunks))

    def learn(self, chunks: set[str]) -> None:
        """Tokenise, fold and stem new chunks, and record what they hold."""
        words, prefixes, lengths = self.words, self.prefixes, self.prefix_lengths
        for chunk in chunks:
            info = Chunk()
            found = list(TOKEN_RE.finditer(chunk))
            info.spans = tuple(m.span() for m in found)
            info.count = len(found)
            pairs: list[tuple[int, int]] = []
            numbers: list[tuple[int, float, bool]] = []
            scales: list[float | None] = []
            compared: list[int] = []
            for index, match in enumerate(found):
                raw = match.group()
                folded = fold(raw)
                tid = words.get(key(raw))
                if tid is not None:
                    pairs.append((index, tid))
                for n in lengths:
                    if n > len(folded):
                        break
                    tid = prefixes.get(folded[:n])
                    if tid is not None:
                        pairs.append((index, tid))
                value = number_value(raw) if folded[:1].isdigit() else None
                if value is not None:
                    numbers.append((index, value, has_scale(raw)))
                    compared += self.compare_terms(value)
                scales.append(scale_word(raw))
            info.pairs = tuple(pairs)
            info.numbers = tuple(numbers)
            self.chunks[chunk] = info
            self.counts[chunk] = info.count
            terms = tuple(dict.fromkeys([*(t for _, t in pairs), *compared]))
            self.terms_of[chunk] = terms
            if numbers:
                scaled = self._scaled_terms(info)
                self.scaled_terms_of[chunk] = tuple(dict.fromkeys([*terms, *scaled]))
            else:
                self.scaled_terms_of[chunk] = terms
            if any(s is not None for s in scales):
                info.scales = tuple(scales)
                self.scaling.add(chunk)
            if info.count != 1:
                self.irregular.add(chunk)

    def compare_terms(self, value: float) -> tuple[int, ...]:
        """Every comparison term (``>=N``...) that ``value`` satisfies."""
        found = self.values.get(value)
        if found is None:
            t, lim = self.thresholds, self.limits
            found = tuple(
                [tid for _, tid in t[">="][: bisect_right(lim[">="], value)]]
                + [tid for _, tid in t[">"][: bisect_left(lim[">"], value)]]
                + [tid for _, tid in t["<="][bisect_left(lim["<="], value) :]]
                + [tid for _, tid in t["<"][bisect_right(lim["<"], value) :]]
            )
            if len(self.values) > CACHE_LIMIT:
                self.values.clear()
            self.values[value] = found
        return found

    def _scaled_terms(self, info: Chunk) -> list[int]:
        """Comparison terms the numbers of a chunk satisfy under any scale word."""
        every: list[int] = []
        for _, value, scaled in info.numbers:
            if not scaled:
                for scale in _SCALES:
                    every += self.compare_terms(value * scale)
        return every

    def next_scale(self, chunks: list[str], i: int, j: int) -> float | None:
        """The scale word right after token ``j`` of chunk ``i``, if that is what follows."""
        info = self.chunks[chunks[i]]
        if j + 1 < info.count:
            return info.scales[j + 1] if info.scales else None
        for after in chunks[i + 1 :]:
            nxt = self.chunks[after]
            if nxt.count:
                return nxt.scales[0] if nxt.scales else None
        return None
