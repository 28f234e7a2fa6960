"""Adaptive polling: busy feeds faster, slower only when a feed asks, back to normal when quiet."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemon_proc import Item, rss, run_cli, status_json
from feedserver import FeedServer

from monitor.cadence import Cadence, after_change, after_no_change, publishing_gap, requested
from monitor.decide import FeedSpec, decide_entries, decide_unchanged
from monitor.model import Entry, FeedForUpdate, FeedStatus, Fetched, ParsedFeed, StoreLookup
from monitor.parse import parse_feed

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
CADENCE = Cadence(interval=10 * MIN, min_interval=2 * MIN, max_interval=360 * MIN)


def every(gap: timedelta, count: int, *, start: datetime = NOW) -> list[datetime | None]:
    return [start - gap * i for i in range(count)]


@pytest.mark.parametrize(
    ("published", "asked", "expected"),
    [
        # No recent entries, or too few to show a pace: the configured interval.
        ([], None, 10 * MIN),
        (every(MIN, 2), None, 10 * MIN),
        ([None, None, None], None, 10 * MIN),
        (every(3 * MIN, 5, start=NOW - timedelta(days=2)), None, 10 * MIN),
        # An entry every 8 minutes: polled every 4.
        (every(8 * MIN, 6), None, 4 * MIN),
        # An entry every minute: not faster than min_interval.
        (every(MIN, 30), None, 2 * MIN),
        # An entry an hour: never slower than the interval from the pace alone.
        (every(60 * MIN, 10), None, 10 * MIN),
        # The feed asks for 60 minutes: honoured, even though it is busy.
        (every(8 * MIN, 6), 60 * MIN, 60 * MIN),
        # It asks for less than the pace gives: the pace stands.
        (every(8 * MIN, 6), MIN, 4 * MIN),
        # It asks for a week: capped at max_interval.
        ([], timedelta(days=7), 360 * MIN),
    ],
)
def test_interval_after_a_new_body(
    published: list[datetime | None], asked: timedelta | None, expected: timedelta
) -> None:
    """The pace of recent entries sets the interval, within bounds; a feed's ask can lengthen it."""
    assert after_change(CADENCE, published, asked, NOW) == expected


@pytest.mark.parametrize(
    ("previous", "asked", "expected"),
    [
        (None, None, 10 * MIN),
        (2 * MIN, None, 2.5 * MIN),  # stretched by a quarter per quiet poll...
        (9 * MIN, None, 10 * MIN),  # ...back up to the interval, not beyond
        (60 * MIN, None, 10 * MIN),
        (4 * MIN, 30 * MIN, 30 * MIN),  # a 304's max-age is honoured too
    ],
)
def test_interval_after_nothing_new(
    previous: timedelta | None, asked: timedelta | None, expected: timedelta
) -> None:
    """Quiet polls relax a fast feed back towards its interval."""
    assert after_no_change(CADENCE, previous, asked) == expected


@pytest.mark.parametrize(
    ("cache_control", "ttl", "expected"),
    [
        ("", None, None),
        ("max-age=600", None, 10 * MIN),
        ("public, max-age=300, s-maxage=900", None, 15 * MIN),
        ('max-age="120"', None, 2 * MIN),
        ("max-age=0", None, None),
        ("no-cache, max-age=600", None, None),
        ("no-store", 30 * MIN, 30 * MIN),
        ("max-age=60", 30 * MIN, 30 * MIN),
        ("max-age=abc", None, None),
    ],
)
def test_what_a_feed_asks_for(
    cache_control: str, ttl: timedelta | None, expected: timedelta | None
) -> None:
    """max-age and <ttl>, the longer wins; no-cache, no-store and zero ask for nothing."""
    headers = {"cache-control": cache_control} if cache_control else {}
    assert requested(headers, ttl) == expected


def test_publishing_gap_ignores_future_and_old_entries() -> None:
    """Only entries of the last day count; a date in the future is a feed's mistake."""
    published = [NOW + timedelta(hours=5), *every(10 * MIN, 4), NOW - timedelta(days=3)]
    assert publishing_gap(published, NOW) == 10 * MIN


