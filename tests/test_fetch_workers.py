"""Fetch worker processes (monitor.fetch.workers) against a real HTTP server on 127.0.0.1.

The in-process Fetcher's behaviour is tested in test_fetch.py; these tests check
what crossing a process boundary could break: every answer and error arrives
intact, the per-host limit holds across workers, and a dying worker costs only
its own requests.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
import socket
from collections.abc import Iterator

import pytest
from feedserver import Concurrency, FeedServer, stall, status, trickle

from monitor.errors import DeadlineError, FetchError, HTTPStatusError, TooLargeError
from monitor.fetch import FetcherSettings
from monitor.fetch.workers import START_ATTEMPTS, FetchWorkers

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
SETTINGS = FetcherSettings(
    user_agent="news-monitor-test", timeout=5.0, max_size=1_000_000, per_host=4, max_connections=8
)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/feed.xml"


def test_answers_and_errors_arrive_intact(server: FeedServer) -> None:
    """Bodies, validators, digests and each kind of FetchError, with their fields, come back
    from the worker as the in-process fetcher would give them."""
    server.add("/feed.xml", RSS, etag='"v1"', last_modified="Mon, 01 Jan 2024 00:00:00 GMT")
    server.add_handler("/busy", status(503, {"Retry-After": "120"}))
    server.add_handler("/big", status(200, {}, b"x" * 5000))
    server.add_handler("/slow", trickle(interval=0.05))
    digest = hashlib.sha256(RSS).hexdigest()

    async def go() -> None:
        async with FetchWorkers(SETTINGS, count=2) as workers:
            fresh = await workers.fetch(server.url("/feed.xml"))
            assert (fresh.status, fresh.body, fresh.digest) == (200, RSS, digest)
            assert fresh.etag == '"v1"'
            known = await workers.fetch(server.url("/feed.xml"), known_hash=digest)
            assert (known.status, known.body, known.digest) == (200, b"", digest)
            cached = await workers.fetch(server.url("/feed.xml"), etag='"v1"')
            assert cached.not_modified and cached.etag == '"v1"'

            with pytest.raises(HTTPStatusError) as busy:
                await workers.fetch(server.url("/busy"))
            assert (busy.value.status, busy.value.retry_after) == (503, 120)
            assert str(busy.value) == "HTTP 503 Service Unavailable"
            with pytest.raises(TooLargeError, match="larger than"):
                await workers.fetch(server.url("/big"), max_size=1000)
            with pytest.raises(DeadlineError, match="longer than"):
                await workers.fetch(server.url("/slow"), timeout=0.3)
            with pytest.raises(FetchError) as refused:
                await workers.fetch(refused_url())
            assert refused.value.network
            assert len(workers.pids) == 2 and os.getpid() not in workers.pids

    asyncio.run(go())


def test_per_host_limit_holds_across_workers(server: FeedServer) -> None:
    """Three workers, per_host 4, twelve slow requests to one host: never more than four
    at the server at once, yet four at once (the workers share the budget, not split it)."""
    slow = Concurrency(RSS, hold=0.2)
    server.add_handler("/slow.xml", slow)

    async def go() -> None:
        async with FetchWorkers(SETTINGS, count=3) as workers:
            urls = [server.url(f"/slow.xml?n={n}") for n in range(12)]
            results = await asyncio.gather(*(workers.fetch(url) for url in urls))
            assert all(result.body == RSS for result in results)

    asyncio.run(go())
    assert slow.most == SETTINGS.per_host


def test_a_killed_worker_fails_only_its_requests_and_is_replaced(server: FeedServer) -> None:
    """SIGKILL to a worker mid-request: that request fails with a message naming the signal,
    the other worker's request succeeds, and the next fetch gets a new worker."""
    server.add_handler("/hang.xml", stall(30))
    server.add("/feed.xml", RSS)

    async def go() -> None:
        async with FetchWorkers(SETTINGS, count=1) as workers:
            await workers.fetch(server.url("/feed.xml"))
            (first,) = workers.pids
            hanging = asyncio.ensure_future(workers.fetch(server.url("/hang.xml")))
            await asyncio.to_thread(server.wait_for_requests, 2)
            os.kill(first, signal.SIGKILL)
            with pytest.raises(FetchError, match="fetch worker exited unexpectedly"):
                await asyncio.wait_for(hanging, 10)
            assert "signal 9" in str(hanging.exception())
            again = await workers.fetch(server.url("/feed.xml"))
            assert again.body == RSS
            assert workers.pids and workers.pids != [first]

    asyncio.run(go())


def test_workers_that_keep_dying_at_start_hand_fetching_to_the_daemon(
    server: FeedServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Workers killed before they answer anything, START_ATTEMPTS times in a row: fetching
    goes on in this process, and the log says so once."""
    server.add_handler("/hang.xml", stall(30))
    server.add("/feed.xml", RSS)

    async def go() -> None:
        async with FetchWorkers(SETTINGS, count=1) as workers:
            for attempt in range(START_ATTEMPTS):
                hanging = asyncio.ensure_future(workers.fetch(server.url(f"/hang.xml?{attempt}")))
                await asyncio.to_thread(server.wait_for_requests, attempt + 1)
                os.kill(workers.pids[0], signal.SIGKILL)
                with pytest.raises(FetchError, match="exited unexpectedly"):
                    await asyncio.wait_for(hanging, 10)
            with caplog.at_level(logging.ERROR, logger="monitor"):
                fetched = await workers.fetch(server.url("/feed.xml"))
            assert fetched.body == RSS
            assert workers.pids == []

    asyncio.run(go())
    failures = [r for r in caplog.records if r.getMessage() == "fetch.workers_failed"]
    assert len(failures) == 1


def test_fetches_waiting_for_their_host_when_closing_start_no_new_worker(
    server: FeedServer,
) -> None:
    """A fetch still waiting for a per-host slot when the fetcher closes fails as closed; it
    does not start a worker after the others were stopped."""
    slow = Concurrency(RSS, hold=0.3)
    server.add_handler("/slow.xml", slow)
    settings = FetcherSettings(
        user_agent="news-monitor-test",
        timeout=5.0,
        max_size=1_000_000,
        per_host=1,
        max_connections=8,
    )

    async def go() -> None:
        workers = FetchWorkers(settings, count=1)
        first = asyncio.ensure_future(workers.fetch(server.url("/slow.xml?1")))
        waiting = asyncio.ensure_future(workers.fetch(server.url("/slow.xml?2")))
        await asyncio.to_thread(server.wait_for_requests, 1)
        await workers.aclose()
        assert (await first).body == RSS
        with pytest.raises(FetchError, match="closed"):
            await waiting
        assert workers.pids == []

    asyncio.run(go())
