"""How fast the compiled matcher is, against a naive per-rule evaluation (issue 3).

Generates news-like entries (a headline and a ~60-word summary drawn from a
news vocabulary with a Zipf-like word frequency, inflected words, entity
names, numbers with separators and scale words) and rule sets of 10, 1,000
and 10,000 rules (words, phrases, wildcards, NEAR, numbers, OR lists, NOT,
field scopes). For each size it prints entries per second on one core for:

- the compiled matcher (``monitor.query.compile_rules``), with a warm token
  cache as in a running daemon, median of several runs;
- a naive evaluation: each entry tokenised once, then every rule's tree
  walked over the tokens by the plain reference evaluator of the tests.

Then it times the term-finding step alone both ways the issue proposes: the
per-token cache used by the matcher and a pyahocorasick automaton over the
stemmed token stream. Run: ``.venv/bin/python benchmarks/match_bench.py``
(about a minute; ``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import ahocorasick

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from reference_eval import Reference  # noqa: E402

from monitor.query import compile_rules  # noqa: E402
from monitor.query.check import expand  # noqa: E402
from monitor.query.normalize import TOKEN_RE, key  # noqa: E402
from monitor.query.parser import parse  # noqa: E402


def _words(text: str) -> list[str]:
    """The words of a vocabulary written as one space-separated string."""
    return text.split()


FUNCTION = _words(
    "the of and to in a on for said that with as by at from is was has have after were "
    "its their it be will would over an this more than but about into up who which also "
    "had been they he she not under during while against since before between"
)
TOPICAL = _words(
    "government minister president election troops soldiers drone missile attack strike "
    "ceasefire talks border city region forces army military officials police court judge "
    "report war peace deal sanctions oil gas prices market economy inflation bank rates "
    "shares investors company workers union strike protest protesters rally vote parliament "
    "law bill reform budget tax spending health hospital doctors patients virus vaccine "
    "outbreak school students teachers university climate flood storm wildfire earthquake "
    "rescue victims bodies remains killed wounded injured dead civilians refugees aid "
    "humanitarian shelter energy power grid blackout nuclear plant reactor weapons "
    "ammunition artillery tanks jets aircraft navy ship port grain exports imports trade "
    "tariffs summit leaders meeting agreement treaty alliance embassy ambassador spy "
    "intelligence hackers cyber data privacy technology chips phones internet platform "
    "social media election campaign candidate poll voters ballot coalition opposition "
    "prime crisis emergency investigation charges arrest prison sentence trial verdict "
    "barrage offensive frontline village town capital province district mayor governor "
    "spokesman statement interview decision plan proposal funding billion million "
    "thousands hundreds dozens overnight sunday monday tuesday wednesday thursday friday "
    "saturday week month year launched fired shot downed intercepted destroyed damaged "
    "returned exchanged captured released freed prisoners hostages negotiations envoy "
    "satellite space rocket launch mission scientists study research discovery"
)
ENTITIES = _words(
    "Russia Ukraine Kyiv Moscow Zelensky Putin Kharkiv Odesa Donetsk Crimea China Beijing "
    "Taiwan Israel Gaza Hamas Hezbollah Lebanon Iran Tehran Syria Damascus Turkey Ankara "
    "NATO Europe Brussels Germany Berlin France Paris Britain London Poland Warsaw America "
    "Washington Pentagon Congress Senate India Delhi Pakistan Japan Tokyo Korea Pyongyang "
    "Seoul Africa Sudan Ethiopia Nigeria Kenya Brazil Mexico Canada Australia Shahed UAV "
    "DPRK Kremlin Reuters Yemen Houthi Iraq Baghdad Egypt Cairo Qatar Saudi Riyadh"
)


def _names(rng: random.Random, n: int) -> list[str]:
    """Pronounceable made-up names for the long tail of people and places."""
    onsets = _words("b d f g h j k l m n p r s t v w z sh ch kr st br dr gr tr pl bl sl zh ts")
    vowels = _words("a e i o u y ia ei ou ai ue")
    codas = _words("n r s k v l m")
    out: set[str] = set()
    while len(out) < n:
        syllables = [rng.choice(onsets) + rng.choice(vowels) for _ in range(3)]
        out.add(("".join(syllables) + rng.choice(codas)).capitalize())
    return sorted(out)


class Corpus:
    """A news vocabulary with Zipf-like frequencies, and entries and rules drawn from it."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.content = TOPICAL + ENTITIES + _names(self.rng, 20000)
        self.rng.shuffle(self.content)
        # Zipf: the word of rank r is drawn with weight 1/r.
        self.weights = [1.0 / (r + 1) for r in range(len(self.content))]
        self.cum = list(_accumulate(self.weights))

    def word(self) -> str:
        rng = self.rng
        word = rng.choices(self.content, cum_weights=self.cum)[0]
        form = rng.random()
        if word.islower() and form < 0.25:
            word += rng.choice(["s", "ed", "ing", "'s"])
        return word

    def number(self) -> str:
        rng = self.rng
        kind = rng.random()
        if kind < 0.3:
            return str(rng.randint(2, 500))
        if kind < 0.5:
            return f"{rng.randint(1, 99)},{rng.randint(0, 999):03d}"
        if kind < 0.7:
            return f"{rng.randint(1, 9)}.{rng.randint(1, 9)} {rng.choice(['million', 'billion'])}"
        if kind < 0.85:
            return str(rng.randint(1990, 2025))
        return f"{rng.randint(1, 60)}%"

    def sentence(self, length: int) -> str:
        rng, words = self.rng, []
        for _ in range(length):
            pick = rng.random()
            if pick < 0.45:
                words.append(rng.choice(FUNCTION))
            elif pick < 0.95:
                words.append(self.word())
            else:
                words.append(self.number())
        text = " ".join(words)
        return text[:1].upper() + text[1:]

    def entry(self) -> tuple[str, str]:
        title = self.sentence(self.rng.randint(7, 12))
        parts, left = [], self.rng.randint(50, 70)  # a ~60-word summary
        while left > 0:
            n = min(left, self.rng.randint(12, 22))
            parts.append(self.sentence(n) + self.rng.choice([".", ".", ",", ";"]))
            left -= n
        return title, " ".join(parts)

    def tail(self, skip: int = 100) -> str:
        """A word from the long tail (names, specific terms): what rules are mostly about."""
        return self.rng.choice(self.content[skip:]).lower()

    def wildcard(self) -> str:
        """A prefix search as people write them: a word cut before its ending (shahed*, missil*)."""
        if self.rng.random() < 0.3:
            # (Not "billi*": it would sit next to every "2.5 billion".)
            word = self.rng.choice([w for w in TOPICAL + ENTITIES if not w.endswith("illion")])
        else:
            word = self.tail()
        return word.lower()[: max(4, len(word) - 2)] + "*"

    def mid(self) -> str:
        """A common topical word ("troops", "strike") that rules combine with specific ones."""
        return self.rng.choice(self.content[20:400]).lower()

    def rule(self) -> str:
        rng, t, m = self.rng, self.tail, self.mid
        kind = rng.randrange(9)
        if kind == 0:
            return f"{m()} {t()}"
        if kind == 1:
            return f'"{t()} {t()}" OR {t(2000)}'
        if kind == 2:
            return f"{self.wildcard()} AND {t()}"
        if kind == 3:
            return f"({m()} OR {t()}) NEAR/{rng.randint(3, 10)} ({m()} OR {t()})"
        if kind == 4:
            return f"({t()} OR {self.wildcard()}) NEAR/4 >={rng.choice([100, 500, 1000, 10000])}"
        if kind == 5:
            return f"({t()} OR {t()} OR {t()}) AND {m()}"
        if kind == 6:
            return f"{m()} {t()} -{m()}"
        if kind == 7:
            return f"title:({t()} OR {t()}) {m()}"
        return f'"{m()} {t()}" NEAR/8 ({m()} OR >={rng.choice([50, 500, 5000])})'


