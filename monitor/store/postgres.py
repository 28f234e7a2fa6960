"""The PostgreSQL state store: one database shared by many processes and machines (SPEC §8).

Chosen by ``state: postgresql://...``. It keeps the SQLite store's contract
(:class:`monitor.store.base.Store`) to the letter, so the pipeline cannot tell
them apart; the contract suite in ``tests/test_store.py`` runs against both.

Durability and concurrency (SPEC §5):

- Every method is one transaction. Writes run at ``SERIALIZABLE``: however
  many processes write at once, the outcome is that of some one-at-a-time
  order, which is what SQLite's single writer gives. A transaction that loses
  a conflict (a serialization failure or deadlock) is rolled back and run
  again from the start, up to :data:`RETRIES` times; the methods are written so
  that running one again is harmless.
- Reads run at ``REPEATABLE READ READ ONLY``: one snapshot for all the queries
  of an answer, never blocking writers nor waiting for them.
- ``COMMIT`` returns once the server has made the transaction durable under its
  own ``synchronous_commit`` setting; that setting is the operator's.
- A poll's ``lookup`` and ``apply`` are two transactions; between them the
  story keys looked up stay claimed (:mod:`monitor.store.postgres_stories`),
  so polls of two feeds carrying one story, in two processes, take turns
  and alert it once.

One connection per store, shared between threads under a lock, so the daemon
may call it from a worker thread. A connection the server dropped is opened
again on the next call; the call that saw it drop fails with
:class:`~monitor.errors.StoreError` (its transaction may or may not have
committed, and only the caller knows whether running it again is right).

Errors name the database as ``postgresql://user@host:port/dbname``: never the
password, which is also scrubbed from any message the driver writes.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Concatenate, NoReturn, ParamSpec, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg
from psycopg import errors as pg_errors

from monitor.errors import StoreError
from monitor.model import (
    DeliveryOutcome,
    FeedForUpdate,
    FeedUpdateIntent,
    PendingDelivery,
    StatusReport,
    StoreLookup,
)
from monitor.store import (
    postgres_feeds,
    postgres_outbox,
    postgres_schema,
    postgres_stories,
    postgres_targets,
)
from monitor.store.base import (
    FeedHealth,
    HealthNotice,
    MessageOutcome,
    QueuedDelivery,
    Store,
    TargetState,
)
from monitor.store.postgres_codec import Conn, ts
from monitor.store.postgres_schema import migrate
from monitor.store.rows import Pruned

# How often a write transaction that lost a serialization conflict is run again.
RETRIES = 20
CONNECT_TIMEOUT = 10  # seconds, unless the URL sets connect_timeout

_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
_WRITE = "BEGIN ISOLATION LEVEL SERIALIZABLE"
_CONFLICTS = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)

P = ParamSpec("P")
T = TypeVar("T")


class PostgresStore:
    """State in one PostgreSQL database; implements :class:`monitor.store.base.Store`."""

    def __init__(self, url: str, *, connect_timeout: int = CONNECT_TIMEOUT) -> None:
        """Connect to the database at ``url`` and create or migrate its tables as needed.

        Raises :class:`~monitor.errors.StoreError` naming the database (without
        its password) when it cannot be reached, holds tables of ours that
        news-monitor did not create, or was migrated by a newer version.
        """
        self.name, self._secrets = describe(url)
        self._url = url
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._closed = False
        self._claimed = False  # story keys claimed by a lookup and not yet released
        self._conn = self._connect()

    def sync_feeds(self, urls: Sequence[str], now: datetime) -> None:
        """Make sure every configured feed has a row; new ones are due at ``now``."""
        self._run(True, postgres_feeds.sync_feeds, urls, now)

    def feeds(self, urls: Sequence[str]) -> list[FeedForUpdate]:
        """The stored state of these feeds, in the order given (unknown URLs skipped)."""
        return self._run(False, postgres_feeds.feeds, urls)

    def due_feeds(self, urls: Sequence[str], now: datetime, limit: int) -> list[FeedForUpdate]:
        """Up to ``limit`` of these feeds due at ``now``, most overdue first (then by URL)."""
        return self._run(False, postgres_feeds.due_feeds, urls, now, limit)

    def next_due(self, urls: Sequence[str]) -> datetime | None:
        """The earliest next due time among these feeds, Gone ones excepted."""
        return self._run(False, postgres_feeds.next_due, urls)

    def lookup(
        self,
        feed_url: str,
        entry_ids: Sequence[str],
        link_keys: Sequence[str],
        title_keys: Sequence[str],
        since: datetime,
    ) -> StoreLookup:
        """What is already known about a feed's entries; as :meth:`SQLiteStore.lookup`.

        First claims the keys, waiting while another poll holds any of them, and
        keeps them until :meth:`apply` (or :meth:`release_story_keys`).
        """
        self.release_story_keys()  # a poll that failed between lookup and apply
        keys = [*link_keys, *title_keys]
        # Before the claim: a claim that fails part way still holds what it took.
        self._claimed = bool(keys)
        self._run(None, postgres_stories.claim, keys)
        return self._run(
            False, postgres_feeds.lookup, feed_url, entry_ids, link_keys, title_keys, since
        )

    def apply(self, intent: FeedUpdateIntent) -> None:
        """Apply one poll's outcome in one transaction; as :meth:`SQLiteStore.apply`.

        Then releases the story keys the lookup before it claimed.
        """
        try:
            self._run(True, postgres_feeds.apply, intent)
        finally:
            self.release_story_keys()

    def release_story_keys(self) -> None:
        """Release the story keys the last :meth:`lookup` claimed, if it still holds them."""
        if self._claimed:
            self._claimed = False
            self._run(None, postgres_stories.release)

    def pending_deliveries(self, now: datetime, limit: int) -> list[PendingDelivery]:
        """Up to ``limit`` pending deliveries due at ``now``, oldest first."""
        return self._run(False, postgres_outbox.pending_deliveries, now, limit)

    def next_delivery_due(self) -> datetime | None:
        """When the earliest pending delivery becomes due (None when nothing is pending)."""
        return self._run(False, postgres_outbox.next_delivery_due)

    def record(self, outcome: DeliveryOutcome) -> None:
        """Record what happened to one delivery attempt; as :meth:`SQLiteStore.record`."""
        self._run(True, postgres_outbox.record, outcome)

    def due_deliveries(self, now: datetime, limit: int) -> list[QueuedDelivery]:
        """Up to ``limit`` pending deliveries due at ``now``, oldest first; paused targets' not."""
        return self._run(False, postgres_outbox.due_deliveries, now, limit)

    def due_targets(self, now: datetime) -> list[str]:
        """The targets, not paused at ``now``, with a pending delivery due then, by name."""
        return self._run(False, postgres_outbox.due_targets, now)

    def due_deliveries_to(self, target: str, now: datetime, limit: int) -> list[QueuedDelivery]:
        """As :meth:`due_deliveries`, for one target (empty while it is paused)."""
        return self._run(False, postgres_outbox.due_deliveries_to, target, now, limit)

    def batch_members(self, target: str, batch: str) -> list[QueuedDelivery]:
        """Every pending delivery of ``batch`` for ``target``, due or not, oldest first."""
        return self._run(False, postgres_outbox.batch_members, target, batch)

    def hold(self, ids: Sequence[int], batch: str, until: datetime) -> datetime:
        """Put these pending deliveries of one target in ``batch``; return its due time."""
        return self._run(True, postgres_outbox.hold, ids, batch, until)

    def record_message(self, outcome: MessageOutcome) -> None:
        """Record one message's outcome, its deliveries and its target's state, atomically."""
        self._run(True, postgres_targets.record_message, outcome)

    def pause_target(self, name: str, until: datetime, reason: str) -> None:
        """Send nothing to target ``name`` before ``until``."""
        self._run(True, postgres_targets.pause_target, name, until, reason)

    def target_states(self) -> dict[str, TargetState]:
        """Every target the store has state for, by name."""
        return self._run(False, postgres_targets.target_states)

    def sends_since(self, target: str, since: datetime) -> list[datetime]:
        """When messages went to ``target`` at or after ``since``, oldest first."""
        return self._run(False, postgres_targets.sends_since, target, since)

    def feed_health(self, urls: Sequence[str]) -> list[FeedHealth]:
        """Those of these feeds failing now, or alerted about, in URL order."""
        return self._run(False, postgres_targets.feed_health, urls)

    def queue_health(self, notice: HealthNotice, now: datetime) -> bool:
        """Queue a health alert and remember its streak, atomically; False if queued before."""
        return self._run(True, postgres_targets.queue_health, notice, now)

    def status(self, recent: int = 10) -> StatusReport:
        """Every feed (by URL), outbox counts, and the ``recent`` latest alerts and failures."""
        return self._run(False, postgres_outbox.status, recent)

    def prune(self, before: datetime) -> Pruned:
        """Forget seen entries and story keys recorded before ``before``; as in SQLite."""
        return self._run(True, _prune, before)

    def describe(self) -> str:
        """``postgresql://user@host:port/db``: the database, never its password."""
        return self.name

    def schema_version(self) -> int:
        """The database's schema version (its ``schema_version`` table)."""
        return self._run(False, postgres_schema.schema_version)

    def migrate_queue(self) -> str:
        """Create or upgrade Procrastinate's job queue beside the store's tables; its version.

        For many workers (:mod:`monitor.distributed`); see :mod:`monitor.store.postgres_queue`.
        """
        # Imported here: a store that runs no workers never imports Procrastinate.
        from monitor.store.postgres_queue import migrate_queue

        return self._run(None, migrate_queue, self.name)

    def close(self) -> None:
        """Close the connection; safe to call twice. Committed work is already durable."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(
        self,
        write: bool | None,
        work: Callable[Concatenate[Conn, P], T],
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``work(conn, ...)`` in one transaction under the lock; see the module docstring.

        ``write`` None: outside any transaction (session-level statements).

        Driver errors become StoreError naming the database; anything else
        ``work`` raises (a ValueError for a bug in its arguments) passes through
        after the rollback.
        """
        with self._lock:
            if self._closed:
                raise StoreError(f"PostgreSQL database {self.name} is closed")
            for attempt in range(1, RETRIES + 1):
                try:
                    if self._conn.closed or self._conn.broken:
                        self._conn = self._connect()
                    if write is None:
                        return work(self._conn, *args, **kwargs)
                    return _transaction(self._conn, write, work, *args, **kwargs)
                except _CONFLICTS as exc:
                    if attempt == RETRIES:
                        self._fail(f"gave up after {RETRIES} conflicting attempts", exc)
                except psycopg.Error as exc:
                    self._fail("read failed" if write is False else "write failed", exc)
            raise AssertionError("unreachable")  # the loop returns or raises

    def _connect(self) -> Conn:
        """A new autocommit connection in UTC, with the schema migrated."""
        # A connect_timeout in the URL wins; without one, libpq would wait forever.
        given = "connect_timeout" in parse_qs(urlsplit(self._url).query)
        refused: psycopg.Error | None = None
        try:
            if given:
                conn = psycopg.connect(self._url, autocommit=True)
            else:
                conn = psycopg.connect(
                    self._url, autocommit=True, connect_timeout=self._connect_timeout
                )
        except psycopg.Error as exc:
            refused = exc
        if refused is not None:
            # Raised outside the handler, so the driver's error is not even the
            # implicit context when its message quotes the password.
            self._fail("cannot connect", refused)
        try:
            # Times come back as aware datetimes in datetime.UTC (postgres_codec).
            conn.execute("SET TIME ZONE 'UTC'")
            migrate(conn, self.name)
        except psycopg.Error as exc:
            conn.close()
            self._fail("cannot open", exc)
        except BaseException:
            conn.close()
            raise
        return conn

    def _fail(self, doing: str, exc: BaseException) -> NoReturn:
        """Raise a StoreError naming the database, with any password scrubbed from the message.

        When the driver's message held the password (a malformed URL is quoted
        whole), the driver's exception is not chained either, so no traceback shows it.
        """
        message = str(exc).strip()
        for secret in self._secrets:
            message = message.replace(secret, "***")
        error = StoreError(f"PostgreSQL database {self.name}: {doing}: {message}")
        raise error from (exc if message == str(exc).strip() else None)


