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
    """Up to ``limit`` of ``urls`` due at ``now`` and not Gone, most overdue first, then by URL.

    Asked every second for every configured feed (``dispatch-feeds``), so the
    URLs are not sent: 50,000 of them are 3 MB a second to send and parse for
    the few dozen feeds due. The due feeds are read instead, in order through
    the ``next_due`` index, and those not asked for skipped here: feeds no
    longer configured, whose rows stay. Only when there are so many of those
    that the walk has read as many rows as there are URLs are the URLs sent.
    """
    if limit <= 0 or not urls:
        return []
    wanted = frozenset(urls)
    found: list[FeedForUpdate] = []
    after: tuple[datetime, str] | None = None
    read = 0
    page = max(limit, _DUE_PAGE)
    while read < len(wanted):
        rows = conn.execute(
            _DUE_WALK if after is None else _DUE_WALK_AFTER,
            (ts(now), page) if after is None else (ts(now), *after, page),
        ).fetchall()
        read += len(rows)
        found += [feed_row(row) for row in rows if row[0] in wanted]
        if len(found) >= limit or len(rows) < page:
            return found[:limit]
        after = (rows[-1][9], rows[-1][0])  # next_due, url: where the next page starts
    rows = conn.execute(
        f"SELECT {FEED_COLUMNS} FROM feeds WHERE url = ANY(%s::text[])"  # noqa: S608 (constant)
        " AND status <> 'gone' AND next_due <= %s ORDER BY next_due, url LIMIT %s",
        (list(urls), ts(now), limit),
    ).fetchall()
    return [feed_row(row) for row in rows]


_DUE_PAGE = 500
_DUE_WALK = (
    f"SELECT {FEED_COLUMNS} FROM feeds"  # noqa: S608 (constant)
    " WHERE status <> 'gone' AND next_due <= %s ORDER BY next_due, url LIMIT %s"
)
_DUE_WALK_AFTER = (
    f"SELECT {FEED_COLUMNS} FROM feeds"  # noqa: S608 (constant)
    " WHERE status <> 'gone' AND next_due <= %s AND (next_due, url) > (%s, %s)"
    " ORDER BY next_due, url LIMIT %s"
)


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
    # These are probes of a few keys each, but the planner is asked to plan them for a
    # table that grows from nothing to hundreds of thousands of rows in the first poll
    # of thousands of feeds. Without statistics it guesses that a hundred-key ANY
    # matches half the table; and psycopg prepares a statement run five times, so the
    # server keeps a generic plan made while the table was a few pages: a scan of the
    # whole table, kept until autovacuum next analyzes it, a minute or more later.
    # Analyzing after the first poll was measured not to help (the plans are cached
    # after it): 1,450 scans of the table, 30 ms a lookup and growing, in a cold cycle
    # of 2,000 feeds. So index probes are all the planner may choose here (one round
    # trip for both settings).
    conn.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
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
    """Write one poll's outcome; see :meth:`monitor.store.sqlite.SQLiteStore.apply`.

    Each table gets one statement, its rows bound as arrays: a new 50-entry
    feed writes 150 rows, and row by row (``executemany``) those were 150
    statements, most of the database's work in a poll.
    """
    now = ts(intent.now)
    feed = feed_params(intent, now, ts)
    # A feed without a row (never synced) gets one first; the common case is one statement.
    if conn.execute(_UPDATE_FEED, feed).rowcount == 0:
        conn.execute(
            "INSERT INTO feeds (url, fetch_url) VALUES (%s, %s) ON CONFLICT (url) DO NOTHING",
            (intent.url, intent.fetch_url or intent.url),
        )
        conn.execute(_UPDATE_FEED, feed)
    if intent.seen:
        seen = intent.seen
        conn.execute(
            "INSERT INTO seen (feed_url, entry_id, story, title, link, published, seen_at)"
            " SELECT %s, entry_id, story, title, link, published, %s"
            " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[])"
            " AS entry (entry_id, story, title, link, published)"
            " ON CONFLICT (feed_url, entry_id) DO NOTHING",
            (
                intent.url,
                now,
                [s.entry_id for s in seen],
                [s.story for s in seen],
                [s.title for s in seen],
                [s.link for s in seen],
                [ts_opt(s.published) for s in seen],
            ),
        )
    # One statement may not update a row twice, so a key two entries share (one headline
    # twice in a feed) is written once, with the first entry's story: as row by row,
    # where the second write found the first one's time and changed nothing.
    keys = {key: s.story for s in reversed(intent.seen) for key in s.keys}
    if keys:
        # A key this feed records again moves to its newer story and time, so the
        # syndication window (Store.lookup) counts from its latest appearance.
        conn.execute(
            "INSERT INTO story_keys (key, feed_url, story, seen_at)"
            " SELECT key, %s, story, %s FROM unnest(%s::text[], %s::text[]) AS k (key, story)"
            " ON CONFLICT (key, feed_url) DO UPDATE"
            " SET story = excluded.story, seen_at = excluded.seen_at"
            " WHERE excluded.seen_at > story_keys.seen_at",
            (intent.url, now, list(keys), list(keys.values())),
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
