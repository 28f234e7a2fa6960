"""A worker killed with SIGKILL mid-run: its polls and deliveries are taken over (issue 7).

Three `news-monitor run` processes share one PostgreSQL. Stories are
published on slow feeds; once deliveries are under way, a worker with a poll
in flight (the feed server holds its answer) has its whole process group
killed. Its jobs stay claimed until its lease expires; then a survivor puts
them back in the queue: every expected alert still arrives at both targets,
with at most one repeat per target (SPEC §5's one-delivery window), and
every feed is fetched again.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cluster import LiveFeed, WorkerRun, process_groups_of_clients, titles
from daemon_proc import wait_until
from feedserver import FeedServer
from receivers import HTTPReceiver

from monitor.distributed.jobs import LEASE_SECONDS

FEEDS = 24
STORIES = 10


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerRun]]:
    """Three worker processes, killed if a test leaves them running."""
    config = tmp_path / "monitor.yaml"
    runs = [WorkerRun(config, tmp_path / f"worker-{n}.log") for n in range(3)]
    yield runs
    for run in runs:
        run.close()


def test_a_killed_workers_jobs_are_taken_over_after_its_lease_and_nothing_is_lost(
    tmp_path: Path, postgres_url: str, workers: list[WorkerRun]
) -> None:
    """After one of three workers is SIGKILLed mid-poll, every alert arrives at both
    targets with at most one repeat per target, and every feed is polled again."""
    with FeedServer() as server, HTTPReceiver() as desk, HTTPReceiver() as phone:
        for receiver in (desk, phone):
            receiver.respond_with(200, body=b"ok", delay=0.25)
        # Slow answers keep polls in flight on every worker, so the one killed holds some.
        feeds = [LiveFeed(f"Feed {n}", delay=1.5) for n in range(FEEDS)]
        for n, feed in enumerate(feeds):
            server.add_handler(f"/feed{n}.xml", feed)
        feeds_yaml = "".join(f"  - url: {server.url(f'/feed{n}.xml')}\n" for n in range(FEEDS))
        workers[0].config.write_text(
            f"state: '{postgres_url}'\n"
            "poll: {interval: 1s, jitter: 0, timeout: 5s}\n"
            "delivery: {retry_initial: 1s, retry_max: 2s}\n"
            f"feeds:\n{feeds_yaml}"
            f"targets:\n  desk: '{desk.json_url('/desk')}'\n  phone: '{phone.json_url('/phone')}'\n"
            "rules:\n  - {name: drones, query: drone, notify: [desk, phone]}\n"
        )
        for run in workers:
            run.start()
        for run in workers:
            run.wait_started(timeout=30)
        wait_until(lambda: all(f.fetches() for f in feeds), 20, "the first fetch of every feed")
        expected = set()
        for n in range(STORIES):
            title = f"Drone strike number {n} on the port"
            feeds[n * 2].publish(title, f"https://news.example/{n}")
            expected.add(f"[drones] {title}")

        wait_until(lambda: any("alert.delivered" in w.run_log() for w in workers), 20, "deliveries")

        def polling() -> WorkerRun | None:
            # A fetch that began within the last 0.5 s is still held for a second more.
            ports = set().union(*(f.held_ports(time.monotonic() - 0.5) for f in feeds))
            groups = process_groups_of_clients(ports)
            return next((w for w in workers if w.process and w.process.pid in groups), None)

        wait_until(lambda: polling() is not None, 20, "a worker with a poll in flight")
        victim = polling()
        assert victim is not None
        victim.kill()
        killed = time.monotonic()
        survivors = [w for w in workers if w is not victim]
        # What the victim held when it died: its jobs still running, by a worker whose
        # heartbeat stopped (the survivors' beat every second). Whatever it held, a poll
        # at least, must be taken over.
        time.sleep(5)
        held = _held_by_silent_workers(postgres_url)
        assert "poll" in held, held

        def delivered() -> bool:
            return all(expected <= set(titles(r)) for r in (desk, phone))

        wait_until(delivered, 40, "every expected alert at both targets")
        wait_until(
            lambda: all(f.fetches()[-1] > killed + LEASE_SECONDS for f in feeds),
            20,
            "every feed polled again after the lease",
        )
        for run in survivors:
            assert run.stop() == 0, run.run_log()

    for receiver in (desk, phone):
        received = Counter(titles(receiver))
        assert set(received) == expected
        repeats = sum(count - 1 for count in received.values())
        assert repeats <= 1, received
    logs = "".join(run.run_log() for run in survivors)
    for task in held:
        assert f"job.taken_over task={task}" in logs, (held, logs[-3000:])
    assert "Traceback" not in logs


def _held_by_silent_workers(url: str) -> set[str]:
    """Tasks of the jobs running under workers silent for over 4 s (the lease is 8 s)."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT j.task_name FROM procrastinate_jobs j"
            " JOIN procrastinate_workers w ON w.id = j.worker_id"
            " WHERE j.status = 'doing' AND w.last_heartbeat < now() - interval '4 seconds'"
        ).fetchall()
    return {row[0] for row in rows}
