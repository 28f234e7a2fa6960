"""The PostgreSQL schema as an ordered list of migrations, and how a database is brought up to date.

The schema version is the one row of ``schema_version``: version N means the
first N migrations have been applied. PostgreSQL runs DDL inside transactions,
so the pending migrations commit together with the version bump or not at all.
Processes starting at once against a new database (SPEC §8: many workers,
many machines) queue on one advisory lock; each reads the version again in a
transaction begun once it holds the lock, so every migration runs exactly once.

The logical schema is the SQLite one at its version 3 (:mod:`monitor.store.migrations`):
the same tables, columns and uniqueness rules, with ``timestamptz`` for times.
Its version numbers are this backend's own. Migrations are append-only: never
edit one that has shipped, add a new one.

Tables live in the connection's current schema (the first of ``search_path``),
so several installations can share one database under different schemas.
"""

from __future__ import annotations

from collections.abc import Callable

from monitor.errors import StoreError
from monitor.store.postgres_codec import Conn
from monitor.store.postgres_stories import CLAIM_FUNCTION

# Held by the one process migrating this database (whatever schema it uses); the
# value only has to differ from other applications' advisory locks ("nmSC").
MIGRATION_LOCK = 0x6E6D5343

_V1 = (
    """
    CREATE TABLE feeds (
        url                text COLLATE "C" PRIMARY KEY,  -- "C": URL order as in SQLite
        fetch_url          text NOT NULL,
        title              text,
        etag               text,
        last_modified      text,
        body_hash          text,
        status             text NOT NULL DEFAULT 'new',
        http_status        integer,
        error              text,
        error_streak       integer NOT NULL DEFAULT 0,
        last_fetch         timestamptz,
        last_success       timestamptz,
        next_due           timestamptz,
        failing_since      timestamptz,   -- first error of the current streak
        health_alert_since timestamptz,   -- failing_since of the streak a health alert named
        poll_interval      double precision  -- seconds, chosen by monitor.cadence
    )
    """,
    "CREATE INDEX feeds_next_due ON feeds (next_due)",
    """
    CREATE TABLE seen (
        feed_url  text NOT NULL REFERENCES feeds (url),
        entry_id  text NOT NULL,
        story     text NOT NULL,
        title     text NOT NULL,
        link      text,
        published timestamptz,
        seen_at   timestamptz NOT NULL,
        PRIMARY KEY (feed_url, entry_id)
    )
    """,
    "CREATE INDEX seen_seen_at ON seen (seen_at)",
    """
    CREATE TABLE story_keys (
        key      text NOT NULL,           -- 'link:...' or 'title:...' (monitor.story)
        feed_url text NOT NULL REFERENCES feeds (url),
        story    text NOT NULL,
        seen_at  timestamptz NOT NULL,    -- last time this feed recorded the key
        PRIMARY KEY (key, feed_url)
    )
    """,
    "CREATE INDEX story_keys_seen_at ON story_keys (seen_at)",
    """
    CREATE TABLE alerts (
        id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        rule       text NOT NULL,
        story      text NOT NULL,
        title      text NOT NULL,
        link       text,
        published  timestamptz,
        summary    text NOT NULL,
        terms      text NOT NULL,         -- JSON array of strings
        hits       text NOT NULL,         -- JSON array of {field, start, end, term}
        created_at timestamptz NOT NULL,
        UNIQUE (rule, story)              -- SPEC §5: one alert per rule per story
    )
    """,
    "CREATE INDEX alerts_story ON alerts (story, rule)",
    "CREATE INDEX alerts_created_at ON alerts (created_at)",
    """
    CREATE TABLE alert_sources (
        id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,  -- the first source first
        alert_id bigint NOT NULL REFERENCES alerts (id),
        feed     text NOT NULL,
        feed_url text NOT NULL,
        link     text,
        UNIQUE (alert_id, feed_url)
    )
    """,
    """
    CREATE TABLE deliveries (
        id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        alert_id        bigint NOT NULL REFERENCES alerts (id),
        target          text NOT NULL,
        state           text NOT NULL DEFAULT 'pending'
                        CHECK (state IN ('pending', 'sent', 'failed')),
        attempts        integer NOT NULL DEFAULT 0,
        created_at      timestamptz NOT NULL,
        next_attempt_at timestamptz NOT NULL,
        last_error      text,
        sent_at         timestamptz,
        -- NULL: sent on its own; 'digest:RULE' or 'quiet': sent with its batch as one message.
        batch           text,
        UNIQUE (alert_id, target)         -- SPEC §5: one alert per rule per story per target
    )
    """,
    "CREATE INDEX deliveries_due ON deliveries (state, next_attempt_at)",
    "CREATE INDEX deliveries_batch ON deliveries (target, batch) WHERE state = 'pending'",
    """
    CREATE TABLE targets (
        name               text COLLATE "C" PRIMARY KEY,  -- as configured under targets:
        paused_until       timestamptz,   -- nothing is sent before this time
        pause_reason       text,          -- why: the target's 429, or our rate limit
        failing_since      timestamptz,   -- first failed attempt of the current streak
        last_error         text,
        health_alert_since timestamptz    -- failing_since of the streak a health alert named
    )
    """,
    """
    CREATE TABLE sends (
        id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        target  text NOT NULL,
        sent_at timestamptz NOT NULL      -- one row per message sent (rate limits)
    )
    """,
    "CREATE INDEX sends_target ON sends (target, sent_at)",
)

