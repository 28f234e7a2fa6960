"""PostgreSQL queries for targets and health: pauses, failing streaks, the send log, health alerts.

The same statements as :mod:`monitor.store.sqlite_targets`, in PostgreSQL's
dialect. Each function runs inside a transaction the caller
(:class:`~monitor.store.postgres.PostgresStore`) opened; none commits. A target
gets its row the first time something is recorded about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from monitor.store.base import (
    FeedHealth,
    HealthNotice,
    HealthSubject,
    MessageOutcome,
    TargetState,
)
from monitor.store.postgres_codec import Conn, ts, ts_opt, utc, utc_opt
from monitor.store.postgres_feeds import insert_alert
from monitor.store.postgres_outbox import record
from monitor.store.rows import SENDS_KEPT
from monitor.store.rows import feed_health as rows_feed_health

_ADD_TARGET = "INSERT INTO targets (name) VALUES (%s) ON CONFLICT DO NOTHING"


def record_message(conn: Conn, outcome: MessageOutcome) -> None:
    """See :meth:`monitor.store.base.Store.record_message`."""
    for delivery in outcome.deliveries:
        record(conn, delivery)
    now = ts(outcome.now)
    conn.execute(_ADD_TARGET, (outcome.target,))
    if outcome.requested:
        conn.execute("INSERT INTO sends (target, sent_at) VALUES (%s, %s)", (outcome.target, now))
        conn.execute(
            "DELETE FROM sends WHERE target = %s AND sent_at < %s",
            (outcome.target, now - SENDS_KEPT),
        )
    if outcome.sent:
        conn.execute(
            "UPDATE targets SET failing_since = NULL, last_error = NULL WHERE name = %s",
            (outcome.target,),
        )
    elif outcome.paused_until is not None:
        _pause(conn, outcome.target, outcome.paused_until, "the target asked to slow down (429)")
    elif outcome.error is not None:
        conn.execute(
            "UPDATE targets SET failing_since = coalesce(failing_since, %s), last_error = %s"
            " WHERE name = %s",
            (now, outcome.error, outcome.target),
        )


def pause_target(conn: Conn, name: str, until: datetime, reason: str) -> None:
    """See :meth:`monitor.store.base.Store.pause_target`."""
    conn.execute(_ADD_TARGET, (name,))
    _pause(conn, name, until, reason)


def _pause(conn: Conn, name: str, until: datetime, reason: str) -> None:
    conn.execute(
        "UPDATE targets SET paused_until = %s, pause_reason = %s WHERE name = %s",
        (ts(until), reason, name),
    )


def target_states(conn: Conn) -> dict[str, TargetState]:
    """See :meth:`monitor.store.base.Store.target_states`."""
    return {
        row[0]: TargetState(
            name=row[0],
            paused_until=utc_opt(row[1]),
            pause_reason=row[2],
            failing_since=utc_opt(row[3]),
            last_error=row[4],
            health_alert_since=utc_opt(row[5]),
        )
        for row in conn.execute(
            "SELECT name, paused_until, pause_reason, failing_since, last_error,"
            " health_alert_since FROM targets ORDER BY name"
        )
    }


def sends_since(conn: Conn, target: str, since: datetime) -> list[datetime]:
    """See :meth:`monitor.store.base.Store.sends_since`."""
    return [
        utc(row[0])
        for row in conn.execute(
            "SELECT sent_at FROM sends WHERE target = %s AND sent_at >= %s ORDER BY sent_at, id",
            (target, ts(since)),
        )
    ]


def feed_health(conn: Conn, urls: Sequence[str]) -> list[FeedHealth]:
    """See :meth:`monitor.store.base.Store.feed_health`."""
    rows = conn.execute(
        "SELECT url, title, status, error, error_streak, failing_since, health_alert_since"
        " FROM feeds WHERE url = ANY(%s::text[])"
        " AND (failing_since IS NOT NULL OR health_alert_since IS NOT NULL) ORDER BY url",
        (list(urls),),
    )
    return rows_feed_health(rows, utc_opt)


def queue_health(conn: Conn, notice: HealthNotice, now: datetime) -> bool:
    """See :meth:`monitor.store.base.Store.queue_health`."""
    new = insert_alert(conn, notice.alert, ts(now))
    since = ts_opt(notice.alerted_since)
    if notice.subject is HealthSubject.FEED:
        conn.execute(
            "UPDATE feeds SET health_alert_since = %s WHERE url = %s", (since, notice.name)
        )
    else:
        conn.execute(_ADD_TARGET, (notice.name,))
        conn.execute(
            "UPDATE targets SET health_alert_since = %s WHERE name = %s", (since, notice.name)
        )
    return new
