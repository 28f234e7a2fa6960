"""SQLite's own promises beyond the store contract: the file, its schema, concurrency, crashes.

The contract every backend passes is in ``test_store.py``; its builders are reused here.
"""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from test_store import T0, A, B, alert, poll, seen

from monitor.errors import StoreError
from monitor.store import Store
from monitor.store.migrations import MIGRATIONS, SCHEMA_VERSION
from monitor.store.sqlite import SQLiteStore

REPO = Path(__file__).resolve().parents[1]


# -- SQLite: files, schema, concurrency ---------------------------------------------


def test_a_new_file_is_created_with_its_directories_and_the_current_schema(tmp_path: Path) -> None:
    """Opening a path in missing directories creates a WAL database at the latest schema."""
    path = tmp_path / "deep" / "er" / "monitor.db"
    with SQLiteStore(str(path)) as created:
        created.sync_feeds([A], T0)
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tables = {
            row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        assert tables >= {"feeds", "seen", "story_keys", "alerts", "alert_sources", "deliveries"}
    finally:
        raw.close()
    with SQLiteStore(str(path)) as reopened:
        assert [f.url for f in reopened.feeds([A])] == [A]


def test_a_file_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    """A schema version beyond this code's is a StoreError asking for an upgrade, file untouched."""
    path = tmp_path / "monitor.db"
    SQLiteStore(str(path)).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(
        StoreError,
        match=rf"{re.escape(str(path))}.*newer news-monitor \(schema {SCHEMA_VERSION + 1}",
    ):
        SQLiteStore(str(path))
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION + 1,)
    raw.close()


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    """An SQLite file with tables but no news-monitor schema is not taken over."""
    path = tmp_path / "other.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE notes (body TEXT)")
    raw.close()
    with pytest.raises(
        StoreError, match=re.escape(f"{path} is an SQLite database that news-monitor did not")
    ):
        SQLiteStore(str(path))


def test_a_version_1_file_is_upgraded_in_place(tmp_path: Path) -> None:
    """A state file from before issue 4 gains the new tables; a failing feed's streak is kept."""
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0]:
        raw.execute(statement)
    raw.execute("PRAGMA user_version = 1")
    raw.execute(
        "INSERT INTO feeds (url, fetch_url, status, error_streak, last_fetch, next_due)"
        " VALUES (?, ?, 'error', 4, '2024-10-18T06:00:00.000000Z', '2024-10-18T07:00:00.000000Z')",
        (A, A),
    )
    raw.close()
    with SQLiteStore(str(path)) as upgraded:
        (health,) = upgraded.feed_health([A])
        assert health.failing_since == T0
        assert upgraded.target_states() == {}
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    finally:
        raw.close()


@pytest.mark.parametrize("kind", ["directory", "not a database", "parent is a file"])
def test_an_unusable_path_is_a_store_error_naming_it(tmp_path: Path, kind: str) -> None:
    """A path that cannot hold the state gives a StoreError that names the path."""
    if kind == "directory":
        path = tmp_path / "state"
        path.mkdir()
    elif kind == "not a database":
        path = tmp_path / "state.db"
        path.write_bytes(b"feeds:\n  - url: https://a.example/rss\n" * 100)
    else:
        (tmp_path / "file").write_text("x")
        path = tmp_path / "file" / "state.db"
    with pytest.raises(StoreError, match=re.escape(str(path))):
        SQLiteStore(str(path))


def test_status_reads_while_another_process_is_writing(tmp_path: Path) -> None:
    """A second store reads a committed snapshot during an open write, and waits to write."""
    path = tmp_path / "monitor.db"
    with SQLiteStore(str(path)) as daemon:
        daemon.apply(poll(A, T0, seen=(seen("a1", "s1"),), alerts=(alert("dead", "s1", A),)))
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO feeds (url, fetch_url) VALUES ('https://z.example/', 'z')")
    try:
        started = time.monotonic()
        with SQLiteStore(str(path), busy_timeout=0.2) as status:
            report = status.status()
            assert [f.url for f in report.feeds] == [A]
            assert (report.pending, report.feeds[0].entries_seen) == (2, 1)
            assert len(status.pending_deliveries(T0, 10)) == 2
            assert time.monotonic() - started < 1.0
            with pytest.raises(StoreError, match="database is locked"):
                status.sync_feeds([B], T0)
            writer.execute("COMMIT")
            assert len(status.status().feeds) == 2
            status.sync_feeds([B], T0)
    finally:
        writer.close()


def test_one_store_is_safe_to_share_between_threads(tmp_path: Path) -> None:
    """Threads applying and reading through one store all succeed and all land."""
    store: Store = SQLiteStore(str(tmp_path / "monitor.db"))
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(20):
                url = f"https://t{n}.example/rss"
                store.apply(poll(url, T0, seen=(seen(f"{n}-{i}", f"s{n}-{i}"),)))
                store.status(recent=1)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [f.entries_seen for f in store.status().feeds] == [20] * 4
    store.close()


def test_prune_forgets_old_entries_and_keys_but_no_alert(tmp_path: Path) -> None:
    """Pruning deletes seen entries and story keys older than the cutoff, never the outbox."""
    with SQLiteStore(str(tmp_path / "monitor.db")) as pruned:
        pruned.apply(
            poll(
                A,
                T0,
                seen=(seen("old", "s1", "link:1", "title:one"),),
                alerts=(alert("dead", "s1", A),),
            )
        )
        later = T0 + timedelta(days=30)
        pruned.apply(poll(A, later, seen=(seen("new", "s2", "link:2"),)))
        result = pruned.prune(later)
        assert (result.seen, result.story_keys) == (1, 2)
        found = pruned.lookup(A, ["old", "new"], ["link:1", "link:2"], ["title:one"], T0)
        assert found.seen_ids == {"new"}
        assert set(found.stories) == {"link:2"}
        assert len(pruned.pending_deliveries(later, 10)) == 2


