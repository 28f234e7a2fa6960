"""Parsing rule queries: operator precedence, and errors that say where and what was expected."""

from __future__ import annotations

import pytest

from monitor.errors import QueryError, QuerySyntaxError
from monitor.query import compile_rules, parse_query
from monitor.query.nodes import (
    And,
    Compare,
    Near,
    Node,
    Not,
    Or,
    Phrase,
    Prefix,
    Scope,
    TopicRef,
    Word,
)


def shape(node: Node) -> str:
    """A compact rendering of a tree, to compare structure in tests."""
    if isinstance(node, Word):
        return node.key
    if isinstance(node, Prefix):
        return node.prefix + "*"
    if isinstance(node, Phrase):
        return '"' + " ".join(shape(p) for p in node.parts) + '"'
    if isinstance(node, Compare):
        return f"{node.op}{node.value:g}"
    if isinstance(node, And):
        return "(" + " AND ".join(shape(c) for c in node.children) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(shape(c) for c in node.children) + ")"
    if isinstance(node, Not):
        return "NOT " + shape(node.child)
    if isinstance(node, Near):
        return f"({shape(node.left)} NEAR/{node.distance} {shape(node.right)})"
    if isinstance(node, Scope):
        return f"{node.field}:{shape(node.child)}"
    assert isinstance(node, TopicRef)
    return "@" + node.name


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("drones", "drone"),
        ("a b c", "(a AND b AND c)"),
        ("a AND b OR c", "((a AND b) OR c)"),
        ("a OR b c", "(a OR (b AND c))"),
        ("(a OR b) c", "((a OR b) AND c)"),
        ("a -b NOT c", "(a AND NOT b AND NOT c)"),
        ("a NEAR/3 b c", "((a NEAR/3 b) AND c)"),
        ("a NEAR/3 b NEAR/2 c", "((a NEAR/3 b) NEAR/2 c)"),
        ('"North Korean" OR DPRK', '("north korean" OR dprk)'),
        ("north-korean", '"north korean"'),
        ("U.S.", '"u s"'),
        ("ukrain* kyiv", "(ukrain* AND kyiv)"),
        ("north-kor*", '"north kor*"'),
        (">=100 <2.5m", "(>=100 AND <2.5e+06)"),
        (">= 1,200", ">=1200"),
        ("title:(a OR b) summary:c", "(title:(a OR b) AND summary:c)"),
        ("Title:a", "title:a"),
        ("@ukraine-war drone", "(@ukraine-war AND drone)"),
        ("strikes near Kyiv", "(strike AND near AND kyiv)"),
        ("Breaking: drone", "(break AND drone)"),
        ("“war dead” –sport", '("war dead" AND NOT sport)'),
    ],
)
def test_precedence_and_forms(query: str, expected: str) -> None:
    """Operators bind OR < AND < NEAR < NOT and fields; punctuated bare words become phrases."""
    assert shape(parse_query(query).root) == expected


