"""The state store contract: what every backend must do, checked through the ``Store`` protocol.

The tests take the ``store`` fixture typed as ``Store``, which opens each
backend in turn: SQLite, and PostgreSQL (SPEC §8) on a real server started for
the session (``conftest.py``), skipped with the reason when that cannot run.
SQLite's own promises (file, schema, concurrency, crashes) are in
``test_store_sqlite.py``; PostgreSQL's own are at the end of this file.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pgserver import PostgresServer

from monitor.model import (
    AlertIntent,
    DeliveryOutcome,
    DeliveryState,
    FeedStatus,
    FeedUpdateIntent,
    Hit,
    SeenIntent,
    Source,
    SourceIntent,
)
from monitor.store import Store, open_store

T0 = datetime(2024, 10, 18, 6, 0, tzinfo=UTC)
A, B, C = "https://a.example/rss", "https://b.example/rss", "https://c.example/atom"

BACKENDS = ("sqlite", "postgres")


def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a fresh, empty store of the backend ``request.param`` lives: a path or a URL."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return str(tmp_path / "state" / "monitor.db")


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store of each backend, opened as the daemon opens it (``open_store``)."""
    opened = open_store(location(request, tmp_path))
    yield opened
    opened.close()


def poll(url: str, now: datetime, **changes: object) -> FeedUpdateIntent:
    """A successful poll of ``url`` at ``now``, due again ten minutes later, with ``changes``."""
    fields: dict[str, object] = {
        "url": url,
        "now": now,
        "status": FeedStatus.OK,
        "next_due": now + timedelta(minutes=10),
        "error_streak": 0,
        "http_status": 200,
        "success": True,
    }
    fields.update(changes)
    return FeedUpdateIntent(**fields)  # type: ignore[arg-type]


def seen(entry_id: str, story: str, *keys: str) -> SeenIntent:
    """An entry recorded as part of ``story`` under ``keys``."""
    return SeenIntent(
        entry_id, story, keys, f"Title of {entry_id}", f"https://x.example/{entry_id}", T0
    )


def alert(rule: str, story: str, feed_url: str, *targets: str) -> AlertIntent:
    """An alert of ``rule`` on ``story`` first carried by ``feed_url``."""
    return AlertIntent(
        rule=rule,
        story=story,
        feed=f"Feed {feed_url}",
        feed_url=feed_url,
        title="Russia returns bodies of 501 soldiers",
        link=f"{feed_url}/{story}",
        published=T0 - timedelta(hours=1),
        summary="The bodies of 501 soldiers were returned.",
        terms=("bodies", "soldiers"),
        hits=(Hit("title", 14, 20, "bodies"), Hit("title", 29, 37, "soldiers")),
        targets=targets or ("desk-slack", "phone"),
    )


def deliveries(store: Store, alert_id: int) -> dict[str, DeliveryState]:
    """Each target's delivery state for one alert, read through ``status``."""
    report = store.status(recent=1000)
    return next(dict(a.deliveries) for a in report.recent_alerts if a.id == alert_id)


# -- feeds -------------------------------------------------------------------------


def test_sync_feeds_adds_new_feeds_due_now_and_keeps_existing_state(store: Store) -> None:
    """New feeds are due at once; syncing again leaves known feeds' schedule alone."""
    store.sync_feeds([A, B], T0)
    store.apply(poll(A, T0, etag='"v1"'))
    store.sync_feeds([A, B, C], T0 + timedelta(hours=1))
    a, b, c = store.feeds([A, B, C])
    assert (a.url, a.status, a.etag, a.next_due) == (
        A,
        FeedStatus.OK,
        '"v1"',
        T0 + timedelta(minutes=10),
    )
    assert (b.status, b.fetch_url, b.next_due, b.last_success, b.error_streak) == (
        FeedStatus.NEW,
        B,
        T0,
        None,
        0,
    )
    assert c.next_due == T0 + timedelta(hours=1)
    assert [f.url for f in store.feeds([C, "https://unknown.example/", A, C])] == [C, A]