def test_rss_ttl_is_read_in_minutes() -> None:
    """<ttl>60</ttl> is an hour; junk and zero are ignored."""

    def ttl(value: str) -> timedelta | None:
        body = (
            f'<rss version="2.0"><channel><title>t</title><ttl>{value}</ttl>'
            "<item><title>x</title></item></channel></rss>"
        ).encode()
        return parse_feed(body, {}, "https://a.example/rss").ttl

    assert ttl("60") == 60 * MIN
    assert ttl(" 15 ") == 15 * MIN
    assert ttl("0") is None
    assert ttl("soon") is None


SPEC = FeedSpec("https://a.example/rss", "A", 10 * MIN, (), jitter=0.0, cadence=CADENCE)
FEED = FeedForUpdate(
    url=SPEC.url,
    fetch_url=SPEC.url,
    title="A",
    etag=None,
    last_modified=None,
    body_hash="h0",
    status=FeedStatus.OK,
    error_streak=0,
    last_success=NOW - 10 * MIN,
    next_due=NOW,
)


def fetched(headers: dict[str, str], *, not_modified: bool = False) -> Fetched:
    status = 304 if not_modified else 200
    return Fetched(SPEC.url, status, not_modified, b"", headers, None, None, None, 0)


def test_deciding_schedules_a_busy_feed_sooner_and_remembers_the_interval() -> None:
    """With adaptive polling on, the next poll follows the pace and the choice is stored."""
    entries = tuple(Entry(str(i), f"story {i}", "", "", None, NOW - 6 * MIN * i) for i in range(5))
    lookup = StoreLookup(frozenset(), {})
    intent = decide_entries(
        FEED, SPEC, fetched({}), ParsedFeed("A", None, entries), "h1", lookup,
        lambda e: [], NOW, random.Random(1),
    )  # fmt: skip
    assert intent.poll_interval == 3 * MIN
    assert intent.next_due == NOW + 3 * MIN
    # Then a 304 with nothing new: a quarter longer.
    later = decide_unchanged(
        replace(FEED, poll_interval=intent.poll_interval),
        SPEC,
        fetched({}, not_modified=True),
        NOW,
        random.Random(1),
    )
    assert later.poll_interval == 3.75 * MIN


def test_without_adaptive_polling_the_interval_is_fixed() -> None:
    """With adaptive polling off, ttl and max-age change nothing and nothing is stored."""
    spec = replace(SPEC, cadence=None)
    parsed = ParsedFeed("A", None, (), ttl=60 * MIN)
    intent = decide_entries(
        FEED, spec, fetched({"cache-control": "max-age=3600"}), parsed, "h1",
        StoreLookup(frozenset(), {}), lambda e: [], NOW, random.Random(1),
    )  # fmt: skip
    assert intent.poll_interval is None and intent.next_due == NOW + 10 * MIN


def test_run_once_schedules_feeds_by_what_they_ask_and_how_busy_they_are(tmp_path: Path) -> None:
    """Through the real `run --once`: a feed asking max-age=2h is next due in 2 h, a feed
    publishing every 4 minutes in 2 min (min_interval), a plain one at its interval."""
    now = datetime.now(UTC)
    busy = [Item(f"b{i}", f"Story {i}", None, now - timedelta(minutes=4 * i)) for i in range(8)]
    with FeedServer() as server:
        server.add("/asks.xml", rss("Asks", busy[:1]), headers={"Cache-Control": "max-age=7200"})
        server.add("/busy.xml", rss("Busy", busy))
        server.add("/plain.xml", rss("Plain", busy[:1]))
        config = tmp_path / "monitor.yaml"
        feeds = "".join(
            f"  - url: {server.url(p)}\n" for p in ("/asks.xml", "/busy.xml", "/plain.xml")
        )
        config.write_text(
            f"state: {tmp_path / 'state.db'}\n"
            "poll: {interval: 10m, jitter: 0, adaptive: true, min_interval: 2m}\n"
            f"feeds:\n{feeds}"
            "targets: {terminal: 'console://'}\n"
            "rules: [{name: r, query: nothing-matches-this, notify: [terminal]}]\n"
        )
        done = run_cli(config, "run", "--once")
        assert done.returncode == 0, done.stderr
    due = {
        f["url"].rsplit("/", 1)[1]: datetime.fromisoformat(f["next_due"]) - now
        for f in status_json(config)["feeds"]
    }
    assert timedelta(minutes=119) < due["asks.xml"] < timedelta(minutes=122)
    assert timedelta(minutes=1) < due["busy.xml"] < timedelta(minutes=4)
    assert timedelta(minutes=9) < due["plain.xml"] < timedelta(minutes=12)
