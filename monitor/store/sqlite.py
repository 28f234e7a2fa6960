"""The SQLite state store: the embedded default (SPEC §8), one writer, any number of readers.

Durability (SPEC §5, "a crash or kill -9 at any moment loses nothing"):

- Every :class:`~monitor.store.base.Store` method is one transaction; writes
  take the write lock up front (``BEGIN IMMEDIATE``) so they never fail half
  way on a lock upgrade. Marking entries seen, queuing their alerts and
  updating the feed row commit together or not at all.
- WAL journal with ``synchronous=NORMAL``. A commit has been written to the
  WAL file (the OS page cache) before ``commit`` returns, so a process crash
  or ``kill -9`` loses nothing. A power failure or kernel crash may roll back
  the last few commits, but the file stays consistent, and because each poll
  is atomic, rolling one back only means the poll is redone: its entries look
  new again and alert then (a recorded "sent" may be undone, giving a repeat,
  never a loss). ``FULL`` would fsync on every commit for that last margin.
- Readers never block the writer nor wait for it (WAL), so ``news-monitor
  status`` works beside a running daemon; ``busy_timeout`` covers the short
  moments two writers (or a migration) meet.

One connection per store, shared between threads under a lock, so the
daemon may call it from a worker thread. Times are stored as fixed-width
ISO-8601 UTC text (see :mod:`monitor.store.sqlite_codec`).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from monitor.errors import StoreError
from monitor.model import (
    DeliveryOutcome,
    FeedForUpdate,
    FeedUpdateIntent,
    PendingDelivery,
    StatusReport,
    StoreLookup,
)
from monitor.store import sqlite_feeds, sqlite_outbox, sqlite_targets
from monitor.store.base import (
    FeedHealth,
    HealthNotice,
    MessageOutcome,
    QueuedDelivery,
    Store,
    TargetState,
)
from monitor.store.migrations import migrate, schema_version
from monitor.store.rows import Pruned
from monitor.store.sqlite_codec import ts

# Long enough for any one transaction of another process to finish.
BUSY_TIMEOUT = 10.0  # seconds


class SQLiteStore:
    """State in one SQLite file; implements :class:`monitor.store.base.Store`."""

    def __init__(self, path: str, *, busy_timeout: float = BUSY_TIMEOUT) -> None:
        """Open the file at ``path``, creating it and its directories and migrating as needed.

        Raises :class:`~monitor.errors.StoreError` naming the path when it cannot be
        opened, is not a news-monitor state file, or was written by a newer version.
        """
        self.path = path
        self._lock = threading.Lock()
        self._conn = _connect(path, busy_timeout)
        self._closed = False

    def sync_feeds(self, urls: Sequence[str], now: datetime) -> None:
        """Make sure every configured feed has a row; new ones are due at ``now``."""
        with self._transaction(write=True) as conn:
            sqlite_feeds.sync_feeds(conn, urls, now)

    def feeds(self, urls: Sequence[str]) -> list[FeedForUpdate]:
        """The stored state of these feeds, in the order given (unknown URLs skipped)."""
        with self._transaction() as conn:
            return sqlite_feeds.feeds(conn, urls)

    def due_feeds(self, urls: Sequence[str], now: datetime, limit: int) -> list[FeedForUpdate]:
        """Up to ``limit`` of these feeds due at ``now``, most overdue first (then by URL).

        Feeds disabled by 410 Gone are never due.
        """
        with self._transaction() as conn:
            return sqlite_feeds.due_feeds(conn, urls, now, limit)

    def next_due(self, urls: Sequence[str]) -> datetime | None:
        """The earliest next due time among these feeds, Gone ones excepted."""
        with self._transaction() as conn:
            return sqlite_feeds.next_due(conn, urls)

    def lookup(
        self,
        feed_url: str,
        entry_ids: Sequence[str],
        link_keys: Sequence[str],
        title_keys: Sequence[str],
        since: datetime,
    ) -> StoreLookup:
        """What is already known about a feed's freshly parsed entries.

        A link key counts when this feed recorded it at any time, or any feed at
        or after ``since``; a title key counts when recorded at or after
        ``since``. When several stories qualify for one key, the one this feed
        recorded wins, then the most recently recorded (a story continues).
        """
        with self._transaction() as conn:
            return sqlite_feeds.lookup(conn, feed_url, entry_ids, link_keys, title_keys, since)

    def apply(self, intent: FeedUpdateIntent) -> None:
        """Apply one poll's outcome in one transaction; applying it twice changes nothing more.

        The feed row (created if missing) takes ``status``, ``http_status``,
        ``error``, ``error_streak`` and ``next_due`` from the intent as they are;
        ``last_fetch`` becomes ``now``, and ``last_success`` too when ``success``.
        ``fetch_url`` changes only when the intent sets it. ``title``, ``etag``,
        ``last_modified`` and ``body_hash`` are taken as they are when the status
        is OK (a fresh 200 response: None means it had none); for any other
        status they keep their stored values unless the intent gives new ones.

        ``seen`` entries are recorded once per (feed, entry id); their story keys
        per (key, feed), a later recording moving the key to its newer story and
        time. Each alert is inserted unless one exists for (rule, story); a new
        alert gets its feed as first source and one pending delivery per target,
        due at ``now``. An alert that already exists only gains the feed as a
        source, and so does each of ``sources`` (one source per alert and feed
        URL; sources for alerts that do not exist are dropped).
        """
        with self._transaction(write=True) as conn:
            sqlite_feeds.apply(conn, intent)

    def pending_deliveries(self, now: datetime, limit: int) -> list[PendingDelivery]:
        """Up to ``limit`` pending deliveries due at ``now``, oldest first.

        Each carries its alert with every source, first recorded first.
        """
        with self._transaction() as conn:
            return sqlite_outbox.pending_deliveries(conn, now, limit)

    def next_delivery_due(self) -> datetime | None:
        """When the earliest pending delivery becomes due (None when nothing is pending)."""
        with self._transaction() as conn:
            return sqlite_outbox.next_delivery_due(conn)

    def record(self, outcome: DeliveryOutcome) -> None:
        """Record what happened to one delivery attempt.

        SENT: the delivery is sent at ``now``. PENDING: it is retried at
        ``next_attempt`` (required) and keeps ``error``. FAILED: it is given up,
        keeping ``error``. Each counts one attempt unless ``count_attempt`` is
        false (a pause the target asked for). Only a pending delivery changes: an
        outcome for one already sent or failed, or for an unknown id, is ignored.
        """
        with self._transaction(write=True) as conn:
            sqlite_outbox.record(conn, outcome)

    def due_deliveries(self, now: datetime, limit: int) -> list[QueuedDelivery]:
        """Up to ``limit`` pending deliveries due at ``now``, oldest first; paused targets' not."""
        with self._transaction() as conn:
            return sqlite_outbox.due_deliveries(conn, now, limit)

    def batch_members(self, target: str, batch: str) -> list[QueuedDelivery]:
        """Every pending delivery of ``batch`` for ``target``, due or not, oldest first."""
        with self._transaction() as conn:
            return sqlite_outbox.batch_members(conn, target, batch)

    def hold(self, ids: Sequence[int], batch: str, until: datetime) -> datetime:
        """Put these pending deliveries of one target in ``batch``; return its due time.

        They take the due time of the batch's other pending members, or ``until``
        when there are none. Raises ValueError for deliveries of several targets.
        """
        with self._transaction(write=True) as conn:
            return sqlite_outbox.hold(conn, ids, batch, until)

    def record_message(self, outcome: MessageOutcome) -> None:
        """Record one message's outcome, its deliveries and its target's state, atomically.

        Send-log entries older than 31 days are forgotten as new ones are written.
        """
        with self._transaction(write=True) as conn:
            sqlite_targets.record_message(conn, outcome)

    def pause_target(self, name: str, until: datetime, reason: str) -> None:
        """Send nothing to target ``name`` before ``until``."""
        with self._transaction(write=True) as conn:
            sqlite_targets.pause_target(conn, name, until, reason)

    def target_states(self) -> dict[str, TargetState]:
        """Every target the store has state for, by name."""
        with self._transaction() as conn:
            return sqlite_targets.target_states(conn)

    def sends_since(self, target: str, since: datetime) -> list[datetime]:
        """When messages went to ``target`` at or after ``since``, oldest first."""
        with self._transaction() as conn:
            return sqlite_targets.sends_since(conn, target, since)

    def feed_health(self, urls: Sequence[str]) -> list[FeedHealth]:
        """Those of these feeds failing now, or alerted about, in URL order."""
        with self._transaction() as conn:
            return sqlite_targets.feed_health(conn, urls)

    def queue_health(self, notice: HealthNotice, now: datetime) -> bool:
        """Queue a health alert and remember its streak, atomically; False if queued before."""
        with self._transaction(write=True) as conn:
            return sqlite_targets.queue_health(conn, notice, now)

    def status(self, recent: int = 10) -> StatusReport:
        """Every feed (by URL), outbox counts, and the ``recent`` latest alerts and failures.

        ``failed_deliveries`` holds the ``recent`` latest failed deliveries, newest
        first; ``failed`` counts them all.
        """
        with self._transaction() as conn:
            return sqlite_outbox.status(conn, recent)

    def prune(self, before: datetime) -> Pruned:
        """Forget seen entries and story keys recorded before ``before`` (housekeeping).

        Alerts and deliveries are never touched. Choose ``before`` well beyond
        the story window and ``max_age``: an entry forgotten while its feed still
        lists it is new again, and alerts if it is undated or still recent.
        """
        cutoff = ts(before)
        with self._transaction(write=True) as conn:
            seen = conn.execute("DELETE FROM seen WHERE seen_at < ?", (cutoff,)).rowcount
            keys = conn.execute("DELETE FROM story_keys WHERE seen_at < ?", (cutoff,)).rowcount
        return Pruned(seen=seen, story_keys=keys)

    def describe(self) -> str:
        """The state file's path."""
        return self.path

    def schema_version(self) -> int:
        """The file's schema version (``PRAGMA user_version``)."""
        with self._transaction() as conn:
            return schema_version(conn)

    def close(self) -> None:
        """Close the file; safe to call twice. Committed work is already durable."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            # No "PRAGMA optimize" here: it may write, and a `status` reader must
            # not wait on a busy daemon just to close.
            try:
                self._conn.close()
            except sqlite3.Error as exc:
                raise StoreError(f"state file {self.path}: {exc}") from exc

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """One transaction under the lock; SQLite errors become StoreError naming the file.

        Reads take a snapshot (``BEGIN``) so an answer built from several queries
        is consistent; writes take the write lock up front (``BEGIN IMMEDIATE``).
        """
        with self._lock:
            if self._closed:
                raise StoreError(f"state file {self.path} is closed")
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"state file {self.path}: {exc}") from exc


def _connect(path: str, busy_timeout: float) -> sqlite3.Connection:
    """Open, configure and migrate the database at ``path``."""
    if path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot create the directory of state file {path}: {exc.strerror or exc}"
            ) from exc
    try:
        conn = sqlite3.connect(
            path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open state file {path}: {exc}") from exc
    try:
        _enter_wal(conn, busy_timeout)
        conn.execute("PRAGMA synchronous = NORMAL")  # why that is enough: module docstring
        conn.execute("PRAGMA foreign_keys = ON")
        try:
            conn.execute("SELECT json_array()")
        except sqlite3.OperationalError as exc:
            raise StoreError(
                f"cannot use state file {path}: SQLite {sqlite3.sqlite_version} "
                "lacks the JSON functions news-monitor needs"
            ) from exc
        migrate(conn, path)
    except StoreError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot open state file {path}: {exc}") from exc
    return conn


def _enter_wal(conn: sqlite3.Connection, busy_timeout: float) -> None:
    """Switch the file to WAL, waiting up to ``busy_timeout`` for others doing the same.

    Turning a new file to WAL needs an exclusive lock. Connections that all hold
    a shared lock and want it would deadlock, so SQLite answers some of them
    "database is locked" at once, without waiting in the busy handler: several
    processes opening a new state together (``run`` and ``status`` at first
    start) would fail. Retried here until the first has switched the file.
    """
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


if TYPE_CHECKING:
    # mypy proves here that SQLiteStore satisfies the Store protocol.
    _conforms: type[Store] = SQLiteStore
