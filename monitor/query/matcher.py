"""Every rule compiled into one structure, matched against an entry in one pass.

The work per entry grows with the entry's words, not with the number of
rules (issue 3):

1. **Which terms occur**: the entry's whitespace chunks go through the
   :class:`~monitor.query.chunks.ChunkCache`, a few set operations once the
   cache is warm.
2. **Which rules may match**: present terms wake rules through an inverted
   index on each rule's *trigger* clause (:mod:`monitor.query.compiler`); a
   woken rule must then have all its other required clauses present.
3. **Exact evaluation**, only for the survivors: a
   :class:`~monitor.query.document.Document` locates their terms and each
   rule's tree is evaluated (:mod:`monitor.query.evaluate`); character offsets
   are computed only for the rules that matched.

Which clause triggers a rule only changes speed, never results. The compiler
guesses from the form of the terms; the matcher then samples how often each
term really occurs and re-chooses every rule's rarest clause, a few times
early on and then rarely.

A pyahocorasick automaton over the stemmed token stream was measured for
step 1 (benchmarks/match_bench.py prints both): it must first tokenise and
stem every token in Python, while the chunk cache makes step 1 set
operations in C, several times faster; the automaton is not used.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import compress
from operator import not_

from monitor.model import Entry, RuleMatch
from monitor.query import evaluate as ev
from monitor.query import nodes as q
from monitor.query.chunks import ChunkCache
from monitor.query.compiler import Compiler, cheapest
from monitor.query.document import Document

# Term frequencies are sampled from one entry in _SAMPLE_EVERY, and triggers
# re-chosen from them after _FIRST_PLAN entries, then at growing intervals.
_SAMPLE_EVERY = 4
_FIRST_PLAN = 256
_PLAN_EVERY_MAX = 1 << 17
_PRIOR_WEIGHT = 8  # how many sampled entries the compiler's guess is worth


class Matcher:
    """Every rule, compiled once; match entries against all of them at once.

    Built by :func:`monitor.query.compile_rules`. Matching updates a bounded
    cache of the text it has seen, so a matcher belongs to one thread (the
    daemon's decide step); build one per thread otherwise.
    """

    def __init__(self, names: Sequence[str], roots: Sequence[q.Node]) -> None:
        compiler = Compiler()
        self.rules: tuple[str, ...] = tuple(names)
        self._rules = [
            compiler.rule(n, i, r) for i, (n, r) in enumerate(zip(names, roots, strict=True))
        ]
        self._cache = ChunkCache(compiler.words, compiler.prefixes, compiler.compares)
        self._prior = compiler.cost
        self._plan(compiler.cost)
        self._entries = 0
        self._sampled = 0
        self._seen: Counter[int] = Counter()
        self._next_plan = _FIRST_PLAN

    def _plan(self, cost: Sequence[float]) -> None:
        """Index each rule under its cheapest clause; it checks the others once woken."""
        trigger: list[list[int]] = [[] for _ in cost]
        checks: list[tuple[frozenset[int], ...]] = []
        for rule in self._rules:
            first = cheapest(rule.clauses, cost)
            for tid in first:
                trigger[tid].append(rule.index)
            checks.append(tuple(c for c in rule.clauses if c is not first))
        self._trigger = [tuple(rules) for rules in trigger]
        self._checks = checks
        # Most rules have one clause beyond their trigger ("a b", "x NEAR/4 >=100"):
        # one set test each. Rules with more are checked clause by clause; the rest
        # survive on waking.
        self._one_clause = {i: c[0] for i, c in enumerate(checks) if len(c) == 1}
        self._one_clause_rules = frozenset(self._one_clause)
        self._more_clauses = frozenset(i for i, c in enumerate(checks) if len(c) > 1)
        self._guarded = self._one_clause_rules | self._more_clauses

    def _observe(self, present: set[int]) -> None:
        """Count which terms a sampled entry holds, and re-plan triggers from time to time."""
        self._seen.update(present)
        self._sampled += 1
        if self._entries >= self._next_plan:
            self._next_plan += min(self._next_plan * 7, _PLAN_EVERY_MAX)
            seen, n, k = self._seen, self._sampled + _PRIOR_WEIGHT, _PRIOR_WEIGHT
            self._plan([(seen[t] + p * k) / n for t, p in enumerate(self._prior)])

    def match(self, entry: Entry) -> tuple[RuleMatch, ...]:
        """The rules that match an entry, in rule order, each with its hits."""
        return self.match_fields(entry.title, entry.summary, entry.content)

    def match_fields(
        self, title: str, summary: str = "", content: str = ""
    ) -> tuple[RuleMatch, ...]:
        """Match plain-text fields (as in :class:`~monitor.model.Entry`) against every rule.

        Hit offsets refer to the strings given. Text that may hold markup goes
        through :func:`monitor.text.html_to_text` first.
        """
        if not self._rules:
            return ()
        texts = (title or "", summary or "", content or "")
        splits = [text.split() for text in texts]
        chunks = splits[0] + splits[1] + splits[2]
        present, scaled = self._cache.scan(chunks)
        if not present:
            return ()
        self._entries += 1
        if not self._entries % _SAMPLE_EVERY:
            self._observe(present)
        candidates = set().union(*map(self._trigger.__getitem__, present))
        passed = candidates - self._guarded
        # The same as [i for i in waking if not one[i].isdisjoint(present)], looping in C.
        waking = list(candidates & self._one_clause_rules)
        clauses = map(self._one_clause.__getitem__, waking)
        passed.update(compress(waking, map(not_, map(present.isdisjoint, clauses))))
        checks = self._checks
        for index in candidates & self._more_clauses:
            for clause in checks[index]:
                if clause.isdisjoint(present):
                    break
            else:
                passed.add(index)
        if not passed:
            return ()
        survivors = [self._rules[i] for i in sorted(passed)]
        needed: set[int] = set().union(*[rule.terms for rule in survivors])
        doc = Document(self._cache, texts, splits, chunks, needed, scaled)
        out = []
        for rule in survivors:
            raw = rule.root.eval(doc, ev.ALL)
            if raw:
                out.append(doc.explain(rule, raw))
        return tuple(out)