# Many workers (issue 7): polls claim their story keys (monitor.store.postgres_stories).
_V2 = (CLAIM_FUNCTION,)

# Append new migrations here; the schema version is the length of this tuple.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2)
SCHEMA_VERSION = len(MIGRATIONS)

# Tables of ours: a database holding any of them without a schema_version is not ours.
TABLES = (
    "feeds", "seen", "story_keys", "alerts", "alert_sources", "deliveries", "targets", "sends",
)  # fmt: skip

# Read from the catalog tables with the statement's snapshot, not through the
# backend's name cache (as to_regclass would), which may still miss a table
# another process has just created.
_VERSION_TABLE = (
    "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relname = 'schema_version'"
)


def schema_version(conn: Conn) -> int:
    """The number of migrations applied in the current schema (0 for none)."""
    if conn.execute(_VERSION_TABLE).fetchone() is None:
        return 0
    version = conn.execute("SELECT version FROM schema_version").fetchone()
    return 0 if version is None else int(version[0])


def migrate(conn: Conn, name: str) -> None:
    """Bring the database ``name`` (for messages) up to :data:`SCHEMA_VERSION`.

    ``conn`` must be in autocommit mode. Raises :class:`~monitor.errors.StoreError`
    for a database written by a newer news-monitor, or one holding tables of
    ours that news-monitor did not create. Safe when several processes start
    at once: they take turns on an advisory lock, taken before the migrating
    transaction begins so that the transaction sees everything the previous
    holder committed.
    """
    version = schema_version(conn)
    _check_newer(name, version)
    if version == SCHEMA_VERSION:
        return  # the common case: no lock, no write
    under_migration_lock(conn, _migrate_locked, name)


def under_migration_lock(conn: Conn, work: Callable[[Conn, str], None], name: str) -> None:
    """``work(conn, name)`` in one transaction, holding the migration lock (autocommit ``conn``).

    The lock is taken before the transaction begins, so that the transaction
    sees everything the previous holder committed.
    """
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        conn.execute("BEGIN")
        try:
            work(conn, name)
            conn.execute("COMMIT")
        except BaseException:
            if not conn.broken:
                conn.execute("ROLLBACK")
            raise
    finally:
        if not conn.broken:  # a lost connection has released the lock already
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


def _migrate_locked(conn: Conn, name: str) -> None:
    version = schema_version(conn)  # again: another process may have migrated meanwhile
    _check_newer(name, version)
    if version == SCHEMA_VERSION:
        return
    if version == 0:
        _check_foreign(conn, name)
        conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        conn.execute("INSERT INTO schema_version (version) VALUES (0)")
    for statement in (s for migration in MIGRATIONS[version:] for s in migration):
        conn.execute(statement)
    conn.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))


def _check_newer(name: str, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"PostgreSQL database {name} was written by a newer news-monitor (schema {version},"
            f" this version reads up to {SCHEMA_VERSION}); upgrade news-monitor"
        )


def _check_foreign(conn: Conn, name: str) -> None:
    """Refuse a schema where tables of our names exist that we did not create."""
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables"
        " WHERE table_schema = current_schema() AND table_name = ANY(%s) ORDER BY table_name",
        (list(TABLES),),
    ).fetchall()
    if rows:
        found = ", ".join(row[0] for row in rows)
        raise StoreError(
            f"PostgreSQL database {name} already has tables news-monitor did not create"
            f" ({found}); choose another database or schema for `state:`"
        )
