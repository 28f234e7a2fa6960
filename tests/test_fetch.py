"""Fetcher against a real HTTP server on 127.0.0.1: politeness, redirects and every failure mode."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
import tracemalloc
import zlib
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, TypeVar

import httpx
import pytest
from feedserver import Concurrency, FeedServer, bomb, chunked, redirect, stall, status, trickle

from monitor.errors import DeadlineError, FetchError, HTTPStatusError, TooLargeError
from monitor.fetch import Fetcher, parse_retry_after
from monitor.fetch.translate import translate
from monitor.model import Fetched

T = TypeVar("T")
UA = "news-monitor/0.1.0 (+https://github.com/news-monitor/news-monitor)"
RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        yield s


def fetch(url: str, **kwargs: Any) -> Fetched:
    """One fetch with a fresh Fetcher (timeout 2 s, 1 MB cap unless overridden)."""
    options: dict[str, Any] = {"timeout": 2.0, "max_size": 1_000_000}
    options |= {k: kwargs.pop(k) for k in ("timeout", "max_size", "max_redirects") if k in kwargs}

    async def go() -> Fetched:
        async with Fetcher(user_agent=UA, **options) as fetcher:
            return await fetcher.fetch(url, **kwargs)

    return run(go())


def fetch_error(url: str, **kwargs: Any) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch(url, **kwargs)
    return info.value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- what a successful fetch returns and sends --------------------------------


def test_fetch_returns_body_validators_and_lower_case_headers(server: FeedServer) -> None:
    """A 200 gives the body, the validators and the response headers with lower-case names."""
    server.add("/f.xml", RSS, etag='"v1"', last_modified=LAST_MODIFIED, headers={"X-Thing": "1"})
    fetched = fetch(server.url("/f.xml"))
    assert fetched.status == 200
    assert fetched.body == RSS
    assert not fetched.not_modified
    assert fetched.url == server.url("/f.xml")
    assert (fetched.etag, fetched.last_modified) == ('"v1"', LAST_MODIFIED)
    assert fetched.headers["x-thing"] == "1"
    assert fetched.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert fetched.permanent_redirect is None
    assert fetched.elapsed > 0


def test_requests_name_the_project_and_ask_for_feeds_compressed(server: FeedServer) -> None:
    """The caller's User-Agent goes out, Accept prefers feeds, only gzip/deflate are offered."""
    server.add("/f.xml", RSS)
    fetch(server.url("/f.xml"))
    headers = server.requests[-1].headers
    assert headers["user-agent"] == UA
    assert headers["accept"].startswith("application/rss+xml, application/atom+xml")
    assert headers["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in headers and "if-modified-since" not in headers


def test_conditional_get_sends_validators_and_maps_304(server: FeedServer) -> None:
    """Stored validators go out byte for byte, and a 304 becomes not_modified with no body."""
    server.add("/f.xml", RSS, etag='W/"abc"', last_modified=LAST_MODIFIED)
    fetched = fetch(server.url("/f.xml"), etag='W/"abc"', last_modified=LAST_MODIFIED)
    sent = server.requests[-1].headers
    assert sent["if-none-match"] == 'W/"abc"'
    assert sent["if-modified-since"] == LAST_MODIFIED
    assert fetched.not_modified and fetched.status == 304 and fetched.body == b""
    assert fetched.etag == 'W/"abc"'


def test_304s_redirects_and_errors_keep_the_connection_alive(server: FeedServer) -> None:
    """Small unwanted bodies are drained, so a steady state of 304s reuses one connection."""
    server.add("/f.xml", RSS, etag='"v1"')
    server.add("/moved", b"moved", status=301, headers={"Location": "/f.xml"})

    async def go() -> None:
        async with Fetcher(user_agent=UA, timeout=2.0, max_size=10_000) as fetcher:
            await fetcher.fetch(server.url("/f.xml"))
            await fetcher.fetch(server.url("/f.xml"), etag='"v1"')
            await fetcher.fetch(server.url("/moved"), etag='"v1"')
            with pytest.raises(HTTPStatusError):
                await fetcher.fetch(server.url("/missing"))
            await fetcher.fetch(server.url("/f.xml"), etag='"v1"')

    run(go())
    assert len(server.requests) == 6
    assert len({r.client_port for r in server.requests}) == 1


def test_304_without_validators_keeps_the_ones_sent(server: FeedServer) -> None:
    """A 304 that omits ETag and Last-Modified leaves the sent validators in force."""
    server.add_handler("/f.xml", status(304))
    fetched = fetch(server.url("/f.xml"), etag='"x"', last_modified=LAST_MODIFIED)
    assert fetched.not_modified
    assert (fetched.etag, fetched.last_modified) == ('"x"', LAST_MODIFIED)


def test_validators_that_are_not_legal_header_values_are_not_sent(server: FeedServer) -> None:
    """A stored validator with a line break or non-ASCII text is dropped, not sent broken."""
    server.add("/f.xml", RSS)
    fetched = fetch(
        server.url("/f.xml"), etag='"a"\r\nX-Evil: 1', last_modified="Montag, 1. Jänner"
    )
    assert fetched.status == 200
    sent = server.requests[-1].headers
    assert "if-none-match" not in sent and "if-modified-since" not in sent and "x-evil" not in sent


def _encoded(body: bytes, encode: Callable[[bytes], bytes], coding: str) -> Callable[..., None]:
    def handle(h: BaseHTTPRequestHandler) -> None:
        data = encode(body)
        h.send_response(200)
        h.send_header("Content-Encoding", coding)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return handle


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as RFC 9110 means it
        ("deflate", lambda b: zlib.compress(b, wbits=-15)),  # raw, as some servers send it
        ("gzip", lambda b: gzip.compress(b[:50]) + gzip.compress(b[50:])),  # two members
    ],
)
def test_compressed_bodies_are_decoded(
    server: FeedServer, coding: str, encode: Callable[[bytes], bytes]
) -> None:
    """gzip and deflate bodies (wrapped, raw, multi-member) arrive decoded."""
    body = RSS * 100
    server.add_handler("/f.xml", _encoded(body, encode, coding))
    fetched = fetch(server.url("/f.xml"))
    assert fetched.body == body
    assert "content-encoding" not in fetched.headers


