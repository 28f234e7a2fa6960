"""The pure deciding core: new entries, story identity, first-fetch and age guards, backoff."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from monitor.decide import (
    FeedSpec,
    RuleSpec,
    backoff_delay,
    decide_entries,
    decide_failure,
    decide_unchanged,
    reissued,
    too_old,
)
from monitor.errors import FetchError, HTTPStatusError
from monitor.model import (
    Entry,
    FeedForUpdate,
    FeedStatus,
    Fetched,
    Hit,
    ParsedFeed,
    RuleMatch,
    StoreLookup,
    StoryRef,
)
from monitor.story import canonical_link, story_keys, title_key

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
RULE = RuleSpec("drones", ("slack", "mail"))
SPEC = FeedSpec(
    url="https://a.example/rss", name="A", interval=timedelta(minutes=10), rules=(RULE,)
)


def feed(*, first: bool = False, streak: int = 0) -> FeedForUpdate:
    return FeedForUpdate(
        url=SPEC.url,
        fetch_url=SPEC.url,
        title="A feed",
        etag='"e1"',
        last_modified=None,
        body_hash="h0",
        status=FeedStatus.NEW if first else FeedStatus.OK,
        error_streak=streak,
        last_success=None if first else NOW - timedelta(minutes=10),
        next_due=NOW,
    )


def entry(
    eid: str, title: str, link: str | None = None, age: timedelta = timedelta(hours=1)
) -> Entry:
    return Entry(
        id=eid,
        title=title,
        summary=f"{title} summary",
        content="",
        link=link,
        published=NOW - age,
    )


def drone_matcher(e: Entry) -> list[RuleMatch]:
    """Matches entries whose title holds 'drone' (a stand-in query at the matcher seam)."""
    at = e.title.find("drone")
    if at < 0:
        return []
    return [RuleMatch("drones", ("drone",), (Hit("title", at, at + 5, "drone"),))]


FETCHED = Fetched(
    url=SPEC.url,
    status=200,
    not_modified=False,
    body=b"<rss/>",
    headers={},
    etag='"e2"',
    last_modified=None,
    permanent_redirect=None,
    elapsed=0.1,
)
EMPTY = StoreLookup(frozenset(), {})


def decide(entries: list[Entry], lookup: StoreLookup = EMPTY, **kw: object):  # type: ignore[no-untyped-def]
    parsed = ParsedFeed("A feed", None, tuple(entries))
    return decide_entries(
        kw.get("feed", feed()),  # type: ignore[arg-type]
        kw.get("spec", SPEC),  # type: ignore[arg-type]
        FETCHED,
        parsed,
        "h1",
        lookup,
        drone_matcher,
        NOW,
        random.Random(1),
    )


def test_a_silent_first_fetch_runs_no_rule_and_a_backfilled_one_does() -> None:
    """Matching is skipped when a first fetch can alert nothing (it is the costly step)."""
    asked: list[str] = []

    def counting(e: Entry) -> list[RuleMatch]:
        asked.append(e.id)
        return drone_matcher(e)

    entries = (entry("1", "drone"), entry("2", "weather"))
    for spec, expected in ((SPEC, []), (replace(SPEC, backfill=True), ["1", "2"])):
        asked.clear()
        intent = decide_entries(
            feed(first=True), spec, FETCHED, ParsedFeed("A", None, entries), "h1", EMPTY,
            counting, NOW, random.Random(1),
        )  # fmt: skip
        assert asked == expected
        assert len(intent.seen) == 2 and len(intent.alerts) == len(expected) // 2


def test_an_entry_with_only_content_gives_its_alert_that_text_and_its_marks() -> None:
    """A content-only entry (JSON Feed, some Atom) alerts with the content as excerpt text."""
    text = "Air defence says a drone was shot down over the city overnight."
    at = text.index("drone")

    def in_content(e: Entry) -> list[RuleMatch]:
        hit = Hit("content", at, at + 5, "drone")
        return [RuleMatch("drones", ("drone",), (hit,))]

    only_content = replace(entry("1", "Night attack"), summary="", content=text)
    intent = decide_entries(
        feed(), SPEC, FETCHED, ParsedFeed("A", None, (only_content,)), "h1", EMPTY,
        in_content, NOW, random.Random(1),
    )  # fmt: skip
    [alert] = intent.alerts
    assert alert.summary == text
    assert alert.hits == (Hit("summary", at, at + 5, "drone"),)


def test_new_matching_entry_alerts_every_target_of_its_rule() -> None:
    """A new entry that matches a rule becomes one alert carrying the rule's targets."""
    intent = decide([entry("1", "135 drone strikes", "https://a.example/1"), entry("2", "Weather")])
    assert [s.entry_id for s in intent.seen] == ["1", "2"]
    assert [(a.rule, a.title, a.targets) for a in intent.alerts] == [
        ("drones", "135 drone strikes", ("slack", "mail"))
    ]
    assert intent.alerts[0].feed == "A"
    assert intent.etag == '"e2"' and intent.body_hash == "h1" and intent.success