def _accumulate(values: list[float]) -> list[float]:
    out, total = [], 0.0
    for v in values:
        total += v
        out.append(total)
    return out


def _rate(run: Callable[[], int], repeats: int) -> float:
    """Median entries per CPU-second of this process over ``repeats`` runs.

    CPU time rather than wall time: on a shared machine other processes'
    load would otherwise count against us. The matcher is single-threaded,
    so this is the rate of one core.
    """
    rates = []
    for _ in range(repeats):
        start = time.process_time()
        n = run()
        rates.append(n / (time.process_time() - start))
    return statistics.median(rates)


def bench(sizes: list[int], n_entries: int, repeats: int, naive_budget: float) -> None:
    corpus = Corpus()
    entries = [corpus.entry() for _ in range(n_entries)]
    all_rules = [corpus.rule() for _ in range(max(sizes))]
    words = sum(len(s.split()) for _, s in entries) // n_entries
    print(f"{n_entries} entries, ~{words} words of summary each\n")
    print(
        f"{'rules':>7} {'compile ms':>11} {'matched/entry':>14} "
        f"{'compiled/s':>11} {'naive/s':>9} {'ratio':>7}"
    )
    for size in sizes:
        rules = {f"r{i}": text for i, text in enumerate(all_rules[:size])}
        start = time.perf_counter()
        matcher = compile_rules(rules)
        compile_ms = (time.perf_counter() - start) * 1000
        matched = sum(len(matcher.match_fields(t, s)) for t, s in entries)  # also warms the cache

        def compiled(matcher=matcher) -> int:  # type: ignore[no-untyped-def]
            for title, summary in entries:
                matcher.match_fields(title, summary)
            return len(entries)

        fast = _rate(compiled, repeats)
        roots = [expand(parse(text).root, {}) for text in rules.values()]

        def naive(roots=roots) -> int:  # type: ignore[no-untyped-def]
            done, deadline = 0, time.process_time() + naive_budget
            for title, summary in entries:
                doc = Reference(title, summary)
                for root in roots:
                    doc.evaluate(root)
                done += 1
                if time.process_time() > deadline:
                    break
            return done

        slow = _rate(naive, 3)
        print(
            f"{size:>7,} {compile_ms:>11.1f} {matched / n_entries:>14.2f} "
            f"{fast:>11,.0f} {slow:>9,.0f} {fast / slow:>6,.0f}x"
        )
    term_finding(entries, all_rules[: max(sizes)], repeats)


