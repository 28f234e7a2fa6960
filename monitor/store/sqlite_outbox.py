"""SQLite queries for the delivery side: the outbox of alerts and deliveries, and ``status``.

Each function runs inside a transaction the caller (:class:`~monitor.store.sqlite.SQLiteStore`)
opened; none commits.
"""

from __future__ import annotations

import sqlite3
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
from monitor.store.rows import alert_records as build_alert_records
from monitor.store.rows import (
    feed_reports,
    hits_from_json,
    json_list,
    recent_alerts,
    terms_from_json,
)
from monitor.store.sqlite_codec import dt, dt_opt, ts


def pending_deliveries(
    conn: sqlite3.Connection, now: datetime, limit: int
) -> list[PendingDelivery]:
    """Up to ``limit`` pending deliveries due at ``now``, oldest first, with their alerts."""
    rows = conn.execute(
        "SELECT id, target, attempts, created_at, alert_id FROM deliveries"
        " WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY created_at, id LIMIT ?",
        (ts(now), limit),
    ).fetchall()
    alerts = alert_records(conn, {row[4] for row in rows})
    return [
        PendingDelivery(
            id=row[0], target=row[1], attempts=row[2], created_at=dt(row[3]), alert=alerts[row[4]]
        )
        for row in rows
    ]


def _queued(conn: sqlite3.Connection, rows: list[Any]) -> list[QueuedDelivery]:
    alerts = alert_records(conn, {row[4] for row in rows})
    return [
        QueuedDelivery(
            PendingDelivery(
                id=row[0],
                target=row[1],
                attempts=row[2],
                created_at=dt(row[3]),
                alert=alerts[row[4]],
            ),
            batch=row[5],
            due=dt(row[6]),
        )
        for row in rows
    ]


def due_deliveries(conn: sqlite3.Connection, now: datetime, limit: int) -> list[QueuedDelivery]:
    """See :meth:`monitor.store.base.Store.due_deliveries`."""
    moment = ts(now)
    rows = conn.execute(
        "SELECT id, target, attempts, created_at, alert_id, batch, next_attempt_at"
        " FROM deliveries WHERE state = 'pending' AND next_attempt_at <= ?1"
        " AND target NOT IN (SELECT name FROM targets WHERE paused_until > ?1)"
        " ORDER BY created_at, id LIMIT ?2",
        (moment, limit),
    ).fetchall()
    return _queued(conn, rows)


def batch_members(conn: sqlite3.Connection, target: str, batch: str) -> list[QueuedDelivery]:
    """See :meth:`monitor.store.base.Store.batch_members`."""
    rows = conn.execute(
        "SELECT id, target, attempts, created_at, alert_id, batch, next_attempt_at"
        " FROM deliveries WHERE state = 'pending' AND target = ? AND batch = ?"
        " ORDER BY created_at, id",
        (target, batch),
    ).fetchall()
    return _queued(conn, rows)


def hold(conn: sqlite3.Connection, ids: Sequence[int], batch: str, until: datetime) -> datetime:
    """See :meth:`monitor.store.base.Store.hold`."""
    wanted = json_list(ids)
    targets = conn.execute(
        "SELECT DISTINCT target FROM deliveries WHERE id IN (SELECT value FROM json_each(?))",
        (wanted,),
    ).fetchall()
    if len(targets) > 1:
        raise ValueError("hold: deliveries of one target at a time")
    if not targets:
        return until
    (due,) = conn.execute(
        "SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending' AND target = ?"
        " AND batch = ? AND id NOT IN (SELECT value FROM json_each(?))",
        (targets[0][0], batch, wanted),
    ).fetchone()
    release = due or ts(until)
    conn.execute(
        "UPDATE deliveries SET batch = ?, next_attempt_at = ?"
        " WHERE state = 'pending' AND id IN (SELECT value FROM json_each(?))",
        (batch, release, wanted),
    )
    return dt(release)


def next_delivery_due(conn: sqlite3.Connection) -> datetime | None:
    """When the earliest pending delivery becomes due."""
    (due,) = conn.execute(
        "SELECT min(next_attempt_at) FROM deliveries WHERE state = 'pending'"
    ).fetchone()
    return dt_opt(due)


def record(conn: sqlite3.Connection, outcome: DeliveryOutcome) -> None:
    """Write one delivery attempt's outcome; see :meth:`monitor.store.sqlite.SQLiteStore.record`."""
    attempts = 1 if outcome.count_attempt else 0
    if outcome.state is DeliveryState.SENT:
        conn.execute(
            "UPDATE deliveries SET state = 'sent', sent_at = ?, attempts = attempts + ?"
            " WHERE id = ? AND state = 'pending'",
            (ts(outcome.now), attempts, outcome.id),
        )
    elif outcome.state is DeliveryState.PENDING:
        if outcome.next_attempt is None:
            raise ValueError(f"delivery {outcome.id}: a PENDING outcome needs next_attempt")
        conn.execute(
            "UPDATE deliveries SET next_attempt_at = ?, last_error = ?, attempts = attempts + ?"
            " WHERE id = ? AND state = 'pending'",
            (ts(outcome.next_attempt), outcome.error, attempts, outcome.id),
        )
    else:
        conn.execute(
            "UPDATE deliveries SET state = 'failed', last_error = ?, attempts = attempts + ?"
            " WHERE id = ? AND state = 'pending'",
            (outcome.error, attempts, outcome.id),
        )


def alert_records(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, AlertRecord]:
    """The alerts with these ids, each with its sources in the order they were recorded."""
    wanted = json_list(sorted(ids))
    sources = conn.execute(
        "SELECT alert_id, feed, link FROM alert_sources"
        " WHERE alert_id IN (SELECT value FROM json_each(?)) ORDER BY id",
        (wanted,),
    ).fetchall()
    alerts = conn.execute(
        "SELECT id, rule, title, link, published, summary, terms, hits, created_at"
        " FROM alerts WHERE id IN (SELECT value FROM json_each(?))",
        (wanted,),
    )
    return build_alert_records(alerts, sources, dt, terms_from_json, hits_from_json)


def status(conn: sqlite3.Connection, recent: int) -> StatusReport:
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
        " ORDER BY id DESC LIMIT ?",
        (recent,),
    ).fetchall()
    return StatusReport(
        feeds=_feed_reports(conn),
        pending=pending,
        failed=counts.get("failed", (0, None))[0],
        oldest_pending=dt_opt(oldest),
        recent_alerts=_recent_alerts(conn, recent),
        failed_deliveries=tuple((row[0], row[1], row[2]) for row in failed),
    )


def _feed_reports(conn: sqlite3.Connection) -> tuple[FeedReport, ...]:
    rows = conn.execute(
        "SELECT url, title, status, http_status, error, error_streak, last_fetch,"
        " last_success, next_due,"
        " (SELECT count(*) FROM seen WHERE seen.feed_url = feeds.url)"
        " FROM feeds ORDER BY url"
    )
    return feed_reports(rows, dt_opt)


def _recent_alerts(conn: sqlite3.Connection, recent: int) -> tuple[AlertReport, ...]:
    rows = conn.execute(
        "SELECT id, rule, title, link, created_at FROM alerts"
        " ORDER BY created_at DESC, id DESC LIMIT ?",
        (recent,),
    ).fetchall()
    deliveries = conn.execute(
        "SELECT alert_id, target, state FROM deliveries"
        " WHERE alert_id IN (SELECT value FROM json_each(?)) ORDER BY id",
        (json_list(row[0] for row in rows),),
    )
    return recent_alerts(rows, deliveries, dt)
