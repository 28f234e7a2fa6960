"""@topic references (SPEC §3 topics:): expansion, nesting, unknown and cyclic topics."""

from __future__ import annotations

import pytest

from monitor.errors import QuerySyntaxError, TopicError
from monitor.query import check_rules, compile_rules

TOPICS = {
    "ukraine-war": "ukrain* OR kyiv OR @russia",
    "russia": "russia* OR kremlin",
    "noise": "-sport -celebrity",
}


def test_topic_expands_in_place() -> None:
    """A rule using @topic matches what the topic's query matches, combined with the rest."""
    matcher = compile_rules({"r": "@ukraine-war drone"}, TOPICS)
    (match,) = matcher.match_fields("Drone over Kyiv")
    assert match.terms == ("kyiv", "drone")
    assert matcher.match_fields("Drone over Paris") == ()


def test_nested_topics_reach_the_innermost_terms() -> None:
    """A topic may use another topic; hits carry the inner topic's own term text."""
    (match,) = compile_rules({"r": "@ukraine-war"}, TOPICS).match_fields("The Kremlin said")
    assert match.terms == ("kremlin",)
    assert [(h.start, h.end) for h in match.hits] == [(4, 11)]


def test_a_topic_of_exclusions_is_a_building_block() -> None:
    """A topic that only excludes words works inside a rule that looks for a word."""
    matcher = compile_rules({"r": "drone @noise"}, TOPICS)
    assert len(matcher.match_fields("a drone show")) == 1
    assert matcher.match_fields("a drone at the sport final") == ()


def test_a_rule_made_only_of_exclusions_is_refused_at_the_reference() -> None:
    """A rule that is nothing but an exclusion topic is an error pointing at the @reference."""
    with pytest.raises(QuerySyntaxError) as caught:
        compile_rules({"r": "kyiv OR @noise"}, TOPICS)
    assert caught.value.column == 9
    assert "(inside @noise)" in caught.value.message
    assert caught.value.rule == "r"


def test_unknown_topic_names_rule_topic_and_suggestion() -> None:
    """A reference to a topic that does not exist is a TopicError naming both, with a suggestion."""
    with pytest.raises(TopicError) as caught:
        compile_rules({"desk": "@ukraine-wars drone"}, TOPICS)
    assert str(caught.value) == (
        "rule 'desk': unknown topic @ukraine-wars at column 1; did you mean @ukraine-war?"
    )


def test_cycles_are_reported_once_and_break_the_rules_using_them() -> None:
    """Topics referring to each other in a loop are one error, and each rule using them another."""
    topics = {"a": "x OR @b", "b": "y @a", "c": "@c", "fine": "z"}
    problems = check_rules({"r1": "@a", "r2": "@fine", "r3": "w @c"}, topics)
    assert [(name, str(err)) for name, err in problems] == [
        ("@a", "topics refer to each other in a cycle: @a -> @b -> @a"),
        ("@c", "topics refer to each other in a cycle: @c -> @c"),
        ("r1", "rule 'r1': topics refer to each other in a cycle: @a -> @b -> @a"),
        ("r3", "rule 'r3': topics refer to each other in a cycle: @c -> @c"),
    ]
    assert all(isinstance(err, TopicError) for _, err in problems)
    with pytest.raises(TopicError, match="cycle"):
        compile_rules({"r2": "@fine"}, topics)


def test_a_broken_topic_is_reported_under_its_own_name() -> None:
    """A syntax error in a topic is reported as '@name' with its column; rules using it fail."""
    problems = check_rules({"r": "@bad drone", "ok": "kyiv"}, {"bad": "(kyiv", "unused": "a AND"})
    assert [name for name, _ in problems] == ["@bad", "@unused", "r"]
    bad = problems[0][1]
    assert isinstance(bad, QuerySyntaxError)
    assert (bad.rule, bad.column, bad.query) == ("@bad", 6, "(kyiv")
    assert str(problems[2][1]) == "rule 'r': @bad at column 1 is itself invalid (see its error)"


def test_scopes_conflicting_across_a_topic_point_at_the_reference() -> None:
    """title:(@t) where the topic is summary-only can never match, and says so at the reference."""
    problems = check_rules({"r": "drone title:(@t)"}, {"t": "summary:(kyiv)"})
    ((name, err),) = problems
    assert name == "r"
    assert isinstance(err, QuerySyntaxError)
    assert err.column == 14
    assert err.message == "summary:(...) inside title:(...) can never match (inside @t)"


def test_valid_configuration_has_no_problems() -> None:
    """check_rules returns nothing exactly when compile_rules succeeds."""
    rules = {"a": "@ukraine-war drone*", "b": '"north korean" NEAR/5 troops'}
    assert check_rules(rules, TOPICS) == []
    assert compile_rules(rules, TOPICS).rules == ("a", "b")
