"""The fetcher's HTTP/1.1 transport: keep-alive, its bounds, stale connections, TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import httpx
import pytest
import trustme
from feedserver import Concurrency, FeedServer, chunked, status

from monitor.errors import FetchError, TooLargeError
from monitor.fetch import Fetcher
from monitor.fetch.transport import HIGH_WATER, H11Transport
from monitor.model import Fetched

UA = "news-monitor-test"
RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def fetcher(transport: H11Transport, *, per_host: int = 4, max_size: int = 10_000) -> Fetcher:
    return Fetcher(
        user_agent=UA, timeout=5.0, max_size=max_size, per_host=per_host, transport=transport
    )


def test_concurrent_fetches_to_one_host_run_at_once_and_keep_at_most_max_idle(
    server: FeedServer,
) -> None:
    """64 slow fetches at once run 64 at once; afterwards max_idle connections stay open."""
    # Held long enough that all 64 connections are up, under a loaded test run, before
    # the first answer: 0.2 s once let only 56 meet.
    slow = Concurrency(RSS, hold=1.0)
    server.add_handler("/f", slow)
    server.add("/keep", RSS)
    transport = H11Transport(max_idle=16)

    async def go() -> list[bytes]:
        async with fetcher(transport, per_host=64) as f:
            # Handlers close their connections; a static route keeps them alive.
            results = await asyncio.gather(*(f.fetch(server.url("/f")) for _ in range(64)))
            await asyncio.gather(*(f.fetch(server.url("/keep")) for _ in range(64)))
            assert (transport.open_count, transport.idle_count) == (16, 16)
            return [r.body for r in results]

    assert asyncio.run(go()) == [RSS] * 64
    assert slow.most == 64
    assert transport.open_count == 0  # closing the fetcher closed them


def test_sequential_fetches_to_one_host_reuse_one_connection(server: FeedServer) -> None:
    """Keep-alive: one connection serves every request to an origin, one after another."""
    server.add("/a", RSS)
    server.add("/b", RSS, etag='"b"')

    async def go() -> None:
        async with Fetcher(user_agent=UA, timeout=5.0, max_size=10_000) as f:
            for _ in range(5):
                await f.fetch(server.url("/a"))
                await f.fetch(server.url("/b"), etag='"b"')  # 304s keep it alive too

    asyncio.run(go())
    assert len({r.client_port for r in server.requests}) == 1


def test_failed_and_cut_off_fetches_close_their_connections(server: FeedServer) -> None:
    """Errors before a response, error statuses and bodies cut at max_size leave nothing open."""
    server.add_handler("/big", chunked(5_000_000))
    server.add_handler("/500", status(500))
    transport = H11Transport()

    async def go() -> list[BaseException | object]:
        async with fetcher(transport, per_host=16, max_size=100_000) as f:
            urls = [server.url("/big"), server.url("/500"), "http://127.0.0.1:9/closed"] * 10
            outcomes = await asyncio.gather(*(f.fetch(u) for u in urls), return_exceptions=True)
            assert transport.open_count == 0, "a connection outlived its failed fetch"
            return outcomes

    outcomes = asyncio.run(go())
    assert all(isinstance(o, FetchError) for o in outcomes)
    assert sum(isinstance(o, TooLargeError) for o in outcomes) == 10


def test_idle_connections_past_their_expiry_are_not_reused(server: FeedServer) -> None:
    """A connection idle longer than keepalive_expiry is closed and a new one opened."""
    server.add("/a", RSS)

    async def go() -> None:
        async with fetcher(H11Transport(keepalive_expiry=0.2)) as f:
            await f.fetch(server.url("/a"))
            await f.fetch(server.url("/a"))
            await asyncio.sleep(0.3)
            await f.fetch(server.url("/a"))

    asyncio.run(go())
    ports = [r.client_port for r in server.requests]
    assert ports[0] == ports[1] != ports[2]


def test_the_least_recently_used_idle_connection_is_closed_first() -> None:
    """With max_idle 2, a third origin's connection closes the oldest idle one."""
    with FeedServer() as a, FeedServer() as b, FeedServer() as c:
        for s in (a, b, c):
            s.add("/f", RSS)
        transport = H11Transport(max_idle=2)

        async def go() -> None:
            async with fetcher(transport) as f:
                for s in (a, b, c, b, c, a):
                    await f.fetch(s.url("/f"))
                assert (transport.open_count, transport.idle_count) == (2, 2)

        asyncio.run(go())
        # a's first connection was evicted when c's went idle; b's and c's were reused.
        assert len({r.client_port for r in a.requests}) == 2
        assert len({r.client_port for r in b.requests}) == 1
        assert len({r.client_port for r in c.requests}) == 1


