"""Procrastinate's tables beside ours: the job queue of many workers (SPEC §8, issue 7).

Procrastinate (:mod:`monitor.distributed`) keeps its jobs, workers and
periodic defers in tables, types and functions of its own, all named
``procrastinate_*``. They are created in the same schema as the store's (the
first of ``search_path``), so one ``state:`` URL holds everything, and its
functions are found through the same path. The version of Procrastinate that
last brought them up to date is the one row of :data:`VERSION_TABLE`.

- No record and no ``procrastinate_jobs``: the whole schema of the installed
  Procrastinate (``SchemaManager.get_schema``) is applied.
- No record but the tables exist (someone ran ``procrastinate schema --apply``):
  they are taken as the installed version's.
- An older record: Procrastinate's migration files between that version and the
  installed one are applied in order (:func:`pending_migrations`); upgrade every
  worker together, as their "post" migrations assume no older worker still runs.
- A newer record: refused, as a newer store schema is.

All of it runs in one transaction under the store's migration lock, so several
workers starting at once apply it once.

One index of ours is added to Procrastinate's job table (:data:`LOCK_INDEX`),
and again after any Procrastinate migration that lost it. Fetching a job
(``procrastinate_fetch_job_v2``) checks, for each candidate, that no other
job with its lock runs or waits ahead of it, and Procrastinate indexes
``lock`` only among running jobs (its ``(id, lock)`` index is walked whole):
with 2,000 polls queued, and the planner working from statistics taken while
the queue was nearly empty, one fetch cost 30 ms and up: 71 of the database's
83 CPU seconds in a cold cycle of 2,000 feeds. With the index each check is
one probe.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from packaging.version import InvalidVersion, Version
from procrastinate import __version__ as PROCRASTINATE_VERSION
from procrastinate.schema import SchemaManager

from monitor.errors import StoreError
from monitor.store.postgres_codec import Conn
from monitor.store.postgres_schema import under_migration_lock

VERSION_TABLE = "news_monitor_queue_schema"
# Every queued or running job by lock: what the fetch's "no other job with this lock" reads.
LOCK_INDEX = "news_monitor_jobs_lock"
_CREATE_LOCK_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {LOCK_INDEX} ON procrastinate_jobs (lock)"
    " WHERE status IN ('todo', 'doing')"
)

_EXISTS = (
    "SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = current_schema() AND c.relname = %s"
)


def migrate_queue(conn: Conn, name: str) -> str:
    """Bring Procrastinate's schema in database ``name`` up to the installed version; return it.

    ``conn`` must be in autocommit mode. Raises StoreError for a schema written
    by a newer Procrastinate than the one installed.
    """
    if _recorded(conn) == PROCRASTINATE_VERSION and _exists(conn, LOCK_INDEX):
        return PROCRASTINATE_VERSION  # the common case: no lock, no write
    under_migration_lock(conn, _migrate_locked, name)
    return PROCRASTINATE_VERSION


def pending_migrations(names: Iterable[str], recorded: str, installed: str) -> list[str]:
    """The migration files (by name) that take ``recorded`` to ``installed``, in order.

    A file ``03.04.00_01_pre_add_retry.sql`` brings the schema to version 3.4.0:
    it is pending when ``recorded < 3.4.0 <= installed``.
    """
    low, high = Version(recorded), Version(installed)
    pending = []
    for file in names:
        if not file.endswith(".sql"):
            continue
        try:
            version = Version(file.partition("_")[0])
        except InvalidVersion:
            continue
        if low < version <= high:
            pending.append(file)
    return sorted(pending)


def _exists(conn: Conn, relation: str) -> bool:
    return conn.execute(_EXISTS, (relation,)).fetchone() is not None


def _recorded(conn: Conn) -> str | None:
    if not _exists(conn, VERSION_TABLE):
        return None
    row = conn.execute(f"SELECT version FROM {VERSION_TABLE}").fetchone()  # noqa: S608 (constant)
    return None if row is None else str(row[0])


def _migrate_locked(conn: Conn, name: str) -> None:
    _migrate_procrastinate(conn, name)
    conn.execute(_CREATE_LOCK_INDEX)  # nothing when another process created it meanwhile


def _migrate_procrastinate(conn: Conn, name: str) -> None:
    recorded = _recorded(conn)  # again: another process may have done it meanwhile
    if recorded == PROCRASTINATE_VERSION:
        return
    if recorded is None:
        if not _exists(conn, "procrastinate_jobs"):
            conn.execute(SchemaManager.get_schema().encode())
        conn.execute(f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version text NOT NULL)")
        conn.execute(f"INSERT INTO {VERSION_TABLE} (version) VALUES (%s)", (PROCRASTINATE_VERSION,))  # noqa: S608
        return
    if Version(recorded) > Version(PROCRASTINATE_VERSION):
        raise StoreError(
            f"PostgreSQL database {name} holds the job queue of a newer Procrastinate"
            f" ({recorded}, this one is {PROCRASTINATE_VERSION}); upgrade news-monitor"
        )
    folder = Path(SchemaManager.get_migrations_path())
    for file in pending_migrations(
        (p.name for p in folder.iterdir()), recorded, PROCRASTINATE_VERSION
    ):
        conn.execute((folder / file).read_bytes())
    conn.execute(f"UPDATE {VERSION_TABLE} SET version = %s", (PROCRASTINATE_VERSION,))  # noqa: S608
