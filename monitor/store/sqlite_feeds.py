"""SQLite queries for the polling side: feeds, seen entries, story keys, and applying a poll.

Each function runs inside a transaction the caller (:class:`~monitor.store.sqlite.SQLiteStore`)
opened; none commits. Sets of values are bound as one JSON array and read with
``IN (SELECT value FROM json_each(?))``: no limit on their number, and SQLite
still searches the index once per value.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from monitor.model import (
    AlertIntent,
    FeedForUpdate,
    FeedUpdateIntent,
    StoreLookup,
)
from monitor.store.rows import feed_params, hits_json, json_list, lookup_result, winning_stories
from monitor.store.sqlite_codec import dt_opt, feed_row, ts, ts_opt


def sync_feeds(conn: sqlite3.Connection, urls: Sequence[str], now: datetime) -> None:
    """Give every URL a feed row; new ones are due at ``now``."""
    due = ts(now)
    conn.executemany(
        "INSERT INTO feeds (url, fetch_url, next_due) VALUES (?, ?, ?)"
        " ON CONFLICT (url) DO NOTHING",
        [(url, url, due) for url in urls],
    )


def feeds(conn: sqlite3.Connection, urls: Sequence[str]) -> list[FeedForUpdate]:
    """The stored feeds among ``urls``, in the order given, each once."""
    rows = conn.execute(
        "SELECT url, fetch_url, title, etag, last_modified, body_hash, status, error_streak,"
        " last_success, next_due, poll_interval"
        " FROM feeds WHERE url IN (SELECT value FROM json_each(?))",
        (json_list(urls),),
    ).fetchall()
    by_url = {row[0]: feed_row(row) for row in rows}
    return [by_url[url] for url in dict.fromkeys(urls) if url in by_url]


def due_feeds(
    conn: sqlite3.Connection, urls: Sequence[str], now: datetime, limit: int
) -> list[FeedForUpdate]:
    """Up to ``limit`` of ``urls`` due at ``now`` and not Gone, most overdue first, then by URL."""
    rows = conn.execute(
        "SELECT url, fetch_url, title, etag, last_modified, body_hash, status, error_streak,"
        " last_success, next_due, poll_interval"
        " FROM feeds WHERE url IN (SELECT value FROM json_each(?))"
        " AND status != 'gone' AND next_due <= ? ORDER BY next_due, url LIMIT ?",
        (json_list(urls), ts(now), limit),
    ).fetchall()
    return [feed_row(row) for row in rows]


def next_due(conn: sqlite3.Connection, urls: Sequence[str]) -> datetime | None:
    """The earliest next due time among ``urls``, Gone feeds excepted."""
    (due,) = conn.execute(
        "SELECT min(next_due) FROM feeds WHERE url IN (SELECT value FROM json_each(?))"
        " AND status != 'gone'",
        (json_list(urls),),
    ).fetchone()
    return dt_opt(due)


def lookup(
    conn: sqlite3.Connection,
    feed_url: str,
    entry_ids: Sequence[str],
    link_keys: Sequence[str],
    title_keys: Sequence[str],
    since: datetime,
) -> StoreLookup:
    """See :meth:`monitor.store.base.Store.lookup`.

    Which story a key means when several qualify: :func:`monitor.store.rows.winning_stories`.
    """
    window = ts(since)
    seen_ids = frozenset(
        row[0]
        for row in conn.execute(
            "SELECT entry_id FROM seen WHERE feed_url = ?"
            " AND entry_id IN (SELECT value FROM json_each(?))",
            (feed_url, json_list(entry_ids)),
        )
    )
    rows = conn.execute(
        "SELECT key, feed_url, story, seen_at FROM story_keys"
        " WHERE key IN (SELECT value FROM json_each(?)) AND (feed_url = ? OR seen_at >= ?)",
        (json_list(link_keys), feed_url, window),
    ).fetchall()
    rows += conn.execute(
        "SELECT key, feed_url, story, seen_at FROM story_keys"
        " WHERE key IN (SELECT value FROM json_each(?)) AND seen_at >= ?",
        (json_list(title_keys), window),
    ).fetchall()
    stories = winning_stories(rows, feed_url)
    alerted = conn.execute(
        "SELECT story, rule FROM alerts WHERE story IN (SELECT value FROM json_each(?))",
        (json_list(sorted(set(stories.values()))),),
    )
    return lookup_result(seen_ids, stories, alerted)


def apply(conn: sqlite3.Connection, intent: FeedUpdateIntent) -> None:
    """Write one poll's outcome; see :meth:`monitor.store.sqlite.SQLiteStore.apply`."""
    now = ts(intent.now)
    conn.execute(
        "INSERT INTO feeds (url, fetch_url) VALUES (?, ?) ON CONFLICT (url) DO NOTHING",
        (intent.url, intent.fetch_url or intent.url),
    )
    conn.execute(_UPDATE_FEED, feed_params(intent, now, ts))
    conn.executemany(
        "INSERT INTO seen (feed_url, entry_id, story, title, link, published, seen_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (feed_url, entry_id) DO NOTHING",
        [
            (intent.url, s.entry_id, s.story, s.title, s.link, ts_opt(s.published), now)
            for s in intent.seen
        ],
    )
    # A key this feed records again moves to its newer story and time, so the
    # syndication window (Store.lookup) counts from its latest appearance.
    conn.executemany(
        "INSERT INTO story_keys (key, feed_url, story, seen_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (key, feed_url) DO UPDATE"
        " SET story = excluded.story, seen_at = excluded.seen_at"
        " WHERE excluded.seen_at > story_keys.seen_at",
        [(key, intent.url, s.story, now) for s in intent.seen for key in s.keys],
    )
    for alert in intent.alerts:
        insert_alert(conn, alert, now)
    add_sources(conn, [(s.rule, s.story, s.feed, s.feed_url, s.link) for s in intent.sources])