def test_times_come_back_as_aware_utc_whatever_zone_they_went_in(store: Store) -> None:
    """A time given in another zone is the same instant when read back, in ``datetime.UTC``."""
    kyiv = timezone(timedelta(hours=3))
    store.apply(poll(A, T0.astimezone(kyiv), next_due=(T0 + timedelta(minutes=5)).astimezone(kyiv)))
    (feed,) = store.feeds([A])
    assert (feed.last_success, feed.next_due) == (T0, T0 + timedelta(minutes=5))
    assert feed.last_success is not None and feed.last_success.tzinfo is UTC
    assert feed.next_due is not None and feed.next_due.tzinfo is UTC
    assert store.status().feeds[0].last_fetch == T0


def test_urls_and_names_sort_by_their_characters_codes(store: Store) -> None:
    """Listings in URL or name order use code point order, whatever the database's language."""
    urls = ["https://b.example/", "https://B.example/", "https://_a.example/", "https://a.example/"]
    store.sync_feeds(urls, T0)
    for url in urls:
        store.apply(poll(url, T0, status=FeedStatus.ERROR, error_streak=1, next_due=T0))
    assert [f.url for f in store.status().feeds] == sorted(urls)
    assert [f.url for f in store.due_feeds(urls, T0, 10)] == sorted(urls)
    assert [f.url for f in store.feed_health(urls)] == sorted(urls)
    for name in ("desk", "Desk", "_desk"):
        store.pause_target(name, T0, "test")
    assert list(store.target_states()) == ["Desk", "_desk", "desk"]


def test_due_feeds_most_overdue_first_within_limit_and_never_gone(store: Store) -> None:
    """Due feeds come most overdue first, limited, among the URLs asked, and Gone never."""
    d, e = "https://d.example/rss", "https://e.example/rss"
    for url, due in [(A, 5), (B, 1), (C, 3), (d, 0), (e, 3)]:
        store.apply(poll(url, T0, next_due=T0 + timedelta(minutes=due)))
    store.apply(poll(d, T0, status=FeedStatus.GONE, http_status=410, next_due=T0, success=False))
    everyone = [A, B, C, d, e]
    at = T0 + timedelta(minutes=4)
    assert [f.url for f in store.due_feeds(everyone, at, 10)] == [B, C, e]
    assert [f.url for f in store.due_feeds(everyone, at, 2)] == [B, C]
    assert [f.url for f in store.due_feeds([A, C], at, 10)] == [C]
    assert store.due_feeds(everyone, T0, 10) == []
    assert store.next_due(everyone) == T0 + timedelta(minutes=1)
    assert store.next_due([A, d]) == T0 + timedelta(minutes=5)
    assert store.next_due([d]) is None
    assert store.next_due([]) is None


def test_validators_follow_a_fresh_200_and_survive_other_outcomes(store: Store) -> None:
    """OK replaces title and validators; 304, unchanged and errors keep them unless given."""
    store.apply(
        poll(A, T0, title="A news", etag='"1"', last_modified="Fri, 18 Oct 2024", body_hash="h1")
    )
    t1 = T0 + timedelta(minutes=10)
    store.apply(poll(A, t1, status=FeedStatus.NOT_MODIFIED, http_status=304, etag='"2"'))
    (feed,) = store.feeds([A])
    assert (feed.title, feed.etag, feed.last_modified, feed.body_hash) == (
        "A news",
        '"2"',
        "Fri, 18 Oct 2024",
        "h1",
    )
    assert feed.last_success == t1
    t2 = t1 + timedelta(minutes=10)
    store.apply(
        poll(
            A,
            t2,
            status=FeedStatus.ERROR,
            http_status=503,
            error="HTTP 503",
            error_streak=1,
            success=False,
            next_due=t2 + timedelta(minutes=20),
        )
    )
    (feed,) = store.feeds([A])
    assert (feed.status, feed.error_streak, feed.etag, feed.last_success) == (
        FeedStatus.ERROR,
        1,
        '"2"',
        t1,
    )
    (report,) = store.status().feeds
    assert (report.http_status, report.error, report.last_fetch) == (503, "HTTP 503", t2)
    store.apply(poll(A, t2, fetch_url="https://a.example/new-rss", body_hash="h3"))
    (feed,) = store.feeds([A])
    assert (feed.fetch_url, feed.title, feed.etag, feed.last_modified, feed.body_hash) == (
        "https://a.example/new-rss",
        None,
        None,
        None,
        "h3",
    )
    store.apply(poll(A, t2 + timedelta(minutes=10)))
    assert store.feeds([A])[0].fetch_url == "https://a.example/new-rss"
    assert store.status().feeds[0].error is None


# -- lookup ------------------------------------------------------------------------


