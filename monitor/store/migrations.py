"""The SQLite schema, as an ordered list of migrations, and how a file is brought up to date.

The schema version lives in ``PRAGMA user_version``: version N means the first
N migrations have been applied. Each migration runs in its own ``BEGIN
IMMEDIATE`` transaction together with the version bump, so a crash leaves the
file at one version or the next, never in between (``user_version`` is part of
the database header and is rolled back with the transaction).

Migrations are append-only: never edit one that has shipped, add a new one.
Statements are executed one by one rather than with ``executescript``, which
would commit the open transaction first.

Times are fixed-width ISO-8601 UTC text and lists are JSON (:mod:`monitor.store.sqlite_codec`).
"""

from __future__ import annotations

import sqlite3

from monitor.errors import StoreError

_V1 = (
    """
    CREATE TABLE feeds (
        url           TEXT PRIMARY KEY,   -- as configured: the feed's identity
        fetch_url     TEXT NOT NULL,      -- where to fetch now (after permanent redirects)
        title         TEXT,
        etag          TEXT,
        last_modified TEXT,
        body_hash     TEXT,
        status        TEXT NOT NULL DEFAULT 'new',
        http_status   INTEGER,
        error         TEXT,
        error_streak  INTEGER NOT NULL DEFAULT 0,
        last_fetch    TEXT,
        last_success  TEXT,
        next_due      TEXT
    )
    """,
    "CREATE INDEX feeds_next_due ON feeds (next_due)",
    """
    CREATE TABLE seen (
        feed_url  TEXT NOT NULL REFERENCES feeds (url),
        entry_id  TEXT NOT NULL,
        story     TEXT NOT NULL,
        title     TEXT NOT NULL,
        link      TEXT,
        published TEXT,
        seen_at   TEXT NOT NULL,
        PRIMARY KEY (feed_url, entry_id)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX seen_seen_at ON seen (seen_at)",
    """
    CREATE TABLE story_keys (
        key      TEXT NOT NULL,           -- 'link:...' or 'title:...' (monitor.story)
        feed_url TEXT NOT NULL REFERENCES feeds (url),
        story    TEXT NOT NULL,
        seen_at  TEXT NOT NULL,           -- last time this feed recorded the key
        PRIMARY KEY (key, feed_url)
    ) WITHOUT ROWID
    """,
    "CREATE INDEX story_keys_seen_at ON story_keys (seen_at)",
    """
    CREATE TABLE alerts (
        id         INTEGER PRIMARY KEY,
        rule       TEXT NOT NULL,
        story      TEXT NOT NULL,
        title      TEXT NOT NULL,
        link       TEXT,
        published  TEXT,
        summary    TEXT NOT NULL,
        terms      TEXT NOT NULL,         -- JSON array of strings
        hits       TEXT NOT NULL,         -- JSON array of {field, start, end, term}
        created_at TEXT NOT NULL,
        UNIQUE (rule, story)              -- SPEC §5: one alert per rule per story
    )
    """,
    "CREATE INDEX alerts_story ON alerts (story, rule)",
    "CREATE INDEX alerts_created_at ON alerts (created_at)",
    """
    CREATE TABLE alert_sources (
        id       INTEGER PRIMARY KEY,     -- insertion order: the first source comes first
        alert_id INTEGER NOT NULL REFERENCES alerts (id),
        feed     TEXT NOT NULL,
        feed_url TEXT NOT NULL,
        link     TEXT,
        UNIQUE (alert_id, feed_url)
    )
    """,
    """
    CREATE TABLE deliveries (
        id              INTEGER PRIMARY KEY,
        alert_id        INTEGER NOT NULL REFERENCES alerts (id),
        target          TEXT NOT NULL,
        state           TEXT NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'sent', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        created_at      TEXT NOT NULL,
        next_attempt_at TEXT NOT NULL,
        last_error      TEXT,
        sent_at         TEXT,
        UNIQUE (alert_id, target)         -- SPEC §5: one alert per rule per story per target
    )
    """,
    "CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at)",
)

# Issue 4: target pauses (HTTP 429, rate limit), target and feed health, the
# send log behind per-target rate limits, and batches (digest, quiet hours).
_V2 = (
    """
    CREATE TABLE targets (
        name               TEXT PRIMARY KEY,  -- as configured under targets:
        paused_until       TEXT,              -- nothing is sent before this time
        pause_reason       TEXT,              -- why: the target's 429, or our rate limit
        failing_since      TEXT,              -- first failed attempt of the current streak
        last_error         TEXT,
        health_alert_since TEXT               -- failing_since of the streak a health alert named
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE sends (
        id      INTEGER PRIMARY KEY,
        target  TEXT NOT NULL,
        sent_at TEXT NOT NULL                 -- one row per message sent (rate limits)
    )
    """,
    "CREATE INDEX sends_target ON sends (target, sent_at)",
    # NULL: sent on its own; 'digest:RULE' or 'quiet': sent with its batch as one message.
    "ALTER TABLE deliveries ADD COLUMN batch TEXT",
    "CREATE INDEX deliveries_batch ON deliveries (target, batch) WHERE state = 'pending'",
    "ALTER TABLE feeds ADD COLUMN failing_since TEXT",
    "ALTER TABLE feeds ADD COLUMN health_alert_since TEXT",
    # The start of a streak already under way is not known; its last fetch is the best bound.
    "UPDATE feeds SET failing_since = last_fetch WHERE error_streak > 0",
)

# Version 3: adaptive polling (monitor.cadence) remembers the interval it chose, in seconds.
_V3 = ("ALTER TABLE feeds ADD COLUMN poll_interval REAL",)

# Append new migrations here; the schema version is the length of this tuple.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3)
SCHEMA_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The number of migrations applied to this database."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    return int(version)


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the database at ``path`` up to :data:`SCHEMA_VERSION`.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Raises
    :class:`~monitor.errors.StoreError` for a file written by a newer
    news-monitor, or for a database that is not a news-monitor state file.
    Safe when several processes open a new file at once: the version is read
    again under the write lock.
    """
    if schema_version(conn) == SCHEMA_VERSION:
        return  # the common case, with no write lock: `status` beside a running daemon
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(conn)
            _check(conn, path, version)
            if version == SCHEMA_VERSION:
                conn.execute("COMMIT")
                return
            for statement in MIGRATIONS[version]:
                conn.execute(statement)
            # PRAGMA takes no parameters; the value is our own integer.
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise


def _check(conn: sqlite3.Connection, path: str, version: int) -> None:
    """Refuse files this version cannot read."""
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"state file {path} was written by a newer news-monitor (schema {version}, "
            f"this version reads up to {SCHEMA_VERSION}); upgrade news-monitor"
        )
    if version == 0:
        (tables,) = conn.execute(
            "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
        ).fetchone()
        if tables:
            raise StoreError(
                f"state file {path} is an SQLite database that news-monitor did not create; "
                "choose another path for `state:`"
            )