class StaleKeepAlive:
    """A raw HTTP/1.1 server that answers the first request on each connection with
    keep-alive, then closes the connection when the next request arrives, unanswered:
    a server whose idle timeout races the client's next request."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                _read_request(conn)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                    + f"Content-Length: {len(RSS)}\r\n\r\n".encode()
                    + RSS
                )
                _read_request(conn)  # then hang up without a word

    def close(self) -> None:
        self.listener.close()


def _read_request(conn: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            return
        data += chunk


def test_a_request_on_a_connection_the_server_just_closed_is_sent_again_once() -> None:
    """The server closes a kept-alive connection as the next GET arrives: the GET is sent
    again on a new connection, and succeeds."""
    server = StaleKeepAlive()
    url = f"http://127.0.0.1:{server.port}/f"

    async def go() -> list[Fetched]:
        async with fetcher(H11Transport()) as f:
            return [await f.fetch(url) for _ in range(3)]

    try:
        results = asyncio.run(go())
    finally:
        server.close()
    assert [r.body for r in results] == [RSS] * 3
    assert server.connections == 3  # each connection served one answer and one hang-up


def test_a_new_connection_closed_without_an_answer_is_an_error_not_a_retry() -> None:
    """Only a reused connection is retried: on a fresh one, the hang-up is the answer."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = []

    def hang_up() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            _read_request(conn)
            conn.close()

    threading.Thread(target=hang_up, daemon=True).start()

    async def go() -> FetchError:
        async with fetcher(H11Transport()) as f:
            with pytest.raises(FetchError) as caught:
                await f.fetch(f"http://127.0.0.1:{listener.getsockname()[1]}/f")
            return caught.value

    try:
        error = asyncio.run(go())
    finally:
        listener.close()
    assert "closed the connection without answering" in str(error)
    assert len(accepted) == 1


def test_an_oversized_response_head_is_a_protocol_error(server: FeedServer) -> None:
    """Response headers past 100 KiB are refused, not buffered without end."""

    def huge_head(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        for n in range(2000):
            handler.send_header(f"X-Filler-{n}", "x" * 100)
        handler.end_headers()

    server.add_handler("/f", huge_head)

    async def go() -> FetchError:
        async with fetcher(H11Transport()) as f:
            with pytest.raises(FetchError) as caught:
                await f.fetch(server.url("/f"))
            return caught.value

    assert str(asyncio.run(go())).startswith(f"protocol error from 127.0.0.1:{server.port}: ")


# -- TLS ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_server(ca: trustme.CA, *names: str) -> FeedServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return FeedServer(tls=context)


def trusting(ca: trustme.CA) -> H11Transport:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return H11Transport(ssl_context=context)


def fetch_with(transport: H11Transport, url: str) -> Fetched | FetchError:
    async def go() -> Fetched | FetchError:
        async with fetcher(transport) as f:
            try:
                return await f.fetch(url)
            except FetchError as exc:
                return exc

    return asyncio.run(go())


def test_https_with_a_trusted_certificate_fetches_and_keeps_alive(ca: trustme.CA) -> None:
    """TLS to a server whose certificate names it: the body arrives, the connection is
    reused, and the server saw the name it was asked for (SNI via the certificate)."""
    with tls_server(ca, "127.0.0.1") as server:
        server.add("/f", RSS, etag='"v1"')
        transport = trusting(ca)

        async def go() -> list[Fetched]:
            async with fetcher(transport) as f:
                return [await f.fetch(server.url("/f")) for _ in range(3)]

        results = asyncio.run(go())
        assert [r.body for r in results] == [RSS] * 3
        assert len({r.client_port for r in server.requests}) == 1


def test_https_certificate_for_another_name_is_a_tls_error(ca: trustme.CA) -> None:
    """A valid certificate for a different host is refused, and the message says why."""
    with tls_server(ca, "feeds.example.org") as server:
        server.add("/f", RSS)
        error = fetch_with(trusting(ca), server.url("/f"))
        assert isinstance(error, FetchError)
        assert str(error).startswith(f"TLS error with 127.0.0.1:{server.port}: ")
        assert "127.0.0.1" in str(error).split(": ", 1)[1]  # the name that did not match


def test_https_certificate_from_an_unknown_authority_is_refused_by_default(
    ca: trustme.CA,
) -> None:
    """The default context trusts the system's authorities only, not a test CA."""
    with tls_server(ca, "127.0.0.1") as server:
        server.add("/f", RSS)
        error = fetch_with(H11Transport(), server.url("/f"))
        assert isinstance(error, FetchError)
        assert str(error).startswith(f"TLS error with 127.0.0.1:{server.port}: ")
        assert "issuer" in str(error) or "self-signed" in str(error) or "verify" in str(error)


def test_unknown_schemes_are_refused_by_the_transport() -> None:
    """The transport itself speaks HTTP and HTTPS only."""

    async def go() -> None:
        await H11Transport().handle_async_request(httpx.Request("GET", "ftp://example.org/f"))

    with pytest.raises(httpx.UnsupportedProtocol):
        asyncio.run(go())


def test_slow_readers_do_not_buffer_a_fast_body_without_bound(server: FeedServer) -> None:
    """A body arriving faster than it is read pauses the socket: memory stays near the
    high-water mark however large the body."""
    server.add_handler("/big", chunked(50_000_000))
    transport = H11Transport()

    async def go() -> int:
        request = httpx.Request("GET", server.url("/big"))
        response = await transport.handle_async_request(request)
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        most = 0
        read = 0
        async for chunk in stream:
            read += len(chunk)
            most = max(most, transport.buffered)
            if read > 5_000_000:
                break
            await asyncio.sleep(0.001)  # a consumer slower than loopback; the loop reads on
        await stream.aclose()
        await transport.aclose()
        return most

    assert asyncio.run(go()) <= HIGH_WATER + 256 * 1024


def test_https_body_ended_by_the_server_closing_is_read_whole(ca: trustme.CA) -> None:
    """A body without Content-Length ends when the server closes, here without a TLS
    close_notify (Python's server socket just closes), as many servers do: it is read
    whole, not reported as a broken connection."""

    def close_delimited(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.end_headers()
        handler.wfile.write(RSS)

    with tls_server(ca, "127.0.0.1") as server:
        server.add_handler("/f", close_delimited)
        fetched = fetch_with(trusting(ca), server.url("/f"))
        assert isinstance(fetched, Fetched), fetched
        assert fetched.body == RSS
