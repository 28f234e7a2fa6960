"""Durations, sizes, rate limits, ${VAR} expansion and scalar positions: tables in, values out."""

from __future__ import annotations

from datetime import timedelta

import pytest

from monitor.config import (
    RateLimit,
    format_duration,
    format_rate,
    format_size,
    parse_duration,
    parse_rate,
    parse_size,
)
from monitor.config.expand import expand, is_secret
from monitor.config.scalars import offset_position
from monitor.config.units import UnitError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("1d", timedelta(days=1)),
        ("2w", timedelta(weeks=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("1.5h", timedelta(minutes=90)),
        ("10M", timedelta(minutes=10)),
        ("90", timedelta(seconds=90)),
        (600, timedelta(minutes=10)),
        (0.5, timedelta(milliseconds=500)),
    ],
)
def test_parse_duration_reads_units(text: object, expected: timedelta) -> None:
    """Durations take s, m, h, d, w units, combined in decreasing order, or bare seconds."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        *("10 minutes", "5 min", "", "m", "30m1h", "1h1h", "-5m", "0s", 0, True, None, [1]),
        *("PT5M", "365001d", 86400000000000.0, "1e400"),
    ],
)
def test_parse_duration_rejects_what_it_cannot_read(text: object) -> None:
    """Words, misordered units, zero, negatives, over 1000 years and non-scalars are errors."""
    with pytest.raises(UnitError) as caught:
        parse_duration(text)
    assert "duration" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("512B", 512),
        ("512KB", 512_000),
        ("10MB", 10_000_000),
        ("10 MB", 10_000_000),
        ("1GB", 1_000_000_000),
        ("1KiB", 1024),
        ("1MiB", 1024**2),
        ("1GiB", 1024**3),
        ("1.5MB", 1_500_000),
        ("2048", 2048),
        (4096, 4096),
        ("10mb", 10_000_000),
    ],
)
def test_parse_size_reads_units(text: object, expected: int) -> None:
    """Sizes take decimal (KB, MB, GB) and binary (KiB, MiB, GiB) units, or bare bytes."""
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["10M", "ten MB", "0", "-1KB", "1.5", 2.5, True, None, "MB"])
def test_parse_size_rejects_what_it_cannot_read(text: object) -> None:
    """Unknown units, fractions of a byte, zero and non-scalars are errors."""
    with pytest.raises(UnitError):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20/min", RateLimit(20, timedelta(minutes=1))),
        ("5/s", RateLimit(5, timedelta(seconds=1))),
        ("100/h", RateLimit(100, timedelta(hours=1))),
        ("1000/day", RateLimit(1000, timedelta(days=1))),
        ("10/30s", RateLimit(10, timedelta(seconds=30))),
        (" 3 / minute ", RateLimit(3, timedelta(minutes=1))),
    ],
)
def test_parse_rate_reads_count_per_period(text: str, expected: RateLimit) -> None:
    """Rate limits are COUNT/PERIOD with a unit word or a duration as the period."""
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["20", "20/fortnight", "0/min", "x/min", "/min", 20, None])
def test_parse_rate_rejects_what_it_cannot_read(text: object) -> None:
    """A rate without a slash, a count or a known period is an error."""
    with pytest.raises(UnitError):
        parse_rate(text)


@pytest.mark.parametrize("text", ["30s", "10m", "1h30m", "3d", "1d1s", "1.5s", "2w", "36h"])
def test_format_duration_round_trips(text: str) -> None:
    """What format_duration writes, parse_duration reads back as the same duration."""
    assert parse_duration(format_duration(parse_duration(text))) == parse_duration(text)


def test_formatters_write_the_largest_exact_unit() -> None:
    """Sizes and rates are shown as an operator would write them."""
    assert format_duration(timedelta(minutes=90)) == "1h30m"
    assert format_duration(timedelta(hours=24)) == "24h"
    assert format_duration(timedelta(days=3)) == "3d"
    assert format_duration(timedelta(days=1, seconds=1)) == "24h1s"
    assert format_size(10_000_000) == "10MB"
    assert format_size(1024**3) == "1GiB"
    assert format_size(1500) == "1500B"
    assert format_rate(RateLimit(20, timedelta(minutes=1))) == "20/min"
    assert format_rate(RateLimit(10, timedelta(seconds=30))) == "10/30s"


# -- ${VAR} expansion -----------------------------------------------------------

ENV = {"HOST": "news.example.org", "EMPTY": "", "TOKEN": "s3cr3t-token"}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("plain text", "plain text"),
        ("https://${HOST}/rss", "https://news.example.org/rss"),
        ("${MISSING:-fallback}", "fallback"),
        ("${EMPTY:-used when empty}", "used when empty"),
        ("${HOST:-unused}", "news.example.org"),
        ("${EMPTY}", ""),
        ("${MISSING:-}", ""),
        ("costs $$5 and $HOST", "costs $5 and $HOST"),
        ("$$${HOST}", "$news.example.org"),
        (">=100 $", ">=100 $"),
        ("${TOKEN}${TOKEN}", "s3cr3t-tokens3cr3t-token"),
    ],
)
def test_expand_substitutes_variables_and_defaults(text: str, value: str) -> None:
    """${VAR} takes the environment, ${VAR:-default} the default when unset or empty, $$ a $."""
    result = expand(text, ENV)
    assert (result.value, result.missing, result.malformed) == (value, (), None)


def test_expand_reports_missing_and_malformed_references() -> None:
    """An unset variable without default is named; a broken ${...} is quoted back."""
    assert expand("a ${NOPE} b ${NOPE2}", ENV).missing == ("NOPE", "NOPE2")
    assert expand("${1BAD}", ENV).malformed == "${1BAD}"
    assert expand("${HOST:default}", ENV).malformed == "${HOST:default}"
    assert expand("${HOST", ENV).malformed == "${"


@pytest.mark.parametrize(
    ("path", "name", "value", "secret"),
    [
        (("targets", "slack"), "ANY", "abcdef", True),
        (("targets", "slack", "urls", 0), "ANY", "abcdef", True),
        (("feeds", 0, "url"), "FEED_HOST", "example.org", True),
        (("feeds", 0, "name"), "FEED_NAME", "World desk", False),
        (("poll", "interval"), "POLL", "10m", False),
        (("poll", "user_agent"), "UA", "news-monitor/1", False),
        (("state",), "STATE", "/var/lib/monitor.db", False),
        (("state",), "DB", "postgresql://u:p@db/monitor", True),
        (("log_level",), "MY_API_KEY", "debug", True),
        (("targets", "slack"), "ANY", "abc", False),
    ],
)
def test_is_secret_by_place_and_variable_name(
    path: tuple[object, ...], name: str, value: str, secret: bool
) -> None:
    """Values landing where credentials live, or from secret-named variables, are secrets."""
    assert is_secret(path, name, value) is secret


# -- positions inside scalars ----------------------------------------------------


@pytest.mark.parametrize(
    ("line", "style", "value", "offset", "column"),
    [
        ("q: a OR (b", "plain", "a OR (b", 5, 8),
        ("q: a OR (b", "plain", "a OR (b", 7, 10),
        ("q: 'it''s (x'", "'", "it's (x", 5, 10),
        ("q: 'it''s (x'", "'", "it's (x", 7, 12),
        ('q: "\\u00e9t\\u00e9 ("', '"', "été (", 2, 11),
        ('q: "a\\"b ("', '"', 'a"b (', 4, 9),
    ],
)
def test_offset_position_in_one_line_scalars(
    line: str, style: str, value: str, offset: int, column: int
) -> None:
    """A character of a plain or quoted scalar maps to its column in the source line."""
    assert offset_position([line], 0, 3, style, value, offset) == (0, column)


def test_offset_position_in_literal_block() -> None:
    """A character of a | block maps to its own line, past the block's indentation."""
    lines = ["query: |", "  drones AND", "  (shahed OR", "next: 1"]
    value = "drones AND\n(shahed OR\n"
    assert offset_position(lines, 0, 7, "|", value, 11) == (2, 2)
    assert offset_position(lines, 0, 7, "|", value, len(value)) == (2, 12)


def test_offset_position_gives_up_when_source_differs() -> None:
    """Folded blocks and plain scalars spread over lines have no exact position."""
    assert offset_position(["q: a OR", "  b"], 0, 3, "plain", "a OR b", 5) is None
    assert offset_position(["q: >", "  a b"], 0, 3, ">", "a b\n", 1) is None
    assert offset_position(["q: 'a"], 0, 3, "'", "a b", 1) is None
