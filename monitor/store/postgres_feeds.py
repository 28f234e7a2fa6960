"""PostgreSQL queries for the polling side: feeds, seen entries, story keys, and applying a poll.

The same statements as :mod:`monitor.store.sqlite_feeds`, in PostgreSQL's
dialect: sets of values are bound as one array and read with ``= ANY(%s)``.
Each function runs inside a transaction the caller
(:class:`~monitor.store.postgres.PostgresStore`) opened; none commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from monitor.model import (
    AlertIntent,
    FeedForUpdate,
    FeedUpdateIntent,
    StoreLookup,
)
from monitor.store.postgres_codec import FEED_COLUMNS, Conn, feed_row, ts, ts_opt, utc_opt
from monitor.store.rows import feed_params, hits_json, json_list, lookup_result, winning_stories


def sync_feeds(conn: Conn, urls: Sequence[str], now: datetime) -> None:
    """Give every URL a feed row; new ones are due at ``now``."""
    due = ts(now)
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO feeds (url, fetch_url, next_due) VALUES (%s, %s, %s)"
            " ON CONFLICT (url) DO NOTHING",
            [(url, url, due) for url in urls],
        )


def feeds(conn: Conn, urls: Sequence[str]) -> list[FeedForUpdate]:
    """The stored feeds among ``urls``, in the order given, each once."""
    rows = conn.execute(
        f"SELECT {FEED_COLUMNS} FROM feeds WHERE url = ANY(%s::text[])",  # noqa: S608 (constant)
        (list(urls),),
    ).fetchall()
    by_url = {row[0]: feed_row(row) for row in rows}
    return [by_url[url] for url in dict.fromkeys(urls) if url in by_url]


def due_feeds(conn: Conn, urls: Sequence[str], now: datetime, limit: int) -> list[FeedForUpdate]:
    """Up to ``limit`` of ``urls`` due at ``now`` and not Gone, most overdue first, then by URL."""
    rows = conn.execute(
        f"SELECT {FEED_COLUMNS} FROM feeds WHERE url = ANY(%s::text[])"  # noqa: S608 (constant)
        " AND status <> 'gone' AND next_due <= %s ORDER BY next_due, url LIMIT %s",
        (list(urls), ts(now), limit),
    ).fetchall()
    return [feed_row(row) for row in rows]


def next_due(conn: Conn, urls: Sequence[str]) -> datetime | None:
    """The earliest next due time among ``urls``, Gone feeds excepted."""
    row = conn.execute(
        "SELECT min(next_due) FROM feeds WHERE url = ANY(%s::text[]) AND status <> 'gone'",
        (list(urls),),
    ).fetchone()
    return None if row is None else utc_opt(row[0])


def lookup(
    conn: Conn,
    feed_url: str,
    entry_ids: Sequence[str],
    link_keys: Sequence[str],
    title_keys: Sequence[str],
    since: datetime,
) -> StoreLookup:
    """See :meth:`monitor.store.sqlite.SQLiteStore.lookup`.

    Which story a key means when several qualify: :func:`monitor.store.rows.winning_stories`.
    """
    window = ts(since)
    # These are probes of a few keys each. Until autovacuum has analyzed a table that
    # grew fast (the first poll of thousands of feeds), the planner guesses that a
    # hundred-key ANY matches half of it and scans it all: 30 ms a lookup, growing.
    conn.execute("SET LOCAL enable_seqscan = off")
    conn.execute("SET LOCAL enable_bitmapscan = off")
    seen_ids = frozenset(
        row[0]
        for row in conn.execute(
            "SELECT entry_id FROM seen WHERE feed_url = %s AND entry_id = ANY(%s::text[])",
            (feed_url, list(entry_ids)),
        )
    )
    rows = conn.execute(
        "SELECT key, feed_url, story, seen_at FROM story_keys"
        " WHERE key = ANY(%s::text[]) AND (feed_url = %s OR seen_at >= %s)",
        (list(link_keys), feed_url, window),
    ).fetchall()
    # The window is applied here rather than in SQL, where the planner would walk the
    # seen_at index (every key of the last day) instead of probing the keys.
    rows += [
        row
        for row in conn.execute(
            "SELECT key, feed_url, story, seen_at FROM story_keys WHERE key = ANY(%s::text[])",
            (list(title_keys),),
        )
        if row[3] >= window
    ]
    stories = winning_stories(rows, feed_url)
    alerted = conn.execute(
        "SELECT story, rule FROM alerts WHERE story = ANY(%s::text[])",
        (sorted(set(stories.values())),),
    )
    return lookup_result(seen_ids, stories, alerted)


def apply(conn: Conn, intent: FeedUpdateIntent) -> None:
    """Write one poll's outcome; see :meth:`monitor.store.sqlite.SQLiteStore.apply`."""
    now = ts(intent.now)
    feed = feed_params(intent, now, ts)
    seen_rows = [
        (intent.url, s.entry_id, s.story, s.title, s.link, ts_opt(s.published), now)
        for s in intent.seen
    ]
    key_rows = [(key, intent.url, s.story, now) for s in intent.seen for key in s.keys]
    conn.execute(
        "INSERT INTO feeds (url, fetch_url) VALUES (%s, %s) ON CONFLICT (url) DO NOTHING",
        (intent.url, intent.fetch_url or intent.url),
    )
    conn.execute(_UPDATE_FEED, feed)
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO seen (feed_url, entry_id, story, title, link, published, seen_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (feed_url, entry_id) DO NOTHING",
            seen_rows,
        )
        # A key this feed records again moves to its newer story and time, so the
        # syndication window (Store.lookup) counts from its latest appearance.
        cursor.executemany(
            "INSERT INTO story_keys (key, feed_url, story, seen_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (key, feed_url) DO UPDATE"
            " SET story = excluded.story, seen_at = excluded.seen_at"
            " WHERE excluded.seen_at > story_keys.seen_at",
            key_rows,
        )
    for alert in intent.alerts:
        insert_alert(conn, alert, now)
    add_sources(conn, [(s.rule, s.story, s.feed, s.feed_url, s.link) for s in intent.sources])


