"""An HTTP/1.1 transport for httpx on asyncio and h11, cheap per request (issue 5).

The fetcher sends its requests here rather than through httpx's default
transport (httpcore on anyio). Profiled on an unchanged poll of 2,000 feeds
(``benchmarks/poll_bench.py``), httpcore and anyio took most of the fetch
workers' CPU: the pool's bookkeeping (O(connections²) per event,
encode/httpcore#1035), a cancel scope around every read and write, and a
``poll()`` plus ``getpeername()`` of an idle connection before each reuse.
Here a connection is an :class:`asyncio.Protocol` that asyncio tells when the
peer closes, h11 does the HTTP/1.1 framing, and a request costs half the CPU.

What the fetcher needs and no more: HTTP/1.1 over TCP or TLS, keep-alive,
per-phase timeouts from the request's ``timeout`` extension, and failures as
httpx exceptions whose causes are kept (``monitor.fetch.translate`` names
DNS, TLS and refused connections from them). No proxies, HTTP/2 or upgrades.

A request that finds its reused keep-alive connection closed by the server
before any byte of an answer (the server's idle timeout raced our request)
is sent once more on a new connection, for the safe methods only.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from typing import Any, cast

import h11
import httpx

# Raw bytes buffered from a socket before it is no longer read (the body's reader is slow).
HIGH_WATER = 256 * 1024
# Response heads larger than this are protocol errors (as in httpcore).
MAX_HEAD = 100 * 1024
_SAFE_METHODS = frozenset({b"GET", b"HEAD", b"OPTIONS"})

_Origin = tuple[bytes, bytes, int]  # scheme, host, port


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: bytes from asyncio, buffered with flow control, fed to h11."""

    def __init__(self, origin: _Origin) -> None:
        self.origin = origin
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD)
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.answered = False  # some byte of the current answer has arrived
        self._buffer: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self._eof = False  # the peer closed its side, or the connection is gone
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer.append(data)
        self._buffered += len(data)
        if self._buffered > HIGH_WATER and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # asyncio closes the transport: nothing more is sent on it either

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._error = exc
        self._wake()
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- used by the transport ---------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Bytes received and not yet read."""
        return self._buffered

    @property
    def reusable(self) -> bool:
        """Whether a new request may be sent: open, quiet, and h11 ready for one."""
        return (
            not self._eof
            and not self._buffer
            and self.transport is not None
            and not self.transport.is_closing()
            and self.h11.our_state is h11.IDLE
            and self.h11.their_state is h11.IDLE
        )

    async def send(self, data: bytes, within: float | None) -> None:
        """Write ``data``, waiting at most ``within`` seconds for the socket to take it."""
        if self._eof or self.transport is None or self.transport.is_closing():
            raise httpx.WriteError("the connection was closed") from self._error
        self.transport.write(data)
        writable = self._writable
        if writable is not None:
            if not await _wait(writable, within):
                raise httpx.WriteTimeout("the server did not take the request in time")
            if self._eof:
                raise httpx.WriteError("the connection was closed") from self._error

    async def next_event(self, within: float | None) -> Any:
        """h11's next event, reading as needed; no byte for ``within`` s is ReadTimeout."""
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise httpx.RemoteProtocolError(_protocol_message(exc, self.answered)) from exc
            if event is not h11.NEED_DATA:
                return event
            await self._feed(within)

    async def _feed(self, within: float | None) -> None:
        if not self._buffer and not self._eof:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await _wait(waiter, within)
            finally:
                self._waiter = None
        if self._buffer:
            data = self._buffer.popleft()
            self._buffered -= len(data)
            if self._paused and self._buffered <= HIGH_WATER // 2 and self.transport:
                self._paused = False
                self.transport.resume_reading()
            self.answered = True
            self.h11.receive_data(data)
        elif self._eof:
            if self._error is not None:
                raise httpx.ReadError(str(self._error) or "connection lost") from self._error
            if self.h11.their_state is not h11.CLOSED:
                self.h11.receive_data(b"")  # h11 ends a close-delimited body, or objects
            else:
                raise httpx.RemoteProtocolError("the server closed the connection")
        else:
            raise httpx.ReadTimeout("no data from the server in time")

    def close(self) -> None:
        """Close at once (an unread answer, an error, the pool closing)."""
        if self.transport is not None:
            self.transport.close()
        self._eof = True


async def _wait(future: asyncio.Future[None], within: float | None) -> bool:
    """Await ``future`` for at most ``within`` seconds; whether it was done in time."""
    if within is None:
        await future
        return True
    expired = False

    def expire() -> None:
        nonlocal expired
        if not future.done():
            expired = True
            future.set_result(None)

    handle = asyncio.get_running_loop().call_later(within, expire)
    try:
        await future
    finally:
        handle.cancel()
    return not expired


def _protocol_message(exc: h11.RemoteProtocolError, answered: bool) -> str:
    if not answered:
        return "the server closed the connection without answering"
    return str(exc) or "malformed response"


