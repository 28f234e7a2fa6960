"""The rule language, row by row of SPEC §4: what each query matches and which words it marks."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from reference_eval import Reference, expand_all

from monitor.model import Entry, Hit, RuleMatch
from monitor.query import Matcher, compile_rules
from monitor.text import html_to_text

# (query, text, words the match marks in the text, in order; None: no match)
Row = tuple[str, str, list[str] | None]

WORDS: list[Row] = [
    ("drone", "Drones hit Kyiv", ["Drones"]),
    ("drone", "the drone's wreckage", ["drone's"]),
    ("drone", "the drone’s wreckage", ["drone’s"]),
    ("drones", "a single drone", ["drone"]),
    ("drone", "a DRONE strike", ["DRONE"]),
    ("drone", "a dronestrike and an androne", None),
    ("war", "Warsaw awards the warning", None),
    ("ukraine", "Ukrainian forces", None),
    ("troop", "troops and a trooper", ["troops"]),
    ("train", "troops are training", ["training"]),
    ("Kyiv", "KYIV at night", ["KYIV"]),
    ("Zelenskyy", "ZELENSKYY said", ["ZELENSKYY"]),
    ("Zelensky", "Le président Zélensky", ["Zélensky"]),
    ("Zélensky", "President ZELENSKY", ["ZELENSKY"]),
    ("Zelensky", "Ze\u0301lensky in decomposed form", ["Ze\u0301lensky"]),
    ("kyiv", "ＫＹＩＶ in full width", ["ＫＹＩＶ"]),
    ("lodz", "Łódź and Straße", ["Łódź"]),
    ("strasse", "Łódź and Straße", ["Straße"]),
    ("drones", "dro\u00adnes with a soft hyphen", ["dro\u00adnes"]),
    ("north-korean", "North Korean troops", ["North Korean"]),
    ("+drone", "drone", ["drone"]),
]
PHRASES: list[Row] = [
    ('"north korean troops"', "11,000 North Korean troops are training", ["North Korean troops"]),
    ('"north korean troops"', "troops, North Korean and others", None),
    ('"north korean"', "North-Korean units", ["North-Korean"]),
    ('"north korean"', "north of the Korean border", None),
    ('"bodies of soldiers"', "the bodies of 501 soldiers", None),
    ('"north korean troop"', "North Korean troops", ["North Korean troops"]),
    ("“north korean”", "North Korean", ["North Korean"]),
    ('"north kor*"', "North Koreans", ["North Koreans"]),
    ('"drones"', "a drone", ["drone"]),
    ('"war dead"', "the war dead were returned", ["war dead"]),
]
WILDCARDS: list[Row] = [
    ("drone*", "a dronestrike", ["dronestrike"]),
    ("ukrain*", "Ukrainian troops in Ukraine", ["Ukrainian", "Ukraine"]),
    ("ukrain*", "the Ukr army", None),
    ("UAV*", "UAVs and uav", ["UAVs", "uav"]),
    ("rain*", "Ukraine", None),
    ("zel*", "Zélensky", ["Zélensky"]),
]
BOOLEANS: list[Row] = [
    ("drone missile", "drone only", None),
    ("drone missile", "missile and drone", ["missile", "drone"]),
    ("drone AND missile", "missile and drone", ["missile", "drone"]),
    ("drone OR missile", "a missile", ["missile"]),
    ("drone -missile", "drone and missile", None),
    ("drone -missile", "drone alone", ["drone"]),
    ("drone NOT missile", "drone and missile", None),
    ("drone –missile", "drone and missile", None),
    ("drone OR missile strike", "missile", None),
    ("drone OR missile strike", "drone", ["drone"]),
    ("(drone OR missile) strike", "missile strike", ["missile", "strike"]),
    ("drone OR (missile AND tank)", "drone missile", ["drone"]),
    ("drone NOT (missile OR tank)", "drone and tank", None),
    ("title:(drone) -summary:(drone)", "drone", ["drone"]),
]
NEAR: list[Row] = [
    ("bodies NEAR/3 soldiers", "bodies of 501 soldiers", ["bodies", "soldiers"]),
    ("bodies NEAR/2 soldiers", "bodies of 501 soldiers", None),
    ("soldiers NEAR/3 bodies", "bodies of 501 soldiers", ["bodies", "soldiers"]),
    ("bodies NEAR/1 soldiers", "soldiers' bodies", ["soldiers", "bodies"]),
    ('"north korean" NEAR/1 troops', "North Korean troops", ["North Korean", "troops"]),
    ('"north korean" NEAR/1 troops', "troops of North Korean origin", None),
    ('"north korean" NEAR/2 troops', "troops of North Korean origin", ["troops", "North Korean"]),
    ("drone NEAR/2 barrage", "a drone hit; later a drone barrage", ["drone", "barrage"]),
    (
        "(bodies OR remains) NEAR/4 (soldiers OR troops)",
        "remains were found, then bodies of soldiers and troops",
        ["bodies", "soldiers", "troops"],
    ),
    ("drone NEAR/1 drone", "one drone", ["drone"]),
    (
        "(drone* OR shahed*) NEAR/4 >=100",
        "135 Shahed drones overnight",
        ["135", "Shahed", "drones"],
    ),
]
NUMBERS: list[Row] = [
    (">=100", "135 drones", ["135"]),
    (">135", "135 drones", None),
    (">=135", "135 drones", ["135"]),
    ("<5", "5 tanks", None),
    ("<=5", "5 tanks", ["5"]),
    ("<5", "4.5 tanks", ["4.5"]),
    (">2", "2.5 tanks", ["2.5"]),
    (">=1000", "1,200 troops", ["1,200"]),
    (">=1,000", "1200 troops", ["1200"]),
    (">=11000", "11,000 North Korean troops", ["11,000"]),
    (">11000", "11,000 North Korean troops", None),
    (">=2000000", "2.5 million people", ["2.5 million"]),
    (">=2.5m", "2.5 million people", ["2.5 million"]),
    (">2.5m", "2.5 million people", None),
    (">=10000", "11 thousand troops", ["11 thousand"]),
    (">=1000000000", "a 1.2 billion dollar deal", ["1.2 billion"]),
    (">=1bn", "$5bn in aid", ["5bn"]),
    (">=1000", "10km away", None),
    (">=100", "in the 1990s", None),
    (">=100", "an F-16 jet", None),
    ("1200", "1,200 troops", ["1,200"]),
    ("1,200", "1200 troops", ["1200"]),
    (">=1000", "2.5 — million", ["2.5 — million"]),
]


def _marked(found: tuple[RuleMatch, ...], text: str) -> list[str] | None:
    if not found:
        return None
    (match,) = found
    return [text[hit.start : hit.end] for hit in match.hits]


@pytest.mark.parametrize(
    ("query", "text", "marked"),
    [
        pytest.param(*row, id=f"{row[0]} | {row[1]}")
        for row in WORDS + PHRASES + WILDCARDS + BOOLEANS + NEAR + NUMBERS
    ],
)
def test_query_row(query: str, text: str, marked: list[str] | None) -> None:
    """Each query matches exactly when SPEC §4 says and marks the words that made it match."""
    matcher = compile_rules({"rule": query})
    found = matcher.match_fields(text)
    assert _marked(found, text) == marked
    # The reference evaluator, written independently, agrees on every row.
    ref = Reference(text).evaluate(expand_all(parse_root(query), {}))
    assert ref.matched == (marked is not None)
    if found:
        assert set(found[0].hits) == ref.hits


def parse_root(query: str):  # type: ignore[no-untyped-def]
    from monitor.query import parse_query

    return parse_query(query).root


# (query, title, summary, content, expected hits as (field, word))
FIELD_ROWS = [
    ("title:(drone)", "Drone strike", "no words", "", [("title", "Drone")]),
    ("title:(drone)", "Nothing here", "a drone", "", None),
    ("title:drone", "Drone strike", "", "", [("title", "Drone")]),
    ("summary:(drone)", "a drone", "nothing", "", None),
    ("summary:(drone)", "x", "a drone", "", [("summary", "drone")]),
    ("summary:(drone)", "x", "", "a drone", [("content", "drone")]),
    (
        "drone",
        "drone",
        "drone",
        "drone",
        [("content", "drone"), ("summary", "drone"), ("title", "drone")],
    ),
    (
        "title:(drone) summary:(kyiv)",
        "Drone",
        "over Kyiv",
        "",
        [("summary", "Kyiv"), ("title", "Drone")],
    ),
    (
        "title:(drone OR kyiv) missile",
        "Kyiv",
        "",
        "missile",
        [("content", "missile"), ("title", "Kyiv")],
    ),
    ('"north korean"', "North", "Korean", "", None),
    ("bodies NEAR/5 soldiers", "bodies", "soldiers", "", None),
    ("summary:(drone -kyiv)", "Kyiv drone", "drone", "", [("summary", "drone")]),
    ("summary:(drone -kyiv)", "drone", "drone", "Kyiv", None),
]


@pytest.mark.parametrize(("query", "title", "summary", "content", "expected"), FIELD_ROWS)
def test_field_scopes(
    query: str, title: str, summary: str, content: str, expected: list[tuple[str, str]] | None
) -> None:
    """title: looks only in the title, summary: in summary and content, the default everywhere."""
    found = compile_rules({"rule": query}).match_fields(title, summary, content)
    texts = {"title": title, "summary": summary, "content": content}
    if expected is None:
        assert found == ()
        return
    (match,) = found
    assert [(h.field, texts[h.field][h.start : h.end]) for h in match.hits] == expected


SPEC_RULES = {
    "war-dead-repatriation": (
        '(bodies OR remains) NEAR/8 (soldiers OR troops OR defenders OR "war dead")'
    ),
    "north-korean-troops": '("north korean" OR DPRK) NEAR/5 (troops OR soldiers)',
    "drone-barrage": "@ukraine-war AND ((drone* OR shahed* OR UAV*) NEAR/4 (>=100 OR barrage))",
}
SPEC_TOPICS = {"ukraine-war": "ukrain* OR kyiv OR russia*"}
STORIES = [
    (
        "Russia returned to Ukraine the bodies of 501 soldiers killed in the war",
        "war-dead-repatriation",
        ("bodies", "soldiers"),
        ["bodies", "soldiers"],
    ),
    (
        "11,000 North Korean troops are training in Russia",
        "north-korean-troops",
        ('"north korean"', "troops"),
        ["North Korean", "troops"],
    ),
    (
        "Russia launched 135 Shahed drones overnight, one of the biggest single drone barrages",
        "drone-barrage",
        ("russia*", "drone*", "shahed*", ">=100", "barrage"),
        ["Russia", "135", "Shahed", "drones", "drone", "barrages"],
    ),
]


@pytest.mark.parametrize(("story", "rule", "terms", "marked"), STORIES)
def test_spec_example_rules(
    story: str, rule: str, terms: tuple[str, ...], marked: list[str]
) -> None:
    """Each SPEC example story alerts exactly its own example rule, with the words that show why."""
    found = compile_rules(SPEC_RULES, SPEC_TOPICS).match_fields(story)
    assert [m.rule for m in found] == [rule]
    assert found[0].terms == terms
    assert [story[h.start : h.end] for h in found[0].hits] == marked


def test_html_in_text_is_matched_after_conversion() -> None:
    """Markup goes through html_to_text first; hits then point into the plain text."""
    html = "<p>Russia launched <b>135</b> Shahed&nbsp;drones&#8212;a <i>barr&shy;age</i></p>"
    text = html_to_text(html)
    found = compile_rules(SPEC_RULES, SPEC_TOPICS).match_fields(text)
    assert [m.rule for m in found] == ["drone-barrage"]
    assert [text[h.start : h.end] for h in found[0].hits] == [
        "Russia",
        "135",
        "Shahed",
        "drones",
        "barrage",
    ]


def test_match_takes_an_entry_and_keeps_rule_order() -> None:
    """Matcher.match reads the entry's three fields and returns matches in rule order."""
    matcher = compile_rules({"z-last": "drone", "a-first": "kyiv", "never": "tank"})
    entry = Entry(
        id="1",
        title="Kyiv",
        summary="",
        content="a drone",
        link=None,
        published=datetime(2025, 1, 1, tzinfo=UTC),
    )
    assert matcher.rules == ("z-last", "a-first", "never")
    assert matcher.match(entry) == (
        RuleMatch("z-last", ("drone",), (Hit("content", 2, 7, "drone"),)),
        RuleMatch("a-first", ("kyiv",), (Hit("title", 0, 4, "kyiv"),)),
    )


