"""Three `news-monitor run` processes on one PostgreSQL poll one farm of 500 feeds (issue 7).

480 quiet feeds (interval 1h, one old matching entry each: the first fetch is
silent) and 20 live ones (interval 2s) to which stories are published while
the workers run, among them one story carried by three feeds at once under
three links. Every expected alert must arrive exactly once at each of two
targets, each quiet feed must be fetched exactly once, and no live feed twice
within its interval: one fetch per interval, not one per worker.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cluster import LiveFeed, WorkerRun, titles
from daemon_proc import Item, rss, wait_until
from feedserver import FeedServer
from receivers import HTTPReceiver

QUIET, LIVE = 480, 20
INTERVAL = 2.0  # seconds, the live feeds'


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerRun]]:
    """Three worker processes (one running two poll workers), killed if a test leaves them."""
    config = tmp_path / "monitor.yaml"
    runs = [
        WorkerRun(config, tmp_path / "worker-a.log"),
        WorkerRun(config, tmp_path / "worker-b.log", "--workers", "2"),
        WorkerRun(config, tmp_path / "worker-c.log"),
    ]
    yield runs
    for run in runs:
        run.close()


def test_three_workers_alert_every_story_once_and_fetch_each_feed_once_per_interval(
    tmp_path: Path, postgres_url: str, workers: list[WorkerRun]
) -> None:
    """Every expected alert arrives exactly once per target; quiet feeds are fetched once,
    live feeds never twice within their interval; the old entries never alert."""
    old = datetime.now(UTC) - timedelta(hours=2)
    with FeedServer() as server, HTTPReceiver() as desk, HTTPReceiver() as phone:
        for n in range(QUIET):
            entry = Item(f"q{n}", f"Drone seen over quiet town {n}", f"https://q.example/{n}", old)
            server.add(f"/quiet{n}.xml", rss(f"Quiet {n}", [entry]), etag=f'"q{n}"')
        live = [LiveFeed(f"Live {n}") for n in range(LIVE)]
        for n, feed in enumerate(live):
            server.add_handler(f"/live{n}.xml", feed)
        feeds_yaml = "".join(f"  - url: {server.url(f'/quiet{n}.xml')}\n" for n in range(QUIET))
        feeds_yaml += "".join(
            f"  - {{url: '{server.url(f'/live{n}.xml')}', interval: 2s}}\n" for n in range(LIVE)
        )
        workers[0].config.write_text(
            f"state: '{postgres_url}'\n"
            "poll: {interval: 1h, jitter: 0}\n"
            f"feeds:\n{feeds_yaml}"
            f"targets:\n  desk: '{desk.json_url('/desk')}'\n  phone: '{phone.json_url('/phone')}'\n"
            "rules:\n  - {name: drones, query: drone, notify: [desk, phone]}\n"
        )
        for run in workers:
            run.start()
        for run in workers:
            run.wait_started(timeout=30)
        assert "workers=2" in workers[1].run_log()

        def fetched_all() -> bool:
            quiet = sum(1 for n in range(QUIET) if server.requests_for(f"/quiet{n}.xml"))
            return quiet == QUIET and all(feed.fetches() for feed in live)

        wait_until(fetched_all, 40, "the first fetch of every feed")
        expected: list[str] = []
        for round_ in range(2):
            published = time.monotonic()
            touched = [live[n] for n in (*range(0, LIVE, 3), 1, 2, 4)]
            for n in range(0, LIVE, 3):
                title = f"Drone barrage number {round_}-{n} hits the city"
                live[n].publish(title, f"https://live.example/{round_}/{n}")
                expected.append(f"[drones] {title}")
            # One wire story on three feeds at once, each with its own link: one alert.
            wire = f"Wire: drones down power lines in round {round_}"
            for n in (1, 2, 4):
                live[n].publish(wire, f"https://site{n}.example/wire/{round_}")
            expected.append(f"[drones] {wire}")
            wait_until(
                lambda since=published, feeds=touched: all(  # type: ignore[misc]
                    f.fetches()[-1] > since for f in feeds
                ),
                10,
                "this round's feeds polled",
            )
        wanted = Counter(expected)

        def delivered() -> bool:
            return all(Counter(titles(r)) >= wanted for r in (desk, phone))

        wait_until(delivered, 30, "every expected alert at both targets")
        settle = (
            time.monotonic() + 2 * INTERVAL + 1
        )  # time for a duplicate, were there one, to arrive
        time.sleep(max(0.0, settle - time.monotonic()))
        for run in workers:
            assert run.stop() == 0, run.run_log()

    for receiver in (desk, phone):
        assert Counter(titles(receiver)) == wanted
    assert all(len(server.requests_for(f"/quiet{n}.xml")) == 1 for n in range(QUIET))
    for feed in live:
        times = feed.fetches()
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert len(times) >= 4, feed.name
        assert min(gaps) >= INTERVAL - 0.05, (feed.name, gaps)
    logs = "".join(run.run_log() for run in workers)
    assert "Traceback" not in logs
