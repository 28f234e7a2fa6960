"""PostgreSQL queries for the delivery side: the outbox of alerts and deliveries, and ``status``.

The same statements as :mod:`monitor.store.sqlite_outbox`, in PostgreSQL's
dialect. Each function runs inside a transaction the caller
(:class:`~monitor.store.postgres.PostgresStore`) opened; none commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from monitor.model import (
    AlertRecord,
    AlertReport,
    DeliveryOutcome,
    DeliveryState,
    FeedReport,
    PendingDelivery,
    StatusReport,
)
from monitor.store.base import QueuedDelivery
from monitor.store.postgres_codec import Conn, ts, utc, utc_opt
from monitor.store.rows import alert_records as build_alert_records
from monitor.store.rows import feed_reports, hits_from_json, recent_alerts, terms_from_json


def pending_deliveries(conn: Conn, now: datetime, limit: int) -> list[PendingDelivery]:
    """Up to ``limit`` pending deliveries due at ``now``, oldest first, with their alerts."""
    rows = conn.execute(
        "SELECT id, target, attempts, created_at, alert_id FROM deliveries"
        " WHERE state = 'pending' AND next_attempt_at <= %s ORDER BY created_at, id LIMIT %s",
        (ts(now), limit),
    ).fetchall()
    alerts = alert_records(conn, {row[4] for row in rows})
    return [
        PendingDelivery(
            id=row[0], target=row[1], attempts=row[2], created_at=utc(row[3]), alert=alerts[row[4]]
        )
        for row in rows
    ]


def _queued(conn: Conn, rows: list[Any]) -> list[QueuedDelivery]:
    alerts = alert_records(conn, {row[4] for row in rows})
    return [
        QueuedDelivery(
            PendingDelivery(
                id=row[0],
                target=row[1],
                attempts=row[2],
                created_at=utc(row[3]),
                alert=alerts[row[4]],
            ),
            batch=row[5],
            due=utc(row[6]),
        )
        for row in rows
    ]


def due_deliveries(conn: Conn, now: datetime, limit: int) -> list[QueuedDelivery]:
    """See :meth:`monitor.store.base.Store.due_deliveries`."""
    rows = conn.execute(
        "SELECT id, target, attempts, created_at, alert_id, batch, next_attempt_at"
        " FROM deliveries WHERE state = 'pending' AND next_attempt_at <= %(now)s"
        " AND target NOT IN (SELECT name FROM targets WHERE paused_until > %(now)s)"
        " ORDER BY created_at, id LIMIT %(limit)s",
        {"now": ts(now), "limit": limit},
    ).fetchall()
    return _queued(conn, rows)


def batch_members(conn: Conn, target: str, batch: str) -> list[QueuedDelivery]:
    """See :meth:`monitor.store.base.Store.batch_members`."""
    rows = conn.execute(
        "SELECT id, target, attempts, created_at, alert_id, batch, next_attempt_at"
        " FROM deliveries WHERE state = 'pending' AND target = %s AND batch = %s"
        " ORDER BY created_at, id",
        (target, batch),
    ).fetchall()
    return _queued(conn, rows)


def hold(conn: Conn, ids: Sequence[int], batch: str, until: datetime) -> datetime:
    """See :meth:`monitor.store.base.Store.hold`."""
    wanted = list(ids)
    targets = conn.execute(
        "SELECT DISTINCT target FROM deliveries WHERE id = ANY(%s::bigint[])", (wanted,)
    ).fetchall()
    if len(targets) > 1:
        raise ValueError("hold: deliveries of one target at a time")
    if not targets:
        return until
    row = conn.execute(
        "SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending' AND target = %s"
        " AND batch = %s AND NOT id = ANY(%s::bigint[])",
        (targets[0][0], batch, wanted),
    ).fetchone()
    release: datetime = ts(until) if row is None or row[0] is None else utc(row[0])
    conn.execute(
        "UPDATE deliveries SET batch = %s, next_attempt_at = %s"
        " WHERE state = 'pending' AND id = ANY(%s::bigint[])",
        (batch, release, wanted),
    )
    return release


def next_delivery_due(conn: Conn) -> datetime | None:
    """When the earliest pending delivery becomes due."""
    row = conn.execute(
        "SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'"
    ).fetchone()
    return None if row is None else utc_opt(row[0])


def record(conn: Conn, outcome: DeliveryOutcome) -> None:
    """Write one delivery attempt's outcome; see :meth:`monitor.store.sqlite.SQLiteStore.record`."""
    attempts = 1 if outcome.count_attempt else 0
    if outcome.state is DeliveryState.SENT:
        conn.execute(
            "UPDATE deliveries SET state = 'sent', sent_at = %s, attempts = attempts + %s"
            " WHERE id = %s AND state = 'pending'",
            (ts(outcome.now), attempts, outcome.id),
        )
    elif outcome.state is DeliveryState.PENDING:
        if outcome.next_attempt is None:
            raise ValueError(f"delivery {outcome.id}: a PENDING outcome needs next_attempt")
        conn.execute(
            "UPDATE deliveries SET next_attempt_at = %s, last_error = %s,"
            " attempts = attempts + %s WHERE id = %s AND state = 'pending'",
            (ts(outcome.next_attempt), outcome.error, attempts, outcome.id),
        )
    else:
        conn.execute(
            "UPDATE deliveries SET state = 'failed', last_error = %s, attempts = attempts + %s"
            " WHERE id = %s AND state = 'pending'",
            (outcome.error, attempts, outcome.id),
        )