def test_terms_follow_query_order_and_hits_field_then_start() -> None:
    """Terms are listed in the order the query first writes them; hits by (field, start)."""
    matcher = compile_rules({"r": "kyiv OR drone OR missile"})
    (match,) = matcher.match_fields("missile over Kyiv", "drone")
    assert match.terms == ("kyiv", "drone", "missile")
    assert [(h.field, h.term) for h in match.hits] == [
        ("summary", "drone"),
        ("title", "missile"),
        ("title", "kyiv"),
    ]


def test_offsets_survive_irregular_spacing() -> None:
    """Hits point at the right characters when text has runs of spaces, tabs and newlines."""
    text = "  first\t\tline \n\n second   drones  "
    (match,) = compile_rules({"r": "drone"}).match_fields(text)
    assert [text[h.start : h.end] for h in match.hits] == ["drones"]


def test_no_rules_and_no_text() -> None:
    """A matcher without rules, or an entry without words, matches nothing."""
    assert compile_rules({}).match_fields("drone") == ()
    assert compile_rules({"r": "drone"}).match_fields("", "", "") == ()
    assert compile_rules({"r": "drone"}).match_fields("— … !") == ()


def test_replanning_triggers_never_changes_results() -> None:
    """Re-choosing triggers from observed word frequencies never changes what matches."""
    rules = {
        "common-first": "said AND kyiv",
        "near": "(drone OR missile) NEAR/3 (kyiv OR >=100)",
        "phrase": '"north korean" troops',
        "either": "kyiv OR drone",
    }
    texts = [
        "officials said drones hit Kyiv",
        "he said 300 missile strikes",
        "North Korean troops said",
        "nothing to see",
    ] * 200
    fresh = compile_rules(rules)
    before = [fresh.match_fields(t) for t in texts[:4]]
    for text in texts:
        fresh.match_fields(text)
    after = [fresh.match_fields(t) for t in texts[:4]]
    assert before == after
    assert [len(m) for m in after] == [3, 1, 1, 0]


def test_matcher_is_built_for_each_rule_set() -> None:
    """compile_rules returns a Matcher holding the rule names in order."""
    matcher = compile_rules({"b": "drone", "a": "kyiv"})
    assert isinstance(matcher, Matcher)
    assert matcher.rules == ("b", "a")