def test_a_closed_store_refuses_work_and_closes_twice(tmp_path: Path) -> None:
    """Closing twice is fine; using a closed store is a StoreError."""
    closed = SQLiteStore(str(tmp_path / "monitor.db"))
    closed.close()
    closed.close()
    with pytest.raises(StoreError, match="is closed"):
        closed.status()


# -- SQLite: crash safety -----------------------------------------------------------

# Applies polls as fast as it can, printing each number once apply has returned,
# and sends some deliveries on the way; the test kills it with SIGKILL.
_CRASHER = """
import sys
from datetime import UTC, datetime, timedelta
from monitor.model import (AlertIntent, DeliveryOutcome, DeliveryState, FeedStatus,
                           FeedUpdateIntent, SeenIntent, SourceIntent)
from monitor.store.sqlite import SQLiteStore

store = SQLiteStore(sys.argv[1])
n = int(sys.argv[2]) * 1_000_000
print("ready", flush=True)
while True:
    now = datetime(2024, 10, 18, tzinfo=UTC) + timedelta(seconds=n)
    feed, story = f"https://feed{n % 3}.example/rss", f"story-{n}"
    store.apply(FeedUpdateIntent(
        url=feed, now=now, status=FeedStatus.OK, next_due=now, error_streak=0, success=True,
        seen=tuple(SeenIntent(f"{story}/{i}", story, (f"link:{story}", f"title:{story} {i}"),
                              "t", None, None) for i in range(3)),
        alerts=tuple(AlertIntent(rule, story, "F", feed, "t", None, None, "s", ("x",), (),
                                 ("a", "b", "c")) for rule in ("r1", "r2")),
        sources=(SourceIntent("r1", f"story-{n - 1}", "F", f"https://other{n}.example/", None),),
    ))
    print(n, flush=True)
    for d in store.pending_deliveries(now, 4):
        state = DeliveryState.SENT if d.id % 3 else DeliveryState.PENDING
        store.record(DeliveryOutcome(d.id, now, state, "x", now + timedelta(seconds=1)))
    n += 1
"""


def _check_consistent(path: Path, committed: list[int]) -> None:
    """Every poll is all there or not at all, and every acknowledged poll is there."""
    raw = sqlite3.connect(path)
    try:

        def rows(sql: str) -> list[tuple[object, ...]]:
            return raw.execute(sql).fetchall()

        assert rows("PRAGMA integrity_check") == [("ok",)]
        assert rows("PRAGMA foreign_key_check") == []
        # An alert never exists without its deliveries and its first source.
        assert (
            rows(
                "SELECT a.id FROM alerts a LEFT JOIN deliveries d ON d.alert_id = a.id"
                " GROUP BY a.id HAVING count(d.id) != 3"
            )
            == []
        )
        assert (
            rows("SELECT id FROM alerts WHERE id NOT IN (SELECT alert_id FROM alert_sources)") == []
        )
        # Seen entries, their keys and their alerts were committed together.
        assert rows("SELECT story FROM seen GROUP BY story HAVING count(*) != 3") == []
        assert rows("SELECT story FROM story_keys GROUP BY story HAVING count(*) != 4") == []
        assert rows("SELECT story FROM alerts GROUP BY story HAVING count(*) != 2") == []
        assert rows("SELECT story FROM seen EXCEPT SELECT story FROM alerts") == []
        assert rows("SELECT story FROM alerts EXCEPT SELECT story FROM seen") == []
        # The feed row moved with them.
        assert (
            rows(
                "SELECT url FROM feeds f WHERE last_fetch IS NOT"
                " (SELECT max(seen_at) FROM seen WHERE feed_url = f.url)"
            )
            == []
        )
        stories = {row[0] for row in rows("SELECT DISTINCT story FROM alerts")}
        assert {f"story-{n}" for n in committed} <= stories
    finally:
        raw.close()


def test_sigkill_at_random_moments_loses_nothing_and_tears_nothing(tmp_path: Path) -> None:
    """SIGKILLed mid-work 20 times, the file stays whole and keeps every acknowledged poll."""
    rng = random.Random(20241018)
    path = tmp_path / "monitor.db"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    committed: list[int] = []
    for run in range(20):
        with (tmp_path / "stderr").open("w+b") as stderr:
            child = subprocess.Popen(
                [sys.executable, "-c", _CRASHER, str(path), str(run)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=REPO,
                env=env,
            )
            assert child.stdout is not None
            ready = child.stdout.readline()
            if ready != b"ready\n":
                child.kill()
                child.wait()
                stderr.seek(0)
                pytest.fail(f"the writer did not start: {stderr.read().decode()}")
            time.sleep(rng.uniform(0.0, 0.2))
            child.send_signal(signal.SIGKILL)
            out, _ = child.communicate()
        assert child.returncode == -signal.SIGKILL
        committed += [int(line) for line in out.split()]
        _check_consistent(path, committed)
    assert len(committed) > 100  # the writer really was interrupted mid-stream, many times
    with SQLiteStore(str(path)) as survivor:
        report = survivor.status()
        assert report.pending + report.failed > 0
