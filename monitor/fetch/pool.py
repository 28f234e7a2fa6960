"""Connection pooling that stays cheap with many connections (issue 5, polling 2,000 feeds).

httpcore 1.0's pool walks its whole connection list, with a nested walk
inside, every time a request arrives or finishes (``_assign_requests_to_
connections``: O(connections²) per event, encode/httpcore#1035). With the 64
connections a poll of thousands of feeds keeps open, that bookkeeping was
two thirds of the CPU of an unchanged poll cycle (``benchmarks/poll_bench.py``,
profiled). :class:`ShardedTransport` keeps the one ``httpx.AsyncClient`` but
spreads its requests over many httpcore pools of :data:`SHARD_SIZE`
connections each, so every pool event checks one connection instead of
dozens. One per pool measured cheapest: 15% less wall time for an unchanged
2,000-feed cycle than four per pool, whose per-request liveness checks of
every idle connection (a ``poll()`` and a ``getpeername()`` each) remained.

A request goes to a shard that served its origin recently, for keep-alive,
unless that shard is busy; then to the least-loaded shard. The fetcher's own
semaphore never lets more requests in flight than all shards hold, and a
shard is counted as busy until the response is closed, so nothing ever
queues inside a pool (where a cancelled wait can leak a slot, httpcore#550).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable

import httpx

SHARD_SIZE = 1
# Origins whose shards are remembered for keep-alive; older ones just pick again.
_AFFINITY_MAX = 4096


class ShardedTransport(httpx.AsyncBaseTransport):
    """Several small HTTP/1.1 connection pools behind one transport (module doc)."""

    def __init__(self, *, max_connections: int, keepalive_expiry: float = 30.0) -> None:
        count = max(1, math.ceil(max_connections / SHARD_SIZE))
        size = math.ceil(max_connections / count)
        # One TLS context for every shard (building one loads the CA bundle), made as
        # httpx makes its default: certifi, or SSL_CERT_FILE / SSL_CERT_DIR.
        context = httpx.create_ssl_context()
        self._shards = [
            httpx.AsyncHTTPTransport(
                verify=context,
                http1=True,
                http2=False,
                limits=httpx.Limits(
                    max_connections=size,
                    max_keepalive_connections=size,
                    keepalive_expiry=keepalive_expiry,
                ),
            )
            for _ in range(count)
        ]
        self._size = size
        self._busy = [0] * count
        self._affinity: OrderedDict[tuple[str, str, int | None], list[int]] = OrderedDict()

    @property
    def shard_count(self) -> int:
        """How many pools requests are spread over."""
        return len(self._shards)

    def busy(self) -> tuple[int, ...]:
        """Requests in flight per shard (a response counts until it is closed)."""
        return tuple(self._busy)

    def _pick(self, origin: tuple[str, str, int | None]) -> int:
        busy = self._busy
        recent = self._affinity.get(origin)
        if recent is not None:
            self._affinity.move_to_end(origin)
            best = min(recent, key=busy.__getitem__)
            if busy[best] < self._size:
                return best
        best = min(range(len(busy)), key=busy.__getitem__)
        if recent is None:
            self._affinity[origin] = [best]
            if len(self._affinity) > _AFFINITY_MAX:
                self._affinity.popitem(last=False)
        elif best not in recent:
            recent.append(best)
        return best

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through a shard; the shard stays busy until the response closes."""
        url = request.url
        index = self._pick((url.scheme, url.host, url.port))
        self._busy[index] += 1
        try:
            response = await self._shards[index].handle_async_request(request)
        except BaseException:
            self._busy[index] -= 1
            raise
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        response.stream = _ReleasingStream(stream, lambda: self._release(index))
        return response

    def _release(self, index: int) -> None:
        self._busy[index] -= 1

    async def aclose(self) -> None:
        """Close every shard's connections."""
        for shard in self._shards:
            await shard.aclose()


class _ReleasingStream(httpx.AsyncByteStream):
    """A response body that tells its shard when it is closed (once)."""

    def __init__(self, stream: httpx.AsyncByteStream, release: Callable[[], None]) -> None:
        self._stream = stream
        self._release: Callable[[], None] | None = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()