def test_the_adaptive_interval_is_kept_until_a_poll_chooses_another(store: Store) -> None:
    """poll_interval is stored as given; a poll that chooses none (a failure) keeps it."""
    url = "https://a.example/rss"
    store.sync_feeds([url], T0)
    assert store.feeds([url])[0].poll_interval is None
    store.apply(poll(url, T0, poll_interval=timedelta(minutes=3)))
    assert store.feeds([url])[0].poll_interval == timedelta(minutes=3)
    store.apply(poll(url, T0 + timedelta(minutes=3), status=FeedStatus.ERROR, error_streak=1))
    assert store.feeds([url])[0].poll_interval == timedelta(minutes=3)
    store.apply(poll(url, T0 + timedelta(minutes=9), poll_interval=timedelta(seconds=225)))
    [due] = store.due_feeds([url], T0 + timedelta(hours=1), 10)
    assert due.poll_interval == timedelta(seconds=225)


def test_lookup_reports_ids_this_feed_has_seen(store: Store) -> None:
    """Seen ids are per feed: another feed's entry with the same id is not seen here."""
    store.apply(poll(A, T0, seen=(seen("e1", "s1"), seen("e2", "s2"))))
    assert store.lookup(A, ["e1", "e3"], [], [], T0).seen_ids == {"e1"}
    assert store.lookup(B, ["e1", "e2"], [], [], T0).seen_ids == frozenset()


def test_link_keys_count_for_the_same_feed_forever_and_for_others_within_the_window(
    store: Store,
) -> None:
    """A link key is known to its own feed at any time, to other feeds only since ``since``."""
    store.apply(poll(A, T0, seen=(seen("e1", "s1", "link:x.example/1"),)))
    later = T0 + timedelta(days=5)
    assert (
        store.lookup(A, [], ["link:x.example/1"], [], later).stories["link:x.example/1"].story
        == "s1"
    )
    assert store.lookup(B, [], ["link:x.example/1"], [], later).stories == {}
    assert (
        store.lookup(B, [], ["link:x.example/1"], [], T0).stories["link:x.example/1"].story == "s1"
    )


def test_title_keys_count_only_within_the_window(store: Store) -> None:
    """A title key is known only when recorded at or after ``since``, even to its own feed."""
    store.apply(poll(A, T0, seen=(seen("e1", "s1", "title:bodies of 501 soldiers"),)))
    key = "title:bodies of 501 soldiers"
    assert store.lookup(A, [], [], [key], T0 + timedelta(seconds=1)).stories == {}
    assert store.lookup(B, [], [], [key], T0).stories[key].story == "s1"
    assert store.lookup(B, [], [key], [], T0).stories[key].story == "s1"  # as a link key too


def test_lookup_names_the_rules_that_alerted_on_each_story(store: Store) -> None:
    """Each known story comes with the set of rules that already alerted on it."""
    store.apply(
        poll(
            A,
            T0,
            seen=(seen("e1", "s1", "link:1"), seen("e2", "s2", "link:2")),
            alerts=(alert("dead", "s1", A), alert("drones", "s1", A)),
        )
    )
    stories = store.lookup(B, [], ["link:1", "link:2", "link:3"], [], T0).stories
    assert set(stories) == {"link:1", "link:2"}
    assert stories["link:1"].alerted_rules == {"dead", "drones"}
    assert stories["link:2"].alerted_rules == frozenset()


def test_a_key_known_under_two_stories_prefers_this_feeds_then_the_latest(store: Store) -> None:
    """When a key qualifies for two stories, this feed's own wins, then the most recent."""
    store.apply(poll(A, T0, seen=(seen("a1", "old", "link:k"),)))
    store.apply(poll(B, T0 + timedelta(days=2), seen=(seen("b1", "new", "link:k"),)))
    assert store.lookup(A, [], ["link:k"], [], T0).stories["link:k"].story == "old"
    assert store.lookup(C, [], ["link:k"], [], T0).stories["link:k"].story == "new"
    store.apply(poll(A, T0 + timedelta(days=3), seen=(seen("a2", "newest", "link:k"),)))
    assert store.lookup(C, [], ["link:k"], [], T0).stories["link:k"].story == "newest"


# -- apply -------------------------------------------------------------------------