# (query, 1-based column, part of the message)
ERRORS = [
    ("(drone OR missile", 18, "expected ')' to close '(' at column 1"),
    ("a (b", 5, "expected ')' to close '(' at column 3"),
    ("drone NEAR missile", 7, "NEAR needs a distance, e.g. NEAR/5"),
    ("drone NEAR/0 missile", 7, "NEAR distance must be between 1 and 1000"),
    ("drone NEAR/3", 13, "after NEAR/3, found the end of the query"),
    ("NEAR/3 x", 1, "NEAR/3 needs a term on its left"),
    ("drone near/5 missile", 7, "write NEAR in capitals: NEAR/5"),
    ("drone AND", 10, "after AND, found the end of the query"),
    ("drone AND (", 12, "after '(', found the end of the query"),
    ("(", 2, "after '(', found the end of the query"),
    ("drone AND OR missile", 11, "after AND, found OR"),
    ("OR drone", 1, "OR needs a term on its left"),
    ("drone)", 6, "unexpected ')': no '(' is open"),
    ("()", 1, "empty parentheses"),
    ('"north korean', 14, "expected '\"' to close the phrase opened at column 1"),
    ('""', 1, "empty phrase"),
    ("dr*ne", 3, "'*' may only end a word"),
    ("*", 1, "'*' needs letters before it"),
    ('"a * b"', 4, "'*' must directly follow the letters"),
    (">=abc", 3, "expected a number after '>='"),
    ("drone >", 8, "expected a number after '>'"),
    ("<0", 1, "never matches"),
    ("drone or missile", 7, "'or' is not an operator: write OR in capitals"),
    ("drone and missile", 7, "'and' is not an operator: write AND in capitals"),
    ("Not drone", 1, "'Not' is not an operator: write NOT in capitals"),
    ("drone && missile", 7, "write AND"),
    ("drone | missile", 7, "write OR"),
    ("#", 1, "has no letters or digits"),
    (
        "tilte:(drone)",
        1,
        "unknown field 'tilte' (fields are title: and summary:); did you mean title:",
    ),
    ("title:", 7, "after title:, found the end of the query"),
    ("@", 1, "expected a topic name after '@'"),
    ("drone -", 7, "expected a term right after '-'"),
    ("", 1, "empty query"),
    ("   ", 1, "empty query"),
    ("NOT drone", 1, "the query only excludes words"),
    ("-drone -missile", 1, "the query only excludes words"),
    ("drone OR -missile", 10, "this OR branch only excludes words"),
    ("drone NEAR/3 -missile", 7, "NEAR needs a word to look for on its right"),
    # NOT binds to the next term only, so its side of NEAR has nothing to look for.
    ("NOT a NEAR/2 b OR c", 7, "NEAR needs a word to look for on its left"),
    (
        "title:(drone) NEAR/3 summary:(missile)",
        15,
        "can never be in the same field (title and summary)",
    ),
    ("title:(summary:(drone))", 8, "summary:(...) inside title:(...) can never match"),
]


@pytest.mark.parametrize(("query", "column", "message"), ERRORS)
def test_syntax_errors_name_the_column_and_what_was_expected(
    query: str, column: int, message: str
) -> None:
    """A malformed or unworkable query is refused with its 1-based column and a useful message."""
    with pytest.raises(QuerySyntaxError) as caught:
        parse_query(query)
    assert caught.value.column == column
    assert message in caught.value.message
    assert caught.value.query == query
    assert str(caught.value) == f"column {column}: {caught.value.message}"


def test_compile_names_the_rule() -> None:
    """An error found while compiling rules carries the rule's name in .rule and in its text."""
    with pytest.raises(QuerySyntaxError) as caught:
        compile_rules({"fine": "drone", "broken": "drone AND"})
    assert caught.value.rule == "broken"
    assert str(caught.value).startswith("rule 'broken', column 10: ")


def test_check_reports_every_error_at_once() -> None:
    """check_rules lists each invalid rule with its own error, in rule order, and no valid ones."""
    problems = check_rules_for(
        {"a": "drone", "b": "(x", "c": "kyiv", "d": "NOT y", "e": "z NEAR 3"}
    )
    assert [(name, err.column) for name, err in problems] == [("b", 3), ("d", 1), ("e", 3)]


def check_rules_for(rules: dict[str, str]) -> list[tuple[str, QuerySyntaxError]]:
    from monitor.query import check_rules

    found = check_rules(rules)
    assert all(isinstance(err, QuerySyntaxError) for _, err in found)
    return [(name, err) for name, err in found if isinstance(err, QuerySyntaxError)]


def test_a_query_that_is_not_text_is_an_error() -> None:
    """A non-string query (a YAML list, say) is a clear QueryError, not a crash."""
    with pytest.raises(QueryError, match="must be text"):
        compile_rules({"r": ["drone"]})  # type: ignore[dict-item]