def test_entries_already_seen_are_skipped() -> None:
    """Entry ids the store already holds for this feed are neither recorded nor alerted."""
    intent = decide([entry("1", "drone one")], StoreLookup(frozenset({"1"}), {}))
    assert intent.seen == () and intent.alerts == ()


def test_first_fetch_records_without_alerting_unless_backfill() -> None:
    """SPEC §5 no flood: the first fetch is silent; backfill on the feed or rule alerts."""
    entries = [entry("1", "drone one", "https://a.example/1")]
    assert decide(entries, feed=feed(first=True)).alerts == ()
    assert len(decide(entries, feed=feed(first=True)).seen) == 1
    backfill_feed = FeedSpec(SPEC.url, "A", SPEC.interval, (RULE,), backfill=True)
    assert len(decide(entries, feed=feed(first=True), spec=backfill_feed).alerts) == 1
    backfill_rule = FeedSpec(SPEC.url, "A", SPEC.interval, (RuleSpec("drones", ("x",), True),))
    assert len(decide(entries, feed=feed(first=True), spec=backfill_rule).alerts) == 1


def test_entries_older_than_max_age_never_alert() -> None:
    """An entry published before now - max_age is recorded, not alerted; undated entries alert."""
    old = entry("1", "drone old", age=timedelta(days=3, seconds=1))
    undated = Entry("2", "drone undated", "", "", None, None)
    intent = decide([old, undated])
    assert len(intent.seen) == 2
    assert [a.title for a in intent.alerts] == ["drone undated"]


def test_same_story_in_one_batch_alerts_once_and_lists_the_other_as_source() -> None:
    """Two entries with one canonical link are one story: one alert, one extra source."""
    intent = decide(
        [
            entry("1", "drone attack on port", "https://a.example/x?utm_source=rss"),
            entry("2", "drone attack on port (updated)", "http://www.a.example/x"),
        ]
    )
    assert len(intent.alerts) == 1
    assert [(s.rule, s.story) for s in intent.sources] == [("drones", intent.alerts[0].story)]


def test_story_already_alerted_adds_a_source_instead_of_alerting() -> None:
    """A story the store knows already alerted for the rule is not alerted again (guid churn)."""
    e = entry("new-guid", "drone attack on port", "https://a.example/x")
    link_key = story_keys(e)[0][0]
    lookup = StoreLookup(frozenset(), {link_key: StoryRef("story-1", frozenset({"drones"}))})
    intent = decide([e], lookup)
    assert intent.alerts == ()
    assert [(s.story, s.feed_url) for s in intent.sources] == [("story-1", SPEC.url)]
    assert intent.seen[0].story == "story-1"


def test_known_story_alerts_for_a_rule_that_has_not_alerted_yet() -> None:
    """A known story newer than the feed's previous fetch alerts a rule that never alerted on it."""
    e = entry("g", "drone attack on port", "https://a.example/x", age=timedelta(minutes=5))
    lookup = StoreLookup(frozenset(), {story_keys(e)[0][0]: StoryRef("s", frozenset({"other"}))})
    assert [a.story for a in decide([e], lookup).alerts] == ["s"]


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (timedelta(minutes=5), 1),  # published after the previous fetch: news
        (timedelta(minutes=10), 0),  # exactly at the previous fetch: could have been shown
        (timedelta(hours=1), 0),  # before it: a re-issue under a new guid
        (None, 0),  # undated: nothing says it is news
    ],
)
def test_reissue_of_a_known_story_that_never_alerted_stays_silent(
    age: timedelta | None, expected: int
) -> None:
    """Guid churn after a silent first fetch: a known, unalerted story alerts only if newer."""
    e = entry("new-guid", "drone attack on port", "https://a.example/x")
    if age is None:
        e = Entry(e.id, e.title, e.summary, "", e.link, None)
    else:
        e = entry("new-guid", "drone attack on port", "https://a.example/x", age=age)
    lookup = StoreLookup(frozenset(), {story_keys(e)[1][0]: StoryRef("s", frozenset())})
    intent = decide([e], lookup)
    assert len(intent.alerts) == expected
    assert [s.story for s in intent.seen] == ["s"] and intent.sources == ()


