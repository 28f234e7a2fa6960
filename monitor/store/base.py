"""The interface every state store satisfies (SQLite now, PostgreSQL later, SPEC §8).

The store is the only place state lives; the scheduler and the pipeline hold
nothing it does not. Each method is one transaction. Times are aware UTC
datetimes passed in by the caller: the store never reads the clock, so tests
set time by argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from monitor.model import (
    DeliveryOutcome,
    FeedForUpdate,
    FeedUpdateIntent,
    PendingDelivery,
    StatusReport,
    StoreLookup,
)


class Store(Protocol):
    """Durable state of one news-monitor installation."""

    def sync_feeds(self, urls: Sequence[str], now: datetime) -> None:
        """Make sure every configured feed has a row; new ones are due at ``now``.

        Feeds no longer configured keep their rows (their seen entries still
        prevent duplicate alerts if they come back) but are not returned by
        :meth:`due_feeds` unless listed again.
        """
        ...

    def feeds(self, urls: Sequence[str]) -> list[FeedForUpdate]:
        """The stored state of these feeds, in the order given (unknown URLs skipped)."""
        ...

    def due_feeds(self, urls: Sequence[str], now: datetime, limit: int) -> list[FeedForUpdate]:
        """Up to ``limit`` of these feeds whose next due time is at or before ``now``.

        Most overdue first. Feeds disabled by 410 Gone are never due.
        """
        ...

    def next_due(self, urls: Sequence[str]) -> datetime | None:
        """The earliest next due time among these feeds (None when none is scheduled)."""
        ...

    def lookup(
        self,
        feed_url: str,
        entry_ids: Sequence[str],
        link_keys: Sequence[str],
        title_keys: Sequence[str],
        since: datetime,
    ) -> StoreLookup:
        """What is already known about a feed's freshly parsed entries.

        ``seen_ids``: those of ``entry_ids`` this feed recorded before.
        ``stories``: for each key already recorded, its story and the rules that
        alerted on it. A link key counts when this same feed recorded it at any
        time, or any feed recorded it at or after ``since`` (the syndication
        window); a title key counts only when recorded at or after ``since``.
        """
        ...

    def apply(self, intent: FeedUpdateIntent) -> None:
        """Apply one poll's outcome in one transaction.

        Updates the feed row; records ``seen`` entries and their story keys;
        inserts each alert unless one exists for (rule, story), with one pending
        delivery per target; adds ``sources`` to existing alerts. Idempotent:
        applying the same intent twice changes nothing more.
        """
        ...

    def pending_deliveries(self, now: datetime, limit: int) -> list[PendingDelivery]:
        """Pending deliveries whose next attempt is due at ``now``, oldest first."""
        ...

    def next_delivery_due(self) -> datetime | None:
        """When the earliest pending delivery becomes due (None when nothing is pending)."""
        ...

    def record(self, outcome: DeliveryOutcome) -> None:
        """Record what happened to one delivery attempt."""
        ...

    def status(self, recent: int = 10) -> StatusReport:
        """Per-feed state, outbox counts and the ``recent`` latest alerts, for ``status``."""
        ...

    def close(self) -> None:
        """Flush and close; safe to call twice."""
        ...


def open_store(location: str) -> Store:
    """Open (creating and migrating as needed) the store at ``location``.

    A path means SQLite; ``postgresql://`` URLs are reserved for SPEC §8.
    """
    if location.startswith(("postgresql://", "postgres://")):
        from monitor.errors import StoreError

        raise StoreError("PostgreSQL state is not available yet; use a SQLite file path")
    from monitor.store.sqlite import SQLiteStore

    return SQLiteStore(location)
