"""What many workers need of the PostgreSQL store (issue 7), on a real server.

- A poll's lookup claims its story keys until its apply: a second poll of
  another feed carrying the same story (one headline under two links) waits,
  then sees the first one's story and alerts nothing more.
- Procrastinate's schema lands in the URL's schema beside the store's, once.
- ``migrate`` reports it; ``run --workers`` refuses a SQLite state and a
  database it cannot log in to, in one line each.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemon_proc import run_cli
from pgserver import PostgresServer

from monitor.errors import StoreError
from monitor.model import (
    AlertIntent,
    FeedStatus,
    FeedUpdateIntent,
    SeenIntent,
    StoreLookup,
)
from monitor.store.postgres import PostgresStore
from monitor.store.postgres_queue import LOCK_INDEX, VERSION_TABLE, pending_migrations

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
A, B = "https://a.example/rss", "https://b.example/rss"
WINDOW = T0 - timedelta(hours=24)


def _poll(url: str, story: str, keys: tuple[str, ...]) -> FeedUpdateIntent:
    """A poll of ``url`` recording one entry of ``story`` and alerting rule ``dead`` on it."""
    entry = SeenIntent("e1", story, keys, "Bodies of 501 soldiers returned", None, T0)
    alert = AlertIntent(
        rule="dead",
        story=story,
        feed=url,
        feed_url=url,
        title=entry.title,
        link=None,
        published=T0,
        summary="",
        terms=("bodies",),
        hits=(),
        targets=("desk",),
    )
    return FeedUpdateIntent(
        url=url,
        now=T0,
        status=FeedStatus.OK,
        next_due=T0 + timedelta(minutes=10),
        error_streak=0,
        http_status=200,
        success=True,
        seen=(entry,),
        alerts=(alert,),
    )


def test_a_lookup_holds_its_story_keys_until_its_apply_in_another_process(
    postgres_url: str,
) -> None:
    """Two feeds with one headline under two links, polled at once by two workers: the second
    lookup waits for the first apply, then knows the story as alerted (one alert, not two)."""
    first, second = PostgresStore(postgres_url), PostgresStore(postgres_url)
    try:
        first.sync_feeds([A, B], T0)
        title_key, link_a, link_b = "title:bodies of 501", "link:a.example/1", "link:b.example/1"
        found = first.lookup(A, ["e1"], [link_a], [title_key], WINDOW)
        assert found.stories == {}
        answers: list[StoreLookup] = []
        waiting = threading.Thread(
            target=lambda: answers.append(second.lookup(B, ["e1"], [link_b], [title_key], WINDOW))
        )
        waiting.start()
        time.sleep(0.5)
        assert waiting.is_alive(), "the second lookup did not wait for the first poll"
        first.apply(_poll(A, link_a, (link_a, title_key)))
        waiting.join(timeout=10)
        [answer] = answers
        assert answer.stories[title_key].story == link_a
        assert answer.stories[title_key].alerted_rules == {"dead"}
        second.apply(_poll(B, link_b, (link_b, title_key)))  # releases its claim
        # A lookup whose apply never comes is released explicitly (or by the next lookup).
        first.lookup(A, ["e2"], [link_a], [], WINDOW)
        first.release_story_keys()
        started = time.monotonic()
        second.lookup(B, ["e2"], [link_a], [], WINDOW)
        assert time.monotonic() - started < 0.5
        second.release_story_keys()
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize(
    ("recorded", "installed", "pending"),
    [
        ("3.10.0", "3.10.0", []),
        ("3.3.0", "3.10.0", ["03.04.00_01_pre_x.sql", "03.04.00_50_post_x.sql"]),
        ("3.0.0", "3.3.0", ["03.01.00_01_pre_y.sql", "03.03.00_01_pre_z.sql"]),
        ("3.4.0", "3.10.0", []),
    ],
)
def test_procrastinate_migrations_between_two_versions_apply_in_order(
    recorded: str, installed: str, pending: list[str]
) -> None:
    """A migration file named for version V is pending when recorded < V <= installed."""
    names = [
        "__init__.py",
        "03.04.00_50_post_x.sql",
        "03.01.00_01_pre_y.sql",
        "03.04.00_01_pre_x.sql",
        "03.00.00_01_pre_w.sql",
        "03.03.00_01_pre_z.sql",
    ]
    assert pending_migrations(names, recorded, installed) == pending


_INDEX = "SELECT schemaname::text FROM pg_indexes WHERE indexname = %s"


def test_the_job_queue_is_created_once_in_the_urls_schema_and_a_newer_one_refused(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    """Procrastinate's tables and functions land in the schema of the URL's search_path, with
    our index of its jobs by lock (added again when missing); a second migration changes
    nothing; a queue written by a newer Procrastinate is refused."""
    import psycopg
    from procrastinate import __version__

    schema = postgres_url.rpartition("%3D")[2]
    with PostgresStore(postgres_url) as store:
        assert store.migrate_queue() == __version__
        assert store.migrate_queue() == __version__
    with psycopg.connect(postgres_url, autocommit=True) as raw:
        where = raw.execute(
            "SELECT DISTINCT n.nspname FROM pg_proc p JOIN pg_namespace n"
            " ON n.oid = p.pronamespace WHERE p.proname LIKE 'procrastinate_%'"
        ).fetchall()
        assert where == [(schema,)]
        assert raw.execute("SELECT count(*) FROM procrastinate_jobs").fetchone() == (0,)
        assert raw.execute(_INDEX, (LOCK_INDEX,)).fetchone() == (schema,)
        # A queue migrated before the index existed (or by a Procrastinate that lost it).
        raw.execute(f"DROP INDEX {LOCK_INDEX}")
    with PostgresStore(postgres_url) as store:
        assert store.migrate_queue() == __version__
    with psycopg.connect(postgres_url, autocommit=True) as raw:
        assert raw.execute(_INDEX, (LOCK_INDEX,)).fetchone() == (schema,)
        raw.execute(f"UPDATE {VERSION_TABLE} SET version = '99.0.0'")  # noqa: S608
    with (
        PostgresStore(postgres_url) as store,
        pytest.raises(StoreError, match=r"newer Procrastinate \(99\.0\.0"),
    ):
        store.migrate_queue()


def test_migrate_reports_the_job_queue_and_run_refuses_what_cannot_work(
    tmp_path: Path, postgres_url: str, postgres_server: PostgresServer
) -> None:
    """`migrate` names the queue's version; `run --workers` on SQLite is a usage error (exit 2)
    and a wrong password a one-line runtime error (exit 1), neither with a traceback."""
    from procrastinate import __version__

    config = tmp_path / "monitor.yaml"
    rest = (
        "feeds: [{url: 'https://a.example/rss'}]\ntargets: {desk: 'json://127.0.0.1:9/'}\n"
        "rules: [{name: r, query: drone, notify: [desk]}]\n"
    )
    config.write_text(f"state: '{postgres_url}'\n{rest}")
    migrated = run_cli(config, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.endswith(f", up to date; job queue: Procrastinate {__version__}\n")

    config.write_text(f"state: '{tmp_path / 'state.db'}'\n{rest}")
    refused = run_cli(config, "run", "--workers", "2")
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: --workers needs `state: postgresql://...`")
    assert refused.stderr.count("\n") == 1

    wrong = postgres_server.url("contract", password="not-the-password")
    config.write_text(f"state: '{wrong}'\n{rest}")
    failed = run_cli(config, "run", "--workers", "2")
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: PostgreSQL database postgresql://monitor@127.0.0.1:")
    assert "Traceback" not in failed.stderr and "not-the-password" not in failed.stderr