def test_story_first_seen_in_this_batch_is_not_a_reissue() -> None:
    """Two new entries of one story in one poll: the second can alert a rule the first missed."""
    first = entry("1", "Port attack in the night", "https://a.example/x", age=timedelta(hours=2))
    second = entry("2", "drone attack on port", "https://a.example/x", age=timedelta(hours=2))
    intent = decide([first, second])
    assert [(a.title, a.story) for a in intent.alerts] == [
        ("drone attack on port", intent.seen[0].story)
    ]


@pytest.mark.parametrize(
    ("published_ago", "previous_ago", "old"),
    [
        # (published before now, previous successful fetch before now, too old?)
        (timedelta(hours=1), timedelta(minutes=10), False),  # fresh
        (timedelta(hours=23), timedelta(minutes=10), False),  # late, within the grace
        (timedelta(hours=25), timedelta(minutes=10), True),  # archive: a day before last fetch
        (timedelta(days=2, hours=23), timedelta(days=2), False),  # feed was down for two days
        (timedelta(days=3, hours=1), timedelta(days=3), True),  # beyond max_age all the same
        (timedelta(days=2), None, False),  # first fetch: only max_age applies
        (timedelta(days=3, seconds=1), None, True),
        (None, timedelta(minutes=10), False),  # undated: never judged by age
    ],
)
def test_too_old_covers_max_age_and_republished_archives(
    published_ago: timedelta | None, previous_ago: timedelta | None, old: bool
) -> None:
    """Entries older than max_age, or dated a day before the previous fetch, are too old."""
    published = NOW - published_ago if published_ago is not None else None
    previous = NOW - previous_ago if previous_ago is not None else None
    assert too_old(published, previous, SPEC, NOW) is old


@pytest.mark.parametrize(
    ("published_ago", "previous_ago", "expected"),
    [
        (timedelta(minutes=5), timedelta(minutes=10), False),
        (timedelta(minutes=10), timedelta(minutes=10), True),
        (timedelta(hours=2), timedelta(minutes=10), True),
        (timedelta(hours=2), None, False),  # first fetch with backfill: nothing to compare
        (None, timedelta(minutes=10), True),
        (None, None, True),
    ],
)
def test_reissued_compares_with_the_previous_fetch(
    published_ago: timedelta | None, previous_ago: timedelta | None, expected: bool
) -> None:
    """A known story's new entry is a re-issue when undated or dated before the previous fetch."""
    published = NOW - published_ago if published_ago is not None else None
    previous = NOW - previous_ago if previous_ago is not None else None
    assert reissued(published, previous) is expected


def test_republished_archive_is_recorded_without_alerting() -> None:
    """A feed dumping 300 dated archive entries alerts only its genuinely new entry."""
    archive = [
        entry(f"a{n}", f"drone archive story number {n}", f"https://a.example/a/{n}", age=age)
        for n, age in enumerate(timedelta(hours=26 + n) for n in range(300))
    ]
    fresh = entry("new", "drone strike reported this morning", "https://a.example/new")
    intent = decide([fresh, *archive])
    assert len(intent.seen) == 301
    assert [a.title for a in intent.alerts] == ["drone strike reported this morning"]


def test_archive_grace_is_a_feed_policy_following_max_age() -> None:
    """A longer archive_grace, or a wider max_age (a third of it), lets older late entries in."""
    late = entry("1", "drone late story arrives", "https://a.example/l", age=timedelta(hours=30))
    assert decide([late]).alerts == ()
    relaxed = FeedSpec(SPEC.url, "A", SPEC.interval, (RULE,), archive_grace=timedelta(days=2))
    assert len(decide([late], spec=relaxed).alerts) == 1
    wide = FeedSpec(SPEC.url, "A", SPEC.interval, (RULE,), max_age=timedelta(days=9))
    assert len(decide([late], spec=wide).alerts) == 1
    strict = FeedSpec(SPEC.url, "A", SPEC.interval, (RULE,), max_age=timedelta(days=9),
                      archive_grace=timedelta(hours=1))  # fmt: skip
    assert decide([late], spec=strict).alerts == ()


def test_rules_outside_the_feed_scope_do_not_alert() -> None:
    """Only rules listed in the feed's spec (its scope) can alert on its entries."""
    spec = FeedSpec(SPEC.url, "A", SPEC.interval, rules=())
    assert decide([entry("1", "drone")], spec=spec).alerts == ()


