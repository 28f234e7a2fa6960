"""Reloads do not pile up connections (issues 5 and 7): a replaced runtime is closed.

Each configuration a daemon loads gets its own runtime, whose fetcher keeps
idle keep-alive connections to the feeds' servers; the replaced runtime is
closed once the polls that started with it are over. A service reloaded for
months must not collect sockets, on SQLite (one daemon) as on PostgreSQL (a
worker process).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from cluster import WorkerRun, held_by, tcp_sockets
from daemon_proc import wait_until
from feedserver import FeedServer

RELOADS = 4
FEEDS = 3


def connections_to(port: int, pid: int) -> int:
    """How many TCP connections process ``pid`` holds to local port ``port``."""
    return held_by(pid, tcp_sockets(remote_port=port))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_reloads_leave_no_connections_behind(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """After four reloads, each followed by fresh polls, the daemon holds no more
    connections to the feed server than one runtime needs (one per feed)."""
    state = (
        f"'{request.getfixturevalue('postgres_url')}'"
        if backend == "postgres"
        else str(tmp_path / "state.db")
    )
    config = tmp_path / "monitor.yaml"
    with FeedServer() as server:
        for n in range(FEEDS):
            server.add(
                f"/feed{n}.xml", b'<rss version="2.0"><channel><title>t</title></channel></rss>'
            )
        feeds_yaml = "".join(f"  - url: {server.url(f'/feed{n}.xml')}\n" for n in range(FEEDS))
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
                count = len(server.requests)
                wait_until(
                    lambda: len(server.requests) >= count + 2 * FEEDS,
                    20,
                    "every feed polled twice more",
                )

            polled_again()
            assert 1 <= connections_to(server.port, pid) <= FEEDS  # kept alive, and seen
            for reload in range(1, RELOADS + 1):
                os.kill(pid, signal.SIGHUP)
                wait_until(
                    lambda n=reload: daemon.run_log().count("config.reloaded") >= n,
                    20,
                    f"reload {reload} logged",
                )
                polled_again()
            wait_until(
                lambda: connections_to(server.port, pid) <= FEEDS,
                20,
                f"at most {FEEDS} connections (now {connections_to(server.port, pid)})",
            )
            assert daemon.stop() == 0, daemon.run_log()
        finally:
            daemon.close()
    assert "Traceback" not in daemon.run_log()
