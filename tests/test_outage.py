"""Telling a network outage from failing feeds: the pure rule and what deciding does with it."""

from __future__ import annotations

import random
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemon_proc import run_cli, status_json

from monitor.decide import OUTAGE_RETRY, FeedSpec, decide_failure
from monitor.errors import FetchError, HTTPStatusError
from monitor.model import FeedForUpdate, FeedStatus
from monitor.outage import (
    SETTLE_SECONDS,
    Change,
    NetworkState,
    OutagePolicy,
    OutageWatch,
    Outcome,
    observe,
)

POLICY = OutagePolicy(window=60.0, min_hosts=3)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SPEC = FeedSpec("https://a.example/rss", "A", timedelta(minutes=10), ())


def replay(outcomes: list[tuple[float, str, bool]]) -> NetworkState:
    state = NetworkState()
    for at, host, reached in outcomes:
        state = observe(state, Outcome(at, host, reached), POLICY)
    return state


@pytest.mark.parametrize(
    ("outcomes", "down"),
    [
        # Three distinct hosts unreachable and nobody answering: the network is down.
        ([(1, "a", False), (2, "b", False), (3, "c", False)], True),
        # Two hosts are not enough evidence.
        ([(1, "a", False), (2, "b", False)], False),
        # One host failing over and over is one dead host, not an outage.
        ([(1, "a", False), (2, "a", False), (3, "a", False), (4, "a", False)], False),
        # A server answered within the window: those hosts are dead, the network is fine.
        ([(1, "z", True), (2, "a", False), (3, "b", False), (4, "c", False)], False),
        # The answer is older than the window: it no longer vouches for the network.
        ([(1, "z", True), (70, "a", False), (71, "b", False), (72, "c", False)], True),
        # Failures spread wider than the window never add up.
        ([(1, "a", False), (80, "b", False), (160, "c", False)], False),
        # Down, then any answer: up again.
        ([(1, "a", False), (2, "b", False), (3, "c", False), (4, "d", True)], False),
    ],
)
def test_outage_needs_several_unreachable_hosts_and_no_answer(
    outcomes: list[tuple[float, str, bool]], down: bool
) -> None:
    """The network is judged down only when several hosts fail to connect and none answers."""
    assert replay(outcomes).down is down


def test_watch_reports_each_transition_once() -> None:
    """The watch returns network.down when judged down, nothing while it stays, then network.up."""
    clock = [0.0]
    watch = OutageWatch(POLICY, clock=lambda: clock[0])

    def record(at: float, host: str, reached: bool) -> Change | None:
        clock[0] = at
        return watch.record(host, reached=reached)

    changes = [
        record(at, host, reached)
        for at, host, reached in [
            (1, "a", False),
            (2, "b", False),
            (3, "c", False),
            (4, "d", False),
            (5, "a", True),
            (6, "b", True),
        ]
    ]
    assert changes == [None, None, Change.DOWN, None, Change.UP, None]
    assert not watch.down


def test_feed_failures_count_again_only_once_the_network_has_settled() -> None:
    """Not settled while down, nor for SETTLE_SECONDS after it comes back; settled before any."""
    clock = [100.0]
    watch = OutageWatch(POLICY, clock=lambda: clock[0])
    assert watch.settled()
    for host in "abc":
        watch.record(host, reached=False)
    assert watch.down and not watch.settled()
    watch.record("a", reached=True)
    clock[0] += SETTLE_SECONDS - 1
    assert not watch.down and not watch.settled()
    clock[0] += 1
    assert watch.settled()


def failing_feed(streak: int) -> FeedForUpdate:
    return FeedForUpdate(
        url=SPEC.url,
        fetch_url=SPEC.url,
        title="A",
        etag=None,
        last_modified=None,
        body_hash=None,
        status=FeedStatus.ERROR,
        error_streak=streak,
        last_success=NOW - timedelta(hours=1),
        next_due=NOW,
    )


def test_network_failures_during_an_outage_are_not_blamed_on_the_feed() -> None:
    """While the network is down, a connect failure keeps the streak and retries within minutes."""
    error = FetchError("connection refused by a.example", network=True)
    intent = decide_failure(failing_feed(0), SPEC, error, NOW, random.Random(1), network_down=True)
    assert intent.error_streak == 1
    assert intent.next_due - NOW <= OUTAGE_RETRY * 1.25
    assert "the network is down" in (intent.error or "")
    # A streak from before the outage is kept, not raised and not wiped.
    later = decide_failure(failing_feed(4), SPEC, error, NOW, random.Random(1), network_down=True)
    assert later.error_streak == 4


def test_the_same_failure_without_an_outage_backs_off() -> None:
    """Without an outage the streak grows and the wait doubles from the interval."""
    error = FetchError("connection refused by a.example", network=True)
    intent = decide_failure(failing_feed(3), SPEC, error, NOW, random.Random(1))
    assert intent.error_streak == 4
    assert intent.next_due - NOW >= timedelta(minutes=60)
    assert "network" not in (intent.error or "")


def test_server_errors_during_an_outage_still_count_against_the_feed() -> None:
    """An HTTP error is the server's answer, so the feed's streak grows even during an outage."""
    error = HTTPStatusError(500, "HTTP 500 Internal Server Error")
    intent = decide_failure(failing_feed(3), SPEC, error, NOW, random.Random(1), network_down=True)
    assert intent.error_streak == 4


def test_run_once_with_every_host_unreachable_says_the_network_is_down(tmp_path: Path) -> None:
    """Through the real `run --once`: four feeds whose hosts refuse connections are one
    outage, logged once; feeds polled once it is recognised are not blamed (streak 1)."""
    ports = []
    for _ in range(4):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    config = tmp_path / "monitor.yaml"
    feeds = "".join(f"  - url: http://127.0.0.1:{port}/rss\n" for port in ports)
    config.write_text(
        f"state: {tmp_path / 'state.db'}\n"
        "poll: {concurrency: 1, jitter: 0}\n"  # one at a time: the order of evidence is fixed
        f"feeds:\n{feeds}"
        "targets: {terminal: 'console://'}\n"
        "rules: [{name: r, query: drone, notify: [terminal]}]\n"
    )
    done = run_cli(config, "run", "--once")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("network.down") == 1, done.stderr
    feeds_after = status_json(config)["feeds"]
    assert all(f["error_streak"] == 1 for f in feeds_after)
    blamed_on_network = [f for f in feeds_after if "the network is down" in (f["error"] or "")]
    assert len(blamed_on_network) == 2  # the third failure completes the evidence; 3rd and 4th
    now = datetime.now(UTC)
    for feed in blamed_on_network:
        assert datetime.fromisoformat(feed["next_due"]) - now < OUTAGE_RETRY * 1.25
