"""How values are written into PostgreSQL rows and read back out.

Times are ``timestamptz``. The session runs in UTC, so psycopg reads them back
as aware datetimes in :data:`datetime.UTC`, exactly as the SQLite store returns
them. A naive datetime is refused here rather than being read in the server's
time zone. Lists (query terms, hits) are JSON text in the same shape as SQLite's
(:mod:`monitor.store.sqlite_codec`), which also keeps NUL escapes out of reach
of ``jsonb``; sets of values for ``= ANY(...)`` travel as arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import psycopg
from psycopg.rows import TupleRow

from monitor.model import FeedForUpdate, FeedStatus

# One connection, rows as tuples.
Conn: TypeAlias = psycopg.Connection[TupleRow]

# The columns :func:`feed_row` reads, in its order.
FEED_COLUMNS = (
    "url, fetch_url, title, etag, last_modified, body_hash, status, error_streak,"
    " last_success, next_due, poll_interval"
)


def ts(moment: datetime) -> datetime:
    """An aware datetime in UTC (a naive one is a bug: ValueError, as in SQLite)."""
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: the store takes aware UTC times")
    return moment.astimezone(UTC)


def ts_opt(moment: datetime | None) -> datetime | None:
    """:func:`ts`, passing None through."""
    return None if moment is None else ts(moment)


def utc(moment: datetime) -> datetime:
    """A stored time as read: already UTC when the session is; converted if not."""
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def utc_opt(moment: datetime | None) -> datetime | None:
    """:func:`utc`, passing None (NULL) through."""
    return None if moment is None else utc(moment)


def feed_row(row: Sequence[Any]) -> FeedForUpdate:
    """A feeds row (:data:`FEED_COLUMNS`) as the poller's view of it."""
    return FeedForUpdate(
        url=row[0],
        fetch_url=row[1],
        title=row[2],
        etag=row[3],
        last_modified=row[4],
        body_hash=row[5],
        status=FeedStatus(row[6]),
        error_streak=row[7],
        last_success=utc_opt(row[8]),
        next_due=utc_opt(row[9]),
        poll_interval=timedelta(seconds=row[10]) if row[10] is not None else None,
    )