def insert_alert(conn: sqlite3.Connection, alert: AlertIntent, now: str) -> bool:
    """Insert ``alert`` with one pending delivery per target, unless (rule, story) exists.

    Either way its feed becomes a source. Returns whether the alert is new.
    """
    cursor = conn.execute(
        "INSERT INTO alerts (rule, story, title, link, published, summary, terms, hits,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (rule, story) DO NOTHING",
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
    )
    new = cursor.rowcount == 1
    if new:  # a new alert: queue it in the same transaction (SPEC §5)
        conn.executemany(
            "INSERT INTO deliveries (alert_id, target, created_at, next_attempt_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (alert_id, target) DO NOTHING",
            [(cursor.lastrowid, target, now, now) for target in alert.targets],
        )
    add_sources(conn, [(alert.rule, alert.story, alert.feed, alert.feed_url, alert.link)])
    return new


def add_sources(
    conn: sqlite3.Connection, sources: Sequence[tuple[str, str, str, str, str | None]]
) -> None:
    """Add (rule, story, feed, feed_url, link) sources to existing alerts, once per feed URL."""
    conn.executemany(
        "INSERT INTO alert_sources (alert_id, feed, feed_url, link)"
        " SELECT id, ?3, ?4, ?5 FROM alerts WHERE rule = ?1 AND story = ?2"
        " ON CONFLICT (alert_id, feed_url) DO NOTHING",
        sources,
    )


# Validators and title: as given after a fresh 200 (OK), else kept unless given.
_UPDATE_FEED = """
UPDATE feeds SET
    fetch_url = coalesce(:fetch_url, fetch_url),
    title = iif(:ok, :title, coalesce(:title, title)),
    etag = iif(:ok, :etag, coalesce(:etag, etag)),
    last_modified = iif(:ok, :last_modified, coalesce(:last_modified, last_modified)),
    body_hash = iif(:ok, :body_hash, coalesce(:body_hash, body_hash)),
    status = :status,
    http_status = :http_status,
    error = :error,
    error_streak = :error_streak,
    last_fetch = :now,
    last_success = iif(:success, :now, last_success),
    failing_since = iif(:error_streak > 0, coalesce(failing_since, :now), NULL),
    next_due = :next_due,
    poll_interval = coalesce(:poll_interval, poll_interval)
WHERE url = :url
"""
