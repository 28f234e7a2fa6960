"""SQLite queries for targets and health: pauses, failing streaks, the send log, health alerts.

Each function runs inside a transaction the caller (:class:`~monitor.store.sqlite.SQLiteStore`)
opened; none commits. A target gets its row the first time something is
recorded about it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime

from monitor.store.base import (
    FeedHealth,
    HealthNotice,
    HealthSubject,
    MessageOutcome,
    TargetState,
)
from monitor.store.rows import SENDS_KEPT, json_list
from monitor.store.rows import feed_health as rows_feed_health
from monitor.store.sqlite_codec import dt, dt_opt, ts, ts_opt
from monitor.store.sqlite_feeds import insert_alert
from monitor.store.sqlite_outbox import record

# The send log only serves rate limits; a period longer than this counts this much.


def record_message(conn: sqlite3.Connection, outcome: MessageOutcome) -> None:
    """See :meth:`monitor.store.base.Store.record_message`."""
    for delivery in outcome.deliveries:
        record(conn, delivery)
    now = ts(outcome.now)
    conn.execute("INSERT INTO targets (name) VALUES (?) ON CONFLICT DO NOTHING", (outcome.target,))
    if outcome.requested:
        conn.execute("INSERT INTO sends (target, sent_at) VALUES (?, ?)", (outcome.target, now))
        conn.execute(
            "DELETE FROM sends WHERE target = ? AND sent_at < ?",
            (outcome.target, ts(outcome.now - SENDS_KEPT)),
        )
    if outcome.sent:
        conn.execute(
            "UPDATE targets SET failing_since = NULL, last_error = NULL WHERE name = ?",
            (outcome.target,),
        )
    elif outcome.paused_until is not None:
        _pause(conn, outcome.target, outcome.paused_until, "the target asked to slow down (429)")
    elif outcome.error is not None:
        conn.execute(
            "UPDATE targets SET failing_since = coalesce(failing_since, ?), last_error = ?"
            " WHERE name = ?",
            (now, outcome.error, outcome.target),
        )


def pause_target(conn: sqlite3.Connection, name: str, until: datetime, reason: str) -> None:
    """See :meth:`monitor.store.base.Store.pause_target`."""
    conn.execute("INSERT INTO targets (name) VALUES (?) ON CONFLICT DO NOTHING", (name,))
    _pause(conn, name, until, reason)


def _pause(conn: sqlite3.Connection, name: str, until: datetime, reason: str) -> None:
    conn.execute(
        "UPDATE targets SET paused_until = ?, pause_reason = ? WHERE name = ?",
        (ts(until), reason, name),
    )


def target_states(conn: sqlite3.Connection) -> dict[str, TargetState]:
    """See :meth:`monitor.store.base.Store.target_states`."""
    return {
        row[0]: TargetState(
            name=row[0],
            paused_until=dt_opt(row[1]),
            pause_reason=row[2],
            failing_since=dt_opt(row[3]),
            last_error=row[4],
            health_alert_since=dt_opt(row[5]),
        )
        for row in conn.execute(
            "SELECT name, paused_until, pause_reason, failing_since, last_error,"
            " health_alert_since FROM targets ORDER BY name"
        )
    }


def sends_since(conn: sqlite3.Connection, target: str, since: datetime) -> list[datetime]:
    """See :meth:`monitor.store.base.Store.sends_since`."""
    return [
        dt(row[0])
        for row in conn.execute(
            "SELECT sent_at FROM sends WHERE target = ? AND sent_at >= ? ORDER BY sent_at, id",
            (target, ts(since)),
        )
    ]


def feed_health(conn: sqlite3.Connection, urls: Sequence[str]) -> list[FeedHealth]:
    """See :meth:`monitor.store.base.Store.feed_health`."""
    rows = conn.execute(
        "SELECT url, title, status, error, error_streak, failing_since, health_alert_since"
        " FROM feeds WHERE url IN (SELECT value FROM json_each(?))"
        " AND (failing_since IS NOT NULL OR health_alert_since IS NOT NULL) ORDER BY url",
        (json_list(urls),),
    )
    return rows_feed_health(rows, dt_opt)


def queue_health(conn: sqlite3.Connection, notice: HealthNotice, now: datetime) -> bool:
    """See :meth:`monitor.store.base.Store.queue_health`."""
    new = insert_alert(conn, notice.alert, ts(now))
    since = ts_opt(notice.alerted_since)
    if notice.subject is HealthSubject.FEED:
        conn.execute("UPDATE feeds SET health_alert_since = ? WHERE url = ?", (since, notice.name))
    else:
        conn.execute("INSERT INTO targets (name) VALUES (?) ON CONFLICT DO NOTHING", (notice.name,))
        conn.execute(
            "UPDATE targets SET health_alert_since = ? WHERE name = ?", (since, notice.name)
        )
    return new