def test_apply_twice_changes_nothing_more(store: Store) -> None:
    """Applying the same intent again adds no entry, alert, source or delivery."""
    intent = poll(
        A,
        T0,
        seen=(seen("e1", "s1", "link:1", "title:t"),),
        alerts=(alert("dead", "s1", A),),
        sources=(SourceIntent("dead", "s1", "Feed B", B, "https://b.example/1"),),
    )
    store.apply(intent)
    first = (store.status(), store.pending_deliveries(T0, 100), store.feeds([A]))
    store.apply(intent)
    assert (store.status(), store.pending_deliveries(T0, 100), store.feeds([A])) == first
    assert first[0].feeds[0].entries_seen == 1
    assert len(first[1]) == 2


def test_one_alert_per_rule_and_story_even_from_two_feeds(store: Store) -> None:
    """A second feed alerting the same (rule, story) becomes a source, not a second alert."""
    store.apply(poll(A, T0, seen=(seen("a1", "s1"),), alerts=(alert("dead", "s1", A),)))
    later = T0 + timedelta(minutes=1)
    store.apply(
        poll(
            B,
            later,
            seen=(seen("b1", "s1"),),
            alerts=(alert("dead", "s1", B, "desk-slack", "phone", "email"), alert("dprk", "s1", B)),
        )
    )
    report = store.status()
    assert sorted(a.rule for a in report.recent_alerts) == ["dead", "dprk"]
    dead = next(a for a in report.recent_alerts if a.rule == "dead")
    assert dict(dead.deliveries) == {
        "desk-slack": DeliveryState.PENDING,
        "phone": DeliveryState.PENDING,
    }
    pending = [p for p in store.pending_deliveries(later, 100) if p.alert.rule == "dead"]
    assert {p.alert.sources for p in pending} == {
        (Source(f"Feed {A}", f"{A}/s1"), Source(f"Feed {B}", f"{B}/s1"))
    }


def test_sources_accumulate_in_order_once_per_feed(store: Store) -> None:
    """Sources add up in recorded order, once per feed; sources of unknown alerts are dropped."""
    store.apply(poll(A, T0, alerts=(alert("dead", "s1", A),)))
    for url in (B, C, B):
        store.apply(
            poll(
                url,
                T0,
                sources=(
                    SourceIntent("dead", "s1", url.upper(), url, f"{url}#1"),
                    SourceIntent("dead", "no-such-story", url, url, None),
                ),
            )
        )
    (first, *_) = store.pending_deliveries(T0, 10)
    assert first.alert.sources == (
        Source(f"Feed {A}", f"{A}/s1"),
        Source(B.upper(), f"{B}#1"),
        Source(C.upper(), f"{C}#1"),
    )
    assert len(store.status().recent_alerts) == 1


def test_a_failing_apply_leaves_nothing_behind(store: Store) -> None:
    """An apply that fails half way rolls back the feed update and everything before it."""
    store.apply(poll(A, T0, etag='"1"'))
    bad = SeenIntent("e2", "s2", ("link:2",), "t", None, datetime(2024, 10, 18))  # naive: a bug
    with pytest.raises(ValueError, match="naive"):
        store.apply(poll(A, T0 + timedelta(hours=1), etag='"2"', seen=(seen("e1", "s1"), bad)))
    (feed,) = store.feeds([A])
    assert (feed.etag, feed.last_success) == ('"1"', T0)
    assert store.lookup(A, ["e1", "e2"], [], [], T0).seen_ids == frozenset()


# -- the outbox --------------------------------------------------------------------


def test_pending_deliveries_carry_the_whole_alert_one_per_target(store: Store) -> None:
    """Each target gets its own delivery, oldest first, with the alert decoded in full."""
    store.apply(poll(A, T0, alerts=(alert("dead", "s1", A, "desk-slack", "phone"),)))
    later = T0 + timedelta(minutes=5)
    store.apply(poll(B, later, alerts=(alert("dprk", "s2", B, "email"),)))
    assert store.next_delivery_due() == T0
    assert [p.target for p in store.pending_deliveries(T0, 10)] == ["desk-slack", "phone"]
    due = store.pending_deliveries(later, 10)
    assert [(p.target, p.alert.rule) for p in due] == [
        ("desk-slack", "dead"),
        ("phone", "dead"),
        ("email", "dprk"),
    ]
    assert [p.target for p in store.pending_deliveries(later, 2)] == ["desk-slack", "phone"]
    first = due[0]
    assert (first.attempts, first.created_at) == (0, T0)
    expected = alert("dead", "s1", A)
    got = first.alert
    assert (got.rule, got.title, got.link, got.published, got.summary, got.terms, got.hits) == (
        expected.rule,
        expected.title,
        expected.link,
        expected.published,
        expected.summary,
        expected.terms,
        expected.hits,
    )
    assert (got.sources, got.created_at, due[1].alert) == (
        (Source(f"Feed {A}", f"{A}/s1"),),
        T0,
        got,
    )