def _transaction(
    conn: Conn,
    write: bool,
    work: Callable[Concatenate[Conn, P], T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> T:
    conn.execute(_WRITE if write else _READ)
    try:
        result = work(conn, *args, **kwargs)
        conn.execute("COMMIT")
    except BaseException:
        if not conn.closed and not conn.broken:
            # The original error says more; a broken connection is reopened on the next call.
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
        raise
    return result


def _prune(conn: Conn, before: datetime) -> Pruned:
    cutoff = ts(before)
    seen = conn.execute("DELETE FROM seen WHERE seen_at < %s", (cutoff,)).rowcount
    keys = conn.execute("DELETE FROM story_keys WHERE seen_at < %s", (cutoff,)).rowcount
    return Pruned(seen=seen, story_keys=keys)


def describe(url: str) -> tuple[str, tuple[str, ...]]:
    """The database's name for messages (``postgresql://user@host:port/db``) and its secrets.

    The secrets are the password as written in the URL and decoded, wherever
    it appears (in the authority or as ``?password=``), for scrubbing messages.
    Raises StoreError, quoting nothing of it, for a URL that cannot be parsed.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed "[" of an IPv6 address; the URL may hold a password
        raise StoreError("the PostgreSQL URL of `state:` cannot be parsed") from None
    host = parts.netloc.rpartition("@")[2]
    user = unquote(parts.username) if parts.username else None
    name = f"{parts.scheme}://{user + '@' if user else ''}{host}{parts.path}"
    secrets: set[str] = set()
    raw = parts.netloc.rpartition("@")[0].partition(":")[2] if "@" in parts.netloc else ""
    for value in (raw, parts.password or "", *parse_qs(parts.query).get("password", ())):
        if value:
            secrets.update({value, unquote(value)})
    # Longest first, so a secret that contains another is scrubbed whole.
    return name, tuple(sorted(secrets, key=len, reverse=True))


if TYPE_CHECKING:
    # mypy proves here that PostgresStore satisfies the Store protocol.
    _conforms: type[Store] = PostgresStore