def test_unknown_content_encoding_is_an_error(server: FeedServer) -> None:
    """A body in an encoding we did not offer is reported, not passed on as garbage."""
    server.add_handler("/f.xml", _encoded(RSS, lambda b: b, "br"))
    assert str(fetch_error(server.url("/f.xml"))) == "unsupported content encoding 'br'"


# -- redirects ----------------------------------------------------------------


def test_permanent_redirect_chain_reports_the_new_location(server: FeedServer) -> None:
    """301 then 308 (relative Location) ends at the feed and reports it as moved."""
    server.add_handler("/old", redirect(server.url("/older"), 301))
    server.add_handler("/older", redirect("/new.xml", 308))
    server.add("/new.xml", RSS, etag='"n"')
    fetched = fetch(server.url("/old"), etag='"n"')
    assert fetched.url == server.url("/new.xml")
    assert fetched.permanent_redirect == server.url("/new.xml")
    assert fetched.not_modified  # validators travel along the chain
    assert [r.path for r in server.requests] == ["/old", "/older", "/new.xml"]


def test_a_temporary_hop_means_the_feed_has_not_moved(server: FeedServer) -> None:
    """One 302 anywhere in the chain leaves permanent_redirect unset."""
    server.add_handler("/old", redirect("/tmp", 301))
    server.add_handler("/tmp", redirect("/new.xml", 302))
    server.add("/new.xml", RSS)
    fetched = fetch(server.url("/old"))
    assert fetched.url == server.url("/new.xml")
    assert fetched.permanent_redirect is None


def test_redirect_loop_is_reported_with_its_hops(server: FeedServer) -> None:
    """A -> B -> A fails at once with the loop spelled out."""
    server.add_handler("/a", redirect("/b"))
    server.add_handler("/b", redirect("/a"))
    error = fetch_error(server.url("/a"))
    assert str(error) == (
        f"redirect loop: {server.url('/a')} -> {server.url('/b')} -> {server.url('/a')}"
    )