def test_failure_backs_off_exponentially_up_to_the_cap() -> None:
    """Each failure doubles the wait from the interval, capped at max_backoff, jitter aside."""
    rng = random.Random(0)
    spec = FeedSpec(SPEC.url, None, timedelta(minutes=10), (), jitter=0.0)
    delays = [backoff_delay(spec, n, None, rng) for n in (1, 2, 3, 10, 100)]
    assert delays == [
        timedelta(minutes=10),
        timedelta(minutes=20),
        timedelta(minutes=40),
        timedelta(hours=6),
        timedelta(hours=6),
    ]


def test_retry_after_is_honoured_when_longer_than_the_backoff() -> None:
    """A server's Retry-After extends the wait; absurd values are capped at a day."""
    spec = FeedSpec(SPEC.url, None, timedelta(minutes=10), (), jitter=0.0)
    rng = random.Random(0)
    assert backoff_delay(spec, 1, 3600, rng) == timedelta(hours=1)
    assert backoff_delay(spec, 1, 10**9, rng) == timedelta(days=1)


def test_failure_records_error_and_streak() -> None:
    """A failed fetch keeps validators, raises the streak and stores the message."""
    intent = decide_failure(
        feed(streak=2), SPEC, FetchError("connection refused"), NOW, random.Random(0)
    )
    assert intent.status is FeedStatus.ERROR
    assert intent.error_streak == 3 and intent.error == "connection refused"
    assert intent.next_due > NOW + timedelta(minutes=30)


def test_gone_disables_the_feed() -> None:
    """HTTP 410 marks the feed gone, with a warning in its error."""
    error = HTTPStatusError(410, "HTTP 410 Gone")
    intent = decide_failure(feed(), SPEC, error, NOW, random.Random(0))
    assert intent.status is FeedStatus.GONE and "gone" in (intent.error or "")


@pytest.mark.parametrize("not_modified", [True, False])
def test_unchanged_body_keeps_validators_and_resets_streak(not_modified: bool) -> None:
    """A 304, or the same body again, keeps stored validators and schedules the next poll."""
    fetched = Fetched(
        SPEC.url, 304 if not_modified else 200, not_modified, b"", {}, None, None, None, 0
    )
    intent = decide_unchanged(feed(streak=4), SPEC, fetched, NOW, random.Random(0))
    assert intent.etag == '"e1"' and intent.body_hash == "h0" and intent.error_streak == 0
    assert timedelta(minutes=9) <= intent.next_due - NOW <= timedelta(minutes=11)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://www.example.org/a/?utm_source=rss&id=3#top", "http://example.org/a?id=3"),
        ("https://example.org/a?b=2&a=1", "https://EXAMPLE.org/a?a=1&b=2&fbclid=x"),
        ("https://example.org:443/a", "https://example.org/a/"),
    ],
)
def test_canonical_links_ignore_tracking_scheme_and_www(a: str, b: str) -> None:
    """Links differing only by tracking parameters, scheme, www., order or slash are equal."""
    assert canonical_link(a) == canonical_link(b)


def test_canonical_links_keep_meaningful_differences() -> None:
    """Different paths or query values stay different stories."""
    assert canonical_link("https://e.org/a?id=3") != canonical_link("https://e.org/a?id=4")
    assert canonical_link("https://e.org/a") != canonical_link("https://e.org/b")
    assert canonical_link("not a url") is None


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "Russia returns bodies of 501 soldiers - Reuters",
            "Russia returns bodies of 501 soldiers",
        ),
        (
            "Russia returns bodies of 501 soldiers | AP News",
            "Russia returns bodies of 501 soldiers",
        ),
        (
            "Russia returns bodies of 501 soldiers — The Kyiv Independent",
            "Russia returns bodies of 501 soldiers – Kyiv Post",
        ),
    ],
)
def test_a_trailing_site_name_does_not_make_another_story(a: str, b: str) -> None:
    """Wire headlines that differ only by the site named at their end are one story."""
    assert title_key(a) == title_key(b) is not None


def test_a_dash_that_is_part_of_the_headline_is_kept() -> None:
    """Long tails, and tails that would leave too short a headline, are the headline itself."""
    assert title_key("Ukraine war - live updates") == "ukraine war live updates"
    assert title_key("Drones hit Odesa - port closed as grain ships wait offshore") != title_key(
        "Drones hit Odesa"
    )
    assert title_key("Kyiv - Lviv trains run again") == "kyiv lviv trains run again"


def test_title_keys_fold_case_accents_and_punctuation_but_skip_short_titles() -> None:
    """Headlines compare by words; three-word titles are too generic to identify a story."""
    assert title_key("Zelenskyy visits KYIV front-line!") == title_key(
        "zelenskyy visits kyiv front line"
    )
    assert title_key("Café crème, Élysée talks") == title_key("cafe creme elysee talks")
    assert title_key("Live updates today") is None
