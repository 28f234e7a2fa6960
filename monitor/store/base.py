"""The interface every state store satisfies (SQLite now, PostgreSQL later, SPEC §8).

The store is the only place state lives; the scheduler and the pipeline hold
nothing it does not. Each method is one transaction. Times are aware UTC
datetimes passed in by the caller: the store never reads the clock, so tests
set time by argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from monitor.model import (
    AlertIntent,
    DeliveryOutcome,
    FeedForUpdate,
    FeedStatus,
    FeedUpdateIntent,
    PendingDelivery,
    StatusReport,
    StoreLookup,
)

# -- values of the outbox mechanics (issue 4) ---------------------------------


@dataclass(frozen=True, slots=True)
class QueuedDelivery:
    """A pending delivery as the delivery worker sees it: with its batch and due time."""

    delivery: PendingDelivery
    # None: sent on its own. "digest:RULE" or "quiet": sent with the rest of its
    # batch (same target, same batch) as one message.
    batch: str | None
    due: datetime  # its next attempt


@dataclass(frozen=True, slots=True)
class TargetState:
    """What the store knows about one target's health and pauses."""

    name: str
    paused_until: datetime | None = None  # nothing is sent to it before this
    pause_reason: str | None = None
    failing_since: datetime | None = None  # first failed attempt of the current streak
    last_error: str | None = None
    health_alert_since: datetime | None = None  # failing_since of the streak alerted about


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """A feed that is failing, or was failing when a health alert went out."""

    url: str
    title: str | None
    status: FeedStatus
    error: str | None
    error_streak: int
    failing_since: datetime | None  # first error of the current streak; None: healthy
    health_alert_since: datetime | None  # failing_since of the streak alerted about


@dataclass(frozen=True, slots=True)
class MessageOutcome:
    """One message sent (or not) to one target, carrying one or more deliveries."""

    target: str
    now: datetime
    deliveries: tuple[DeliveryOutcome, ...]
    # A message went out (accepted or not): it counts in the target's rate window.
    requested: bool = True
    sent: bool = False  # the target accepted it: ends a failing streak
    error: str | None = None  # a failed attempt: starts or continues the failing streak
    paused_until: datetime | None = None  # the target asked for a pause (HTTP 429)


class HealthSubject(StrEnum):
    """What a health alert is about (SPEC §5)."""

    FEED = "feed"
    TARGET = "target"


@dataclass(frozen=True, slots=True)
class HealthNotice:
    """Queue a health alert and remember which failing streak it was about."""

    subject: HealthSubject
    name: str  # the feed's URL or the target's name
    alert: AlertIntent
    # The streak now alerted about (a "failing" alert), or None (a "recovered" one).
    alerted_since: datetime | None


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

    def due_deliveries(self, now: datetime, limit: int) -> list[QueuedDelivery]:
        """Up to ``limit`` pending deliveries due at ``now``, oldest first.

        Deliveries to a target paused beyond ``now`` are left out, so a paused
        target's backlog never crowds out the others.
        """
        ...

    def batch_members(self, target: str, batch: str) -> list[QueuedDelivery]:
        """Every pending delivery of ``batch`` for ``target``, due or not, oldest first."""
        ...

    def hold(self, ids: Sequence[int], batch: str, until: datetime) -> datetime:
        """Put these pending deliveries (all to one target) in ``batch``; return its due time.

        They join the batch's pending members and become due with them; when the
        batch has no other pending member they start it, due at ``until``. No
        attempt is counted.
        """
        ...

    def record_message(self, outcome: MessageOutcome) -> None:
        """Record one message's outcome in one transaction.

        Each delivery outcome as :meth:`record`; when ``requested``, one entry in
        the target's send log at ``now``; when ``sent``, the end of its failing streak; when
        ``paused_until``, the target's pause; otherwise, with ``error``, the start
        (or continuation) of its failing streak.
        """
        ...

    def pause_target(self, name: str, until: datetime, reason: str) -> None:
        """Send nothing to target ``name`` before ``until``."""
        ...

    def target_states(self) -> dict[str, TargetState]:
        """Every target the store has state for, by name."""
        ...

    def sends_since(self, target: str, since: datetime) -> list[datetime]:
        """When messages went to ``target`` at or after ``since``, oldest first."""
        ...

    def feed_health(self, urls: Sequence[str]) -> list[FeedHealth]:
        """Those of these feeds that are failing or were alerted about, in URL order."""
        ...

    def queue_health(self, notice: HealthNotice, now: datetime) -> bool:
        """Queue a health alert (one delivery per target) and remember its streak, atomically.

        Returns False when the same alert (rule, story) was queued before; the
        streak is remembered either way.
        """
        ...

    def status(self, recent: int = 10) -> StatusReport:
        """Per-feed state, outbox counts and the ``recent`` latest alerts, for ``status``."""
        ...

    def describe(self) -> str:
        """Where the state is, fit to print: a file path, or a database URL without password."""
        ...

    def schema_version(self) -> int:
        """The version of the state's schema (opening the store migrated it to the newest)."""
        ...

    def close(self) -> None:
        """Flush and close; safe to call twice."""
        ...


def is_postgres(location: str) -> bool:
    """Whether ``state: location`` means PostgreSQL (a ``postgresql://`` or ``postgres://`` URL)."""
    return location.startswith(("postgresql://", "postgres://"))


def open_store(location: str) -> Store:
    """Open (creating and migrating as needed) the store at ``location``.

    A ``postgresql://`` (or ``postgres://``) URL means PostgreSQL (SPEC §8),
    anything else a SQLite file path.
    """
    if is_postgres(location):
        # Imported here so that SQLite users never import psycopg.
        from monitor.store.postgres import PostgresStore

        return PostgresStore(location)
    from monitor.store.sqlite import SQLiteStore

    return SQLiteStore(location)