def test_record_moves_deliveries_through_their_states(store: Store) -> None:
    """Retry reschedules and counts, a 429 pause does not count, sent and failed are final."""
    store.apply(poll(A, T0, alerts=(alert("dead", "s1", A, "slack", "phone", "email"),)))
    slack, phone, email = store.pending_deliveries(T0, 10)
    retry = T0 + timedelta(minutes=2)
    store.record(DeliveryOutcome(slack.id, T0, DeliveryState.PENDING, "HTTP 500", retry))
    store.record(
        DeliveryOutcome(phone.id, T0, DeliveryState.PENDING, "HTTP 429", retry, count_attempt=False)
    )
    store.record(DeliveryOutcome(email.id, T0, DeliveryState.SENT))
    assert store.pending_deliveries(T0 + timedelta(minutes=1), 10) == []
    assert store.next_delivery_due() == retry
    again = store.pending_deliveries(retry, 10)
    assert [(p.target, p.attempts) for p in again] == [("slack", 1), ("phone", 0)]
    store.record(DeliveryOutcome(slack.id, retry, DeliveryState.FAILED, "HTTP 500 for 24h"))
    store.record(DeliveryOutcome(email.id, retry, DeliveryState.FAILED, "late"))  # already sent
    store.record(DeliveryOutcome(slack.id, retry, DeliveryState.SENT))  # already failed
    assert deliveries(store, slack.alert.id) == {
        "slack": DeliveryState.FAILED,
        "phone": DeliveryState.PENDING,
        "email": DeliveryState.SENT,
    }
    report = store.status()
    assert (report.pending, report.failed, report.oldest_pending) == (1, 1, T0)
    assert report.failed_deliveries == ((slack.alert.id, "slack", "HTTP 500 for 24h"),)
    store.record(DeliveryOutcome(phone.id, retry, DeliveryState.SENT))
    assert store.next_delivery_due() is None
    assert store.status().oldest_pending is None


def test_status_reports_feeds_outbox_and_latest_alerts(store: Store) -> None:
    """Status lists every feed with its entry count, and the latest alerts newest first."""
    store.sync_feeds([C], T0)
    store.apply(poll(A, T0, title="A news", seen=(seen("a1", "s1"), seen("a2", "s2"))))
    for minute in range(3):
        now = T0 + timedelta(minutes=minute)
        store.apply(
            poll(
                B,
                now,
                seen=(seen(f"b{minute}", f"t{minute}"),),
                alerts=(alert("dead", f"t{minute}", B, "slack"),),
            )
        )
    report = store.status(recent=2)
    assert [(f.url, f.title, f.entries_seen, f.status) for f in report.feeds] == [
        (A, "A news", 2, FeedStatus.OK),
        (B, None, 3, FeedStatus.OK),
        (C, None, 0, FeedStatus.NEW),
    ]
    b = report.feeds[1]
    assert (b.http_status, b.last_fetch, b.last_success, b.next_due) == (
        200,
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=2),
        T0 + timedelta(minutes=12),
    )
    assert (report.pending, report.failed, report.oldest_pending) == (3, 0, T0)
    assert [(a.title, a.created_at, dict(a.deliveries)) for a in report.recent_alerts] == [
        (alert("dead", "t2", B).title, T0 + timedelta(minutes=2), {"slack": DeliveryState.PENDING}),
        (alert("dead", "t1", B).title, T0 + timedelta(minutes=1), {"slack": DeliveryState.PENDING}),
    ]
    assert report.failed_deliveries == ()


# -- PostgreSQL's own promises (SPEC §8): many processes, one database --------------


