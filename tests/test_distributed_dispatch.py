"""What ``dispatch-feeds`` queues (issue 7), on a real PostgreSQL: a bounded queue of polls.

Every fetch of a job reads the jobs waiting, so the dispatcher keeps at most
``Node.queued_polls`` polls waiting, most overdue first, and tops the queue
up as workers take polls; a feed with a poll waiting or running is not
queued again. The jobs are run by no worker here: they are taken from the
queue by hand, as a worker would, and counted in Procrastinate's table.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from monitor.config import Config, load_config
from monitor.distributed.jobs import FEEDS_QUEUE, POLL, Node, build_app
from monitor.pipeline import Runtime
from monitor.store.postgres import PostgresStore

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
FEEDS = [f"https://f{n:02d}.example/rss" for n in range(30)]


def test_dispatch_keeps_a_bounded_queue_most_overdue_first(
    tmp_path: Path, postgres_url: str
) -> None:
    """30 feeds due, at most 10 waiting: 10 queued, most overdue first; as workers take
    polls the queue is topped up to 10 again, never with a feed already queued or running."""
    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"state: '{postgres_url}'\n"
        "targets: {desk: 'json://127.0.0.1:9/'}\n"
        "rules: [{name: r, query: drone, notify: [desk]}]\n"
        "feeds:\n" + "".join(f"  - url: {url}\n" for url in FEEDS)
    )
    with PostgresStore(postgres_url) as store:
        store.migrate_queue()
        # The last feeds are the most overdue: due 30, 29, ... minutes ago.
        for n, url in enumerate(FEEDS):
            store.sync_feeds([url], NOW - timedelta(minutes=n + 1))
        asyncio.run(_dispatch_and_take(load_config(config), store, postgres_url))


async def _dispatch_and_take(config: Config, store: PostgresStore, url: str) -> None:
    runtime = Runtime(config)
    node = Node(runtime, store, None, now=lambda: NOW)
    node.queued_polls = 10
    app = build_app(url, node, pool_size=2)
    await app.open_async()
    try:
        manager = app.job_manager
        worker = await manager.register_worker()
        await node.dispatch_feeds(0)
        assert _queued(url) == {"todo": FEEDS[:-11:-1]}
        await node.dispatch_feeds(0)  # full: nothing more
        assert _queued(url) == {"todo": FEEDS[:-11:-1]}
        taken = [await manager.fetch_job(queues=[FEEDS_QUEUE], worker_id=worker) for _ in range(4)]
        assert [job.task_kwargs["url"] for job in taken if job] == FEEDS[:-5:-1]
        await node.dispatch_feeds(0)  # four running: four more queued, the next most overdue
        assert _queued(url) == {"doing": FEEDS[:-5:-1], "todo": FEEDS[-5:-15:-1]}
    finally:
        await app.close_async()
        await runtime.aclose()


def _queued(url: str) -> dict[str, list[str]]:
    """The poll jobs in the queue by status, each status's feeds in job order."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT status::text, args->>'url' FROM procrastinate_jobs"
            " WHERE task_name = %s ORDER BY id",
            (POLL,),
        ).fetchall()
    found: dict[str, list[str]] = {}
    for status, feed in rows:
        found.setdefault(status, []).append(feed)
    return found