class H11Transport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio with keep-alive (module doc).

    At most ``max_idle`` idle connections are kept, the least recently used
    closed first, each for at most ``keepalive_expiry`` seconds. Concurrency
    is the caller's to limit: every request without an idle connection to its
    origin opens a new one.
    """

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_idle: int = 64,
        keepalive_expiry: float = 30.0,
    ) -> None:
        self._ssl_context = ssl_context
        self._max_idle = max_idle
        self._expiry = keepalive_expiry
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._lru: OrderedDict[_Connection, None] = OrderedDict()
        self._open: set[_Connection] = set()

    @property
    def idle_count(self) -> int:
        """Idle keep-alive connections held now."""
        return len(self._lru)

    @property
    def open_count(self) -> int:
        """Connections open now, idle or answering."""
        return len(self._open)

    @property
    def buffered(self) -> int:
        """Bytes received on every connection and not yet read."""
        return sum(conn.buffered for conn in self._open)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; the response's body streams from the connection."""
        url = request.url
        scheme = url.raw_scheme
        if scheme not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        origin = (scheme, url.raw_host, url.port or (443 if scheme == b"https" else 80))
        timeouts = request.extensions.get("timeout", {})
        head = _head(request)
        while True:
            conn = self._checkout(origin)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(origin, timeouts.get("connect"))
            try:
                event = await self._exchange(conn, request, head, timeouts)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                self._discard(conn)
                # Closed or reset before a byte of the answer: a stale keep-alive
                # connection. Not a timeout, which would double the fetch's deadline.
                if reused and not conn.answered and _repeatable(request):
                    continue
                raise
            except BaseException:
                self._discard(conn)
                raise
            return httpx.Response(
                event.status_code,
                headers=event.headers.raw_items(),
                stream=_Body(self, conn, timeouts.get("read")),
                extensions={"http_version": b"HTTP/1.1", "reason_phrase": bytes(event.reason)},
            )

    async def _exchange(
        self,
        conn: _Connection,
        request: httpx.Request,
        head: h11.Request,
        timeouts: dict[str, float | None],
    ) -> Any:
        conn.answered = False
        try:
            data = conn.h11.send(head) or b""
            if isinstance(request.stream, httpx.ByteStream):
                body = b"".join([part async for part in request.stream])
                if body:
                    data += conn.h11.send(h11.Data(data=body)) or b""
                await conn.send(
                    data + (conn.h11.send(h11.EndOfMessage()) or b""), timeouts.get("write")
                )
            else:
                await conn.send(data, timeouts.get("write"))
                async for part in cast(httpx.AsyncByteStream, request.stream):
                    if part:
                        await conn.send(
                            conn.h11.send(h11.Data(data=part)) or b"", timeouts.get("write")
                        )
                await conn.send(conn.h11.send(h11.EndOfMessage()) or b"", timeouts.get("write"))
        except h11.LocalProtocolError as exc:
            raise httpx.LocalProtocolError(str(exc)) from exc
        event = await conn.next_event(timeouts.get("read"))
        while isinstance(event, h11.InformationalResponse):
            event = await conn.next_event(timeouts.get("read"))
        return event

    async def _connect(self, origin: _Origin, within: float | None) -> _Connection:
        scheme, host, port = origin
        name = host.decode("ascii")
        context = self._tls() if scheme == b"https" else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(within):
                _, conn = await loop.create_connection(
                    lambda: _Connection(origin),
                    name,
                    port,
                    ssl=context,
                    server_hostname=name if context else None,
                    happy_eyeballs_delay=0.25,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"no connection within {within} s") from exc
        except OSError as exc:  # DNS, refused, unreachable, TLS (ssl.SSLError is an OSError)
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        self._open.add(conn)
        return conn

    def _tls(self) -> ssl.SSLContext:
        # Made when first needed (it loads the CA bundle), as httpx makes its default:
        # certifi, or SSL_CERT_FILE / SSL_CERT_DIR.
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return self._ssl_context

    def _checkout(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            del self._lru[conn]
            if conn.reusable and now - conn.idle_since < self._expiry:
                return conn
            self._discard(conn)
        return None

    def release(self, conn: _Connection, *, complete: bool) -> None:
        """Take ``conn`` back once its response is closed: kept if it can serve another."""
        if complete and conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
            conn.h11.start_next_cycle()
            if conn.reusable:
                conn.idle_since = time.monotonic()
                self._idle.setdefault(conn.origin, []).append(conn)
                self._lru[conn] = None
                while len(self._lru) > self._max_idle:
                    oldest, _ = self._lru.popitem(last=False)
                    self._idle[oldest.origin].remove(oldest)
                    self._discard(oldest)
                return
        self._discard(conn)

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._open.discard(conn)

    async def aclose(self) -> None:
        """Close every connection."""
        for conn in list(self._open):
            self._discard(conn)
        self._idle.clear()
        self._lru.clear()


def _repeatable(request: httpx.Request) -> bool:
    """Whether ``request`` may be sent twice: a safe method, with a body held in memory."""
    return request.method.encode() in _SAFE_METHODS and isinstance(request.stream, httpx.ByteStream)


def _head(request: httpx.Request) -> h11.Request:
    return h11.Request(
        method=request.method,
        target=request.url.raw_path,
        headers=request.headers.raw,
    )


class _Body(httpx.AsyncByteStream):
    """A response body read from its connection, which goes back to the pool on close."""

    def __init__(self, pool: H11Transport, conn: _Connection, timeout: float | None) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn
        self._timeout = timeout
        self._complete = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            raise httpx.StreamClosed()
        while True:
            event = await conn.next_event(self._timeout)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self._complete = True
                return

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(conn, complete=self._complete)