def test_overlong_redirect_chain_is_cut(server: FeedServer) -> None:
    """More hops than max_redirects fail with a message naming the limit."""
    for i in range(6):
        server.add_handler(f"/r{i}", redirect(f"/r{i + 1}"))
    error = fetch_error(server.url("/r0"), max_redirects=3)
    assert str(error).startswith("too many redirects: more than 3, from ")
    assert len(server.requests) == 4


def test_redirect_without_location_is_an_error(server: FeedServer) -> None:
    """A 302 with no Location header says so."""
    server.add_handler("/a", status(302))
    assert str(fetch_error(server.url("/a"))) == "HTTP 302 redirect without a Location header"


def test_redirect_to_another_scheme_is_refused(server: FeedServer) -> None:
    """A redirect to file: or ftp: is not followed."""
    server.add_handler("/a", redirect("file:///etc/passwd"))
    assert "unsupported URL scheme 'file'" in str(fetch_error(server.url("/a")))


# -- HTTP errors --------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (404, "HTTP 404 Not Found"),
        (410, "HTTP 410 Gone"),
        (500, "HTTP 500 Internal Server Error"),
        (503, "HTTP 503 Service Unavailable"),
        (599, "HTTP 599"),
    ],
)
def test_http_error_statuses_carry_status_and_reason(
    server: FeedServer, code: int, message: str
) -> None:
    """4xx/5xx raise HTTPStatusError with the status and its standard reason phrase."""
    server.add_handler("/f", status(code, body=b"<html>oops</html>"))
    error = fetch_error(server.url("/f"))
    assert isinstance(error, HTTPStatusError)
    assert (error.status, str(error), error.retry_after) == (code, message, None)


def test_retry_after_in_seconds_is_honoured(server: FeedServer) -> None:
    """503 with Retry-After: 120 asks for two minutes."""
    server.add_handler("/f", status(503, {"Retry-After": "120"}))
    error = fetch_error(server.url("/f"))
    assert isinstance(error, HTTPStatusError) and error.retry_after == 120.0


def test_retry_after_as_http_date_is_honoured(server: FeedServer) -> None:
    """429 with an HTTP-date Retry-After gives the seconds until that date."""
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    server.add_handler("/f", status(429, {"Retry-After": when}))
    error = fetch_error(server.url("/f"))
    assert isinstance(error, HTTPStatusError) and error.status == 429
    assert error.retry_after is not None and 85 <= error.retry_after <= 91


