"""Reloads do not pile up processes (issues 5 and 7): a replaced runtime's fetch workers exit.

Each configuration a daemon loads gets its own fetch worker processes
(``monitor.fetch.workers``); the replaced runtime is closed once the polls
that started with it are over. A service reloaded for months must not
collect processes, on SQLite (one daemon) as on PostgreSQL (a worker process).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from cluster import LiveFeed, WorkerRun
from daemon_proc import group_members, wait_until
from feedserver import FeedServer

RELOADS = 4


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_reloads_leave_no_fetch_workers_behind(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """After four reloads, each followed by fresh polls, the process group is back to the
    size it had before the first one."""
    state = (
        f"'{request.getfixturevalue('postgres_url')}'"
        if backend == "postgres"
        else str(tmp_path / "state.db")
    )
    config = tmp_path / "monitor.yaml"
    with FeedServer() as server:
        feeds = [LiveFeed(f"Feed {n}") for n in range(3)]
        for n, feed in enumerate(feeds):
            server.add_handler(f"/feed{n}.xml", feed)
        feeds_yaml = "".join(f"  - url: {server.url(f'/feed{n}.xml')}\n" for n in range(3))
        config.write_text(
            f"state: {state}\n"
            "poll: {interval: 1s, jitter: 0, timeout: 5s}\n"
            f"feeds:\n{feeds_yaml}"
            "targets:\n  out: 'json://127.0.0.1:9/hook'\n"
            "rules:\n  - {name: drones, query: drone, notify: [out]}\n"
        )
        daemon = WorkerRun(config, tmp_path / "daemon.log")
        try:
            daemon.start()
            daemon.wait_started(timeout=30)
            assert daemon.process is not None
            pid = daemon.process.pid

            def polled_again() -> None:
                counts = [len(feed.fetches()) for feed in feeds]
                wait_until(
                    lambda: all(
                        len(f.fetches()) > c + 1 for f, c in zip(feeds, counts, strict=True)
                    ),
                    20,
                    "every feed polled twice more",
                )

            polled_again()
            before = len(group_members(pid))
            for reload in range(1, RELOADS + 1):
                os.kill(pid, signal.SIGHUP)
                wait_until(
                    lambda n=reload: daemon.run_log().count("config.reloaded") >= n,
                    20,
                    f"reload {reload} logged",
                )
                polled_again()
            wait_until(
                lambda: len(group_members(pid)) <= before,
                20,
                f"the group back to {before} processes (now {len(group_members(pid))})",
            )
            assert daemon.stop() == 0, daemon.run_log()
        finally:
            daemon.close()
    assert "Traceback" not in daemon.run_log()