def term_finding(entries: list[tuple[str, str]], rules: list[str], repeats: int) -> None:
    """Time step 1 alone, finding which word terms occur: chunk cache vs automaton."""
    stems = {key(tok) for text in rules for tok in TOKEN_RE.findall(text.replace("*", ""))}
    automaton = ahocorasick.Automaton()
    for stem in stems:
        automaton.add_word(f" {stem} ", stem)
    automaton.make_automaton()
    stem_cache: dict[str, str] = {}

    def with_automaton() -> int:
        for title, summary in entries:
            stemmed = []
            for tok in TOKEN_RE.findall(title) + TOKEN_RE.findall(summary):
                stem = stem_cache.get(tok)
                if stem is None:
                    stem = stem_cache[tok] = key(tok)
                stemmed.append(stem)
            found = {v for _, v in automaton.iter(" " + "  ".join(stemmed) + " ")}
            del found
        return len(entries)

    # As the matcher does it: whitespace chunks, each looked up once in a warm cache.
    terms_of: dict[str, tuple[str, ...]] = {}
    for title, summary in entries:
        for chunk in f"{title} {summary}".split():
            terms_of[chunk] = tuple(s for t in TOKEN_RE.findall(chunk) if (s := key(t)) in stems)
    hot = {chunk for chunk, terms in terms_of.items() if terms}

    def with_cache() -> int:
        for title, summary in entries:
            distinct = set(title.split())
            distinct.update(summary.split())
            assert not distinct.difference(terms_of)
            found: set[str] = set()
            found.update(*map(terms_of.__getitem__, distinct & hot))
        return len(entries)

    print("\nstep 1 alone, finding the word terms, entries/s (warm caches):")
    print(f"  chunk cache + set operations:      {_rate(with_cache, repeats):>9,.0f}")
    print(f"  pyahocorasick over stemmed tokens: {_rate(with_automaton, repeats):>9,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small run, to check the script works")
    args = parser.parse_args()
    if args.quick:
        bench([10, 1000], n_entries=300, repeats=2, naive_budget=0.3)
    else:
        bench([10, 1000, 10000], n_entries=3000, repeats=5, naive_budget=1.5)


if __name__ == "__main__":
    main()