@pytest.mark.parametrize(
    ("value", "date", "expected"),
    [
        ("120", None, 120.0),
        (" 0 ", None, 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:27:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None, 0.0),  # in the past: retry now
        ("soon", None, None),
        ("-5", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_parse_retry_after(value: str | None, date: str | None, expected: float | None) -> None:
    """Retry-After is delay-seconds or an HTTP-date measured from the response's Date."""
    assert parse_retry_after(value, date) == expected


# -- size caps and bombs ------------------------------------------------------


def test_announced_oversize_body_fails_before_reading(server: FeedServer) -> None:
    """A Content-Length above max_size fails with the limit in the message."""
    server.add("/f", b"x" * 5000)
    error = fetch_error(server.url("/f"), max_size=1000)
    assert isinstance(error, TooLargeError)
    assert str(error) == "response larger than 1.0 kB"


def test_chunked_oversize_body_is_cut_while_streaming(server: FeedServer) -> None:
    """Without Content-Length the cap applies to the bytes as they arrive."""
    server.add_handler("/f", chunked(50 * 1024 * 1024))
    started = time.monotonic()
    error = fetch_error(server.url("/f"), max_size=1024 * 1024)
    assert str(error) == "response larger than 1.0 MB"
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_compression_bomb_is_cut_at_max_size_with_bounded_memory(
    server: FeedServer, coding: str
) -> None:
    """A gigabyte of zeros in 1 MB of gzip/deflate is cut at 1 MB decoded, never inflated whole."""
    server.add_handler("/bomb", bomb(coding, 1 << 30))
    tracemalloc.start()
    try:
        error = fetch_error(server.url("/bomb"), max_size=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(error, TooLargeError)
    assert str(error) == "response larger than 1.0 MB"
    assert peak < 8 << 20  # the cap plus buffers, not the bomb


# -- deadlines and network failures -------------------------------------------


def test_trickling_server_hits_the_total_deadline(server: FeedServer) -> None:
    """A server sending a byte every 10 ms is cut at the deadline, not at the read timeout."""
    server.add_handler("/slow", trickle(0.01))
    started = time.monotonic()
    error = fetch_error(server.url("/slow"), timeout=0.3)
    assert isinstance(error, DeadlineError)
    assert str(error) == "the fetch took longer than 0.3 s"
    assert time.monotonic() - started < 3  # the trickle would go on for 30 s


def test_silent_server_hits_the_read_timeout(server: FeedServer) -> None:
    """A server that accepts and never answers is a read timeout within the deadline."""
    server.add_handler("/silent", stall(10))
    error = fetch_error(server.url("/silent"), timeout=0.2)
    assert isinstance(error, DeadlineError)
    assert str(error) == f"read timeout: 127.0.0.1:{server.port} sent nothing for 0.2 s"


def test_unanswered_connection_is_a_connect_timeout() -> None:
    """A listening socket whose backlog is full never completes the handshake: connect timeout."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(8)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            time.sleep(0.05)
            error = fetch_error(f"http://127.0.0.1:{port}/feed", timeout=0.3)
        finally:
            for filler in fillers:
                filler.close()
    assert isinstance(error, DeadlineError)
    assert str(error) == f"connect timeout: no connection to 127.0.0.1:{port} within 0.3 s"


def test_dns_failure_names_the_host() -> None:
    """An unresolvable host (RFC 6761 .invalid) says which host."""
    assert str(fetch_error("http://example.invalid/feed")) == "cannot resolve host example.invalid"


def test_connection_refused_names_host_and_port() -> None:
    """A closed port is a refused connection."""
    port = free_port()
    message = str(fetch_error(f"http://127.0.0.1:{port}/feed"))
    assert message == f"connection refused by 127.0.0.1:{port}"


def test_every_address_of_a_host_refusing_is_a_refused_connection() -> None:
    """asyncio joins the refusals of a host's addresses (IPv6 and IPv4) into one OSError."""
    joined = OSError(
        "Multiple exceptions: [Errno 111] Connect call failed ('::1', 9, 0, 0),"
        " [Errno 111] Connect call failed ('127.0.0.1', 9)"
    )
    error = httpx.ConnectError(str(joined))
    error.__cause__ = joined
    assert str(translate(error, "http://localhost:9/f", 5.0)) == "connection refused by localhost:9"
    mixed = OSError("Multiple exceptions: [Errno 111] Connect call failed, [Errno 101] unreachable")
    error.__cause__ = mixed
    assert str(translate(error, "http://localhost:9/f", 5.0)).startswith(
        "cannot connect to localhost:9: Multiple exceptions"
    )


def test_tls_failure_is_named(server: FeedServer) -> None:
    """Speaking TLS to a plain-HTTP port is reported as a TLS error."""
    server.add("/f", RSS)
    message = str(fetch_error(f"https://127.0.0.1:{server.port}/f"))
    assert message.startswith(f"TLS error with 127.0.0.1:{server.port}: ")


def test_server_hanging_up_is_a_protocol_error(server: FeedServer) -> None:
    """A connection closed without a response is reported as such."""
    server.add_handler("/f", lambda h: None)
    message = str(fetch_error(server.url("/f")))
    assert message.startswith(f"protocol error from 127.0.0.1:{server.port}: ")


def test_messages_never_carry_credentials_or_queries(server: FeedServer) -> None:
    """Userinfo and query strings (where tokens live) stay out of error messages."""
    server.add_handler("/a", redirect("/b?token=hunter2"))
    server.add_handler("/b", redirect("/a"))
    url = f"http://alice:hunter2@127.0.0.1:{server.port}/a?key=hunter2"
    for error in (fetch_error(url), fetch_error("http://alice:hunter2@example.invalid/?k=hunter2")):
        assert "hunter2" not in str(error) and "alice" not in str(error)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/feed",
        "file:///etc/passwd",
        "example.org/feed",
        "http://[::1",
        "http://example.org:99999/feed",
        "http://xn--a.invalid/",
    ],
)
def test_unusable_urls_are_errors(url: str) -> None:
    """Non-HTTP schemes and malformed URLs fail with a FetchError, not a traceback."""
    error = fetch_error(url)
    assert "unsupported URL scheme" in str(error) or "invalid URL" in str(error)


# -- concurrency, cancellation and the connection pool -------------------------


def test_per_host_limit_and_waiting_does_not_count_against_the_deadline(
    server: FeedServer,
) -> None:
    """At most per_host requests reach a host at once; queued fetches keep their full budget."""
    slow = Concurrency(RSS, hold=0.1)
    server.add_handler("/f", slow)

    async def go() -> list[Fetched]:
        async with Fetcher(user_agent=UA, timeout=0.5, max_size=10_000, per_host=2) as fetcher:
            return await asyncio.gather(*(fetcher.fetch(server.url("/f")) for _ in range(10)))

    results = run(go())  # 10 x 0.1 s over 2 slots: 0.5 s, longer than some waits would allow
    assert [r.body for r in results] == [RSS] * 10
    assert slow.most == 2


def test_thousands_of_timed_out_fetches_leave_the_client_usable(server: FeedServer) -> None:
    """2,000 fetches that time out (trickled past the deadline, or never answered) leak nothing."""
    server.add_handler("/trickle", trickle(0.02, limit=0.5))
    server.add("/ok", RSS)
    # A listener that never accepts: the kernel completes handshakes, nobody ever answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4096)
        silent_url = f"http://127.0.0.1:{silent.getsockname()[1]}/feed"

        async def go() -> tuple[list[BaseException | Fetched], Fetched]:
            async with Fetcher(
                user_agent=UA, timeout=0.05, max_size=10_000, per_host=2000, max_connections=100
            ) as fetcher:
                urls = [server.url("/trickle") if i % 2 else silent_url for i in range(2000)]
                outcomes = await asyncio.gather(
                    *(fetcher.fetch(u) for u in urls), return_exceptions=True
                )
                return outcomes, await fetcher.fetch(server.url("/ok"), timeout=5.0)

        outcomes, after = run(go())
    # Mostly DeadlineErrors; on a loaded machine a few other FetchErrors, never anything else.
    assert all(isinstance(o, FetchError) for o in outcomes), {type(o) for o in outcomes}
    assert sum(isinstance(o, DeadlineError) for o in outcomes) > 1900
    assert after.body == RSS


def test_cancelled_callers_do_not_leak_pool_slots(server: FeedServer) -> None:
    """Callers cancelled while requests queue (httpcore issue 1093) leave the client usable."""

    def slow_ok(h: BaseHTTPRequestHandler) -> None:
        time.sleep(0.05)
        status(200, body=RSS)(h)

    server.add_handler("/slow", slow_ok)
    server.add("/ok", RSS)

    async def go() -> Fetched:
        async with Fetcher(
            user_agent=UA, timeout=2.0, max_size=10_000, per_host=10, max_connections=2
        ) as fetcher:
            # Cancel at every early step: queued, assigned a connection, connecting, sent.
            for steps in range(8):
                tasks = [asyncio.create_task(fetcher.fetch(server.url("/slow"))) for _ in range(6)]
                for _ in range(steps):
                    await asyncio.sleep(0)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return await fetcher.fetch(server.url("/ok"), timeout=3.0)

    assert run(go()).body == RSS


def test_closed_fetcher_refuses_new_fetches(server: FeedServer) -> None:
    """After aclose, fetch raises FetchError instead of using a closed client."""
    server.add("/f", RSS)

    async def go() -> None:
        fetcher = Fetcher(user_agent=UA, timeout=1.0, max_size=10_000)
        await fetcher.aclose()
        await fetcher.fetch(server.url("/f"))

    with pytest.raises(FetchError, match="closed"):
        run(go())


def test_a_custom_transport_is_used() -> None:
    """The transport seam replaces the network, e.g. for a proxy or in other tests."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=RSS, headers={"ETag": '"t"'})

    async def go() -> Fetched:
        async with Fetcher(
            user_agent=UA, timeout=1.0, max_size=10_000, transport=httpx.MockTransport(answer)
        ) as fetcher:
            return await fetcher.fetch("https://feeds.example.org/rss")

    fetched = run(go())
    assert (fetched.body, fetched.etag) == (RSS, '"t"')
