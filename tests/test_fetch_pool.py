"""The sharded connection pool behind the fetcher: spread, keep-alive and release of shards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from feedserver import Concurrency, FeedServer, chunked, status

from monitor.errors import FetchError, TooLargeError
from monitor.fetch import Fetcher
from monitor.fetch.pool import SHARD_SIZE, ShardedTransport

UA = "news-monitor-test"
RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def test_shards_hold_the_connection_limit_between_them() -> None:
    """The limit is split into pools of SHARD_SIZE; a limit below the shard size is one pool."""
    assert ShardedTransport(max_connections=16 * SHARD_SIZE).shard_count == 16
    assert ShardedTransport(max_connections=SHARD_SIZE - 1).shard_count == 1
    assert ShardedTransport(max_connections=16 * SHARD_SIZE + 1).shard_count == 17


def test_concurrent_fetches_to_one_host_use_every_shard_and_release_them(
    server: FeedServer,
) -> None:
    """64 slow fetches at once run 64 at once (no pool queueing), then every shard is idle."""
    # Held long enough that all 64 connections are up, under a loaded test run, before
    # the first answer: 0.2 s once let only 56 meet.
    slow = Concurrency(RSS, hold=1.0)
    server.add_handler("/f", slow)
    transport = ShardedTransport(max_connections=64)

    async def go() -> list[bytes]:
        async with Fetcher(
            user_agent=UA, timeout=5.0, max_size=10_000, per_host=64, transport=transport
        ) as fetcher:
            results = await asyncio.gather(*(fetcher.fetch(server.url("/f")) for _ in range(64)))
            return [r.body for r in results]

    assert asyncio.run(go()) == [RSS] * 64
    assert slow.most == 64
    assert transport.busy() == (0,) * transport.shard_count


def test_sequential_fetches_to_one_host_reuse_one_connection(server: FeedServer) -> None:
    """An origin goes back to the shard that holds its idle connection: keep-alive works."""
    server.add("/a", RSS)
    server.add("/b", RSS)

    async def go() -> None:
        async with Fetcher(user_agent=UA, timeout=5.0, max_size=10_000) as fetcher:
            for _ in range(5):
                await fetcher.fetch(server.url("/a"))
                await fetcher.fetch(server.url("/b"))

    asyncio.run(go())
    assert len({r.client_port for r in server.requests}) == 1


def test_failed_and_cut_off_fetches_release_their_shard(server: FeedServer) -> None:
    """Errors before a response, error statuses and bodies cut at max_size all free the shard."""
    server.add_handler("/big", chunked(5_000_000))
    server.add_handler("/500", status(500))
    server.add("/ok", RSS)
    transport = ShardedTransport(max_connections=2 * SHARD_SIZE)

    async def go() -> list[BaseException | object]:
        async with Fetcher(
            user_agent=UA, timeout=5.0, max_size=100_000, per_host=16, transport=transport
        ) as fetcher:
            urls = [server.url("/big"), server.url("/500"), "http://127.0.0.1:9/closed"] * 10
            return await asyncio.gather(*(fetcher.fetch(u) for u in urls), return_exceptions=True)

    outcomes = asyncio.run(go())
    assert all(isinstance(o, FetchError) for o in outcomes)
    assert sum(isinstance(o, TooLargeError) for o in outcomes) == 10
    assert transport.busy() == (0, 0)  # two shards, both free again


def test_a_response_closed_twice_releases_once() -> None:
    """Closing a response again (httpx does on errors) must not free a slot it does not hold."""

    class Body(httpx.AsyncByteStream):
        async def __aiter__(self) -> AsyncIterator[bytes]:
            yield RSS

    class Echo(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            return httpx.Response(200, stream=Body())

    transport = ShardedTransport(max_connections=SHARD_SIZE)
    transport._shards = [Echo()]  # type: ignore[list-item]  # the network is not the subject

    async def go() -> None:
        response = await transport.handle_async_request(httpx.Request("GET", "http://a.test/"))
        assert transport.busy() == (1,)
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        await stream.aclose()
        await stream.aclose()

    asyncio.run(go())
    assert transport.busy() == (0,)