def insert_alert(conn: Conn, alert: AlertIntent, now: datetime) -> bool:
    """Insert ``alert`` with one pending delivery per target, unless (rule, story) exists.

    Either way its feed becomes a source. Returns whether the alert is new.
    """
    row = conn.execute(
        "INSERT INTO alerts (rule, story, title, link, published, summary, terms, hits,"
        " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (rule, story) DO NOTHING RETURNING id",
        (
            alert.rule,
            alert.story,
            alert.title,
            alert.link,
            ts_opt(alert.published),
            alert.summary,
            json_list(alert.terms),
            hits_json(alert.hits),
            now,
        ),
    ).fetchone()
    if row is not None:  # a new alert: queue it in the same transaction (SPEC §5)
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO deliveries (alert_id, target, created_at, next_attempt_at)"
                " VALUES (%s, %s, %s, %s) ON CONFLICT (alert_id, target) DO NOTHING",
                [(row[0], target, now, now) for target in alert.targets],
            )
    add_sources(conn, [(alert.rule, alert.story, alert.feed, alert.feed_url, alert.link)])
    return row is not None


def add_sources(conn: Conn, sources: Sequence[tuple[str, str, str, str, str | None]]) -> None:
    """Add (rule, story, feed, feed_url, link) sources to existing alerts, once per feed URL."""
    with conn.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO alert_sources (alert_id, feed, feed_url, link)"
            " SELECT id, %(feed)s::text, %(feed_url)s::text, %(link)s::text FROM alerts"
            " WHERE rule = %(rule)s AND story = %(story)s"
            " ON CONFLICT (alert_id, feed_url) DO NOTHING",
            [
                {"rule": rule, "story": story, "feed": feed, "feed_url": url, "link": link}
                for rule, story, feed, url, link in sources
            ],
        )


# Validators and title: as given after a fresh 200 (OK), else kept unless given.
_UPDATE_FEED = """
UPDATE feeds SET
    fetch_url = coalesce(%(fetch_url)s, fetch_url),
    title = CASE WHEN %(ok)s THEN %(title)s ELSE coalesce(%(title)s, title) END,
    etag = CASE WHEN %(ok)s THEN %(etag)s ELSE coalesce(%(etag)s, etag) END,
    last_modified = CASE WHEN %(ok)s THEN %(last_modified)s
                    ELSE coalesce(%(last_modified)s, last_modified) END,
    body_hash = CASE WHEN %(ok)s THEN %(body_hash)s ELSE coalesce(%(body_hash)s, body_hash) END,
    status = %(status)s,
    http_status = %(http_status)s,
    error = %(error)s,
    error_streak = %(error_streak)s,
    last_fetch = %(now)s,
    last_success = CASE WHEN %(success)s THEN %(now)s ELSE last_success END,
    failing_since = CASE WHEN %(error_streak)s > 0 THEN coalesce(failing_since, %(now)s) END,
    next_due = %(next_due)s,
    poll_interval = coalesce(%(poll_interval)s, poll_interval)
WHERE url = %(url)s
"""
