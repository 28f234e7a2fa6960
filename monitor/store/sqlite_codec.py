"""How values are written into SQLite rows and read back out.

Times are fixed-width ISO-8601 UTC text (``2024-10-18T06:00:00.000000Z``): text
order is time order, so ``<=`` and ``min()`` work in SQL, and the file stays
readable in the ``sqlite3`` shell. Lists (query terms, hits, sets of keys for
``IN``) travel as JSON text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from monitor.model import FeedForUpdate, FeedStatus


def ts(moment: datetime) -> str:
    """An aware datetime as fixed-width UTC text (a naive one is a bug: ValueError)."""
    if moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: the store takes aware UTC times")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ts_opt(moment: datetime | None) -> str | None:
    """:func:`ts`, passing None through."""
    return None if moment is None else ts(moment)


def dt(text: str) -> datetime:
    """Stored time text as an aware UTC datetime."""
    # Python 3.11's fromisoformat reads the trailing "Z" as UTC.
    return datetime.fromisoformat(text)


def dt_opt(text: str | None) -> datetime | None:
    """:func:`dt`, passing None (NULL) through."""
    return None if text is None else dt(text)


def feed_row(row: Sequence[Any]) -> FeedForUpdate:
    """A feeds row as the poller's view of it.

    Columns: url, fetch_url, title, etag, last_modified, body_hash, status,
    error_streak, last_success, next_due, poll_interval (seconds).
    """
    return FeedForUpdate(
        url=row[0],
        fetch_url=row[1],
        title=row[2],
        etag=row[3],
        last_modified=row[4],
        body_hash=row[5],
        status=FeedStatus(row[6]),
        error_streak=row[7],
        last_success=dt_opt(row[8]),
        next_due=dt_opt(row[9]),
        poll_interval=timedelta(seconds=row[10]) if row[10] is not None else None,
    )