@pytest.fixture(params=BACKENDS)
def new_location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a store of each backend would live, not yet opened."""
    return location(request, tmp_path)


def test_processes_opening_a_new_state_at_once_migrate_it_once(new_location: str) -> None:
    """Several stores opening a new state together all succeed, at the newest schema."""
    opened: list[Store] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            opened.append(open_store(new_location))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    opened[0].sync_feeds([A], T0)
    assert all(len(each.feeds([A])) == 1 for each in opened)
    if new_location.startswith("postgresql://"):
        from monitor.store.postgres_schema import SCHEMA_VERSION
    else:
        from monitor.store.migrations import SCHEMA_VERSION
    assert {each.schema_version() for each in opened} == {SCHEMA_VERSION}
    for each in opened:
        each.close()


def test_open_store_chooses_postgresql_for_its_urls(postgres_url: str) -> None:
    """A ``postgresql://`` state is the PostgreSQL store, named in errors without its password."""
    from monitor.store.postgres import PostgresStore

    with open_store(postgres_url) as opened:
        assert isinstance(opened, PostgresStore)
        assert ":" not in opened.name.partition("//")[2].partition("@")[0]
        assert opened.name.endswith(postgres_url.rpartition("@")[2].partition("?")[0])


def test_postgres_refuses_a_newer_schema_and_tables_it_did_not_create(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    """A database migrated by a newer version, or with foreign tables of our names, is refused."""
    import psycopg

    from monitor.errors import StoreError
    from monitor.store.postgres_schema import SCHEMA_VERSION

    open_store(postgres_url).close()
    with psycopg.connect(postgres_url, autocommit=True) as raw:
        raw.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match=rf"newer news-monitor \(schema {SCHEMA_VERSION + 1}"):
        open_store(postgres_url)
    other = f"other_{uuid.uuid4().hex[:12]}"
    postgres_server.create_database(other)
    try:
        with psycopg.connect(postgres_server.url(other), autocommit=True) as raw:
            raw.execute("CREATE TABLE feeds (id integer)")
        with pytest.raises(StoreError, match=r"tables news-monitor did not create \(feeds\)"):
            open_store(postgres_server.url(other))
    finally:
        postgres_server.drop_database(other)


def test_postgres_errors_never_show_the_password(postgres_server: PostgresServer) -> None:
    """A refused login or a malformed URL is a StoreError naming the database, password masked."""
    from monitor.errors import StoreError

    secret = "s3cret-Pa55"
    for url in (
        postgres_server.url("postgres", password=secret),
        postgres_server.url("postgres", password=secret) + "?sslmode=bogus",
        postgres_server.url("postgres", password=f"{secret}%zz"),  # libpq quotes bad escapes
        f"postgresql://monitor:{secret}@127.0.0.1:{postgres_server.port}/postgres?x=1&password={secret}",
    ):
        with pytest.raises(StoreError) as caught:
            open_store(url)
        message = str(caught.value)
        assert f"monitor@127.0.0.1:{postgres_server.port}/postgres" in message
        chain = [message, *(repr(e) for e in (caught.value.__cause__, caught.value.__context__))]
        assert not any(secret in text for text in chain), chain


def test_postgres_writers_in_two_processes_keep_one_alert_per_rule_and_story(
    postgres_url: str,
) -> None:
    """Two stores alerting the same stories at once: one alert each, both feeds as sources."""
    stores = [open_store(postgres_url), open_store(postgres_url)]
    stories = [f"s{n}" for n in range(30)]
    errors: list[BaseException] = []

    def work(store: Store, url: str) -> None:
        try:
            for story in stories:
                store.apply(poll(url, T0, alerts=(alert("dead", story, url, "desk"),)))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=pair) for pair in zip(stores, (A, B), strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    due = stores[0].pending_deliveries(T0, 1000)
    assert sorted(p.alert.rule + p.target for p in due) == ["deaddesk"] * len(stories)
    assert all({s.feed for s in p.alert.sources} == {f"Feed {A}", f"Feed {B}"} for p in due)
    for each in stores:
        each.close()


def test_postgres_store_reconnects_after_the_server_drops_it(postgres_url: str) -> None:
    """A dropped connection fails the call that sees it; the next call connects again."""
    import psycopg

    from monitor.errors import StoreError

    with open_store(postgres_url) as opened:
        opened.sync_feeds([A], T0)
        with psycopg.connect(postgres_url, autocommit=True) as raw:
            raw.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        with pytest.raises(StoreError, match="PostgreSQL database postgresql://monitor@"):
            opened.feeds([A])
        assert [f.url for f in opened.feeds([A])] == [A]
    with pytest.raises(StoreError, match="is closed"):
        opened.feeds([A])