def alert_records(conn: Conn, ids: Iterable[int]) -> dict[int, AlertRecord]:
    """The alerts with these ids, each with its sources in the order they were recorded."""
    wanted = sorted(ids)
    sources = conn.execute(
        "SELECT alert_id, feed, link FROM alert_sources WHERE alert_id = ANY(%s::bigint[])"
        " ORDER BY id",
        (wanted,),
    ).fetchall()
    alerts = conn.execute(
        "SELECT id, rule, title, link, published, summary, terms, hits, created_at"
        " FROM alerts WHERE id = ANY(%s::bigint[])",
        (wanted,),
    ).fetchall()
    return build_alert_records(alerts, sources, utc, terms_from_json, hits_from_json)


def status(conn: Conn, recent: int) -> StatusReport:
    """See :meth:`monitor.store.sqlite.SQLiteStore.status`."""
    counts = {
        state: (count, oldest)
        for state, count, oldest in conn.execute(
            "SELECT state, count(*), min(created_at) FROM deliveries"
            " WHERE state IN ('pending', 'failed') GROUP BY state"
        )
    }
    pending, oldest = counts.get("pending", (0, None))
    failed = conn.execute(
        "SELECT alert_id, target, last_error FROM deliveries WHERE state = 'failed'"
        " ORDER BY id DESC LIMIT %s",
        (recent,),
    ).fetchall()
    return StatusReport(
        feeds=_feed_reports(conn),
        pending=pending,
        failed=counts.get("failed", (0, None))[0],
        oldest_pending=utc_opt(oldest),
        recent_alerts=_recent_alerts(conn, recent),
        failed_deliveries=tuple((row[0], row[1], row[2]) for row in failed),
    )


def _feed_reports(conn: Conn) -> tuple[FeedReport, ...]:
    rows = conn.execute(
        "SELECT url, title, status, http_status, error, error_streak, last_fetch,"
        " last_success, next_due,"
        " (SELECT count(*) FROM seen WHERE seen.feed_url = feeds.url)"
        " FROM feeds ORDER BY url"
    )
    return feed_reports(rows, utc_opt)


def _recent_alerts(conn: Conn, recent: int) -> tuple[AlertReport, ...]:
    rows = conn.execute(
        "SELECT id, rule, title, link, created_at FROM alerts"
        " ORDER BY created_at DESC, id DESC LIMIT %s",
        (recent,),
    ).fetchall()
    deliveries = conn.execute(
        "SELECT alert_id, target, state FROM deliveries WHERE alert_id = ANY(%s::bigint[])"
        " ORDER BY id",
        ([row[0] for row in rows],),
    ).fetchall()
    return recent_alerts(rows, deliveries, utc)


def due_targets(conn: Conn, now: datetime) -> list[str]:
    """Targets not paused at ``now`` with a pending delivery due then, in name order."""
    rows = conn.execute(
        "SELECT target FROM deliveries WHERE state = 'pending'"
        " AND next_attempt_at <= %(now)s"
        " AND target NOT IN (SELECT name FROM targets WHERE paused_until > %(now)s)"
        ' GROUP BY target ORDER BY target COLLATE "C"',
        {"now": ts(now)},
    ).fetchall()
    return [row[0] for row in rows]


def due_deliveries_to(conn: Conn, target: str, now: datetime, limit: int) -> list[QueuedDelivery]:
    """:func:`due_deliveries` for one target: none while it is paused."""
    rows = conn.execute(
        "SELECT id, target, attempts, created_at, alert_id, batch, next_attempt_at"
        " FROM deliveries WHERE state = 'pending' AND target = %(target)s"
        " AND next_attempt_at <= %(now)s"
        " AND NOT EXISTS (SELECT 1 FROM targets WHERE name = %(target)s"
        " AND paused_until > %(now)s)"
        " ORDER BY created_at, id LIMIT %(limit)s",
        {"target": target, "now": ts(now), "limit": limit},
    ).fetchall()
    return _queued(conn, rows)
