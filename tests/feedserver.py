"""A small threaded HTTP server for tests: serves feeds, records every request.

Real bytes over a real socket on ``127.0.0.1:0`` (a free port, so tests run in
parallel under xdist). Typical use::

    with FeedServer() as server:
        server.add("/feed.xml", body, etag='"v1"')
        fetched = await fetcher.fetch(server.url("/feed.xml"))
        assert server.requests[-1].headers["user-agent"].startswith("news-monitor/")

``FeedServer(tls=context)`` serves HTTPS with that server-side context.

Static routes answer GET and HEAD, honour conditional requests (RFC 9110
§13.1: ``If-None-Match`` first, else ``If-Modified-Since``) with 304, and
answer POST and PUT with the same body, so a route doubles as a receiver for
webhook-style notification targets (``server.requests[i].body``). Anything
else (redirects, trickling, stalling, bombs) is a handler: a callable taking
the :class:`http.server.BaseHTTPRequestHandler`; the factories at the bottom
of this module build the usual hostile ones.
"""

from __future__ import annotations

import gzip
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

Handler = Callable[[BaseHTTPRequestHandler], None]


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the server received it; header names are lower-case."""

    method: str
    path: str  # with the query string, as sent
    headers: Mapping[str, str]
    body: bytes = b""
    client_port: int = 0  # the client's side of the connection: equal ports, one connection


@dataclass(frozen=True, slots=True)
class Route:
    """A static answer for one path."""

    body: bytes
    content_type: str
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    gzip: bool = False  # compress when the client accepts gzip


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a stalled handler must not hold up close()
    request_queue_size = 1024  # thousands of connections arrive at once in load tests

    def __init__(self, owner: FeedServer, tls: ssl.SSLContext | None) -> None:
        self.owner = owner
        # Set on close: long-running handlers (stall, trickle) wait on it to end early.
        self.stopping = threading.Event()
        super().__init__(("127.0.0.1", 0), _RequestHandler)
        if tls is not None:
            # The handshake runs in the handler's thread, on its first read.
            self.socket = tls.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up mid-answer are what fetch tests are about; stay quiet.
        pass


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real feed servers do
    server: _Server

    _closing = False

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test's own assertions say what happened

    def end_headers(self) -> None:
        if self._closing:
            self.send_header("Connection", "close")
        super().end_headers()

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        body = b""
        length = self.headers.get("Content-Length")
        if length and length.isdigit():
            body = self.rfile.read(int(length))
        headers = {name.lower(): value for name, value in self.headers.items()}
        owner = self.server.owner
        owner._record(Request(self.command, self.path, headers, body, self.client_address[1]))
        route = owner._lookup(self.path.split("?", 1)[0])
        try:
            if route is None:
                self._answer(404, b"not found\n", "text/plain")
            elif isinstance(route, Route):
                self._serve(route, headers)
            else:
                # A handler may write anything: never reuse the connection after it, and say so.
                self._closing = True
                route(self)
                self.close_connection = True
        except OSError:
            self.close_connection = True  # the client went away

    def _serve(self, route: Route, headers: Mapping[str, str]) -> None:
        extra = dict(route.headers)
        if route.etag:
            extra["ETag"] = route.etag
        if route.last_modified:
            extra["Last-Modified"] = route.last_modified
        if (
            self.command in ("GET", "HEAD")
            and route.status == 200
            and _not_modified(route, headers)
        ):
            self.send_response(304)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = route.body
        if route.gzip and "gzip" in headers.get("accept-encoding", ""):
            body = gzip.compress(body)
            extra["Content-Encoding"] = "gzip"
        self._answer(route.status, body, route.content_type, extra)

    def _answer(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _not_modified(route: Route, headers: Mapping[str, str]) -> bool:
    if "if-none-match" in headers:
        # RFC 9110 §13.1.2: weak comparison; when present, If-Modified-Since is ignored.
        wanted = {tag.strip().removeprefix("W/") for tag in headers["if-none-match"].split(",")}
        return route.etag is not None and ("*" in wanted or route.etag.removeprefix("W/") in wanted)
    if "if-modified-since" in headers and route.last_modified:
        if headers["if-modified-since"] == route.last_modified:
            return True
        try:
            since = parsedate_to_datetime(headers["if-modified-since"])
            modified = parsedate_to_datetime(route.last_modified)
        except (TypeError, ValueError):
            return False
        return modified <= since
    return False


class FeedServer:
    """A threaded HTTP server on 127.0.0.1 with routes added by the test.

    Use it as a context manager (or call :meth:`close`). ``requests`` holds
    every request received, in arrival order; it is safe to read from the
    test while handler threads append to it.
    """

    def __init__(self, *, tls: ssl.SSLContext | None = None) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, Route | Handler] = {}
        self._requests: list[Request] = []
        self._scheme = "https" if tls else "http"
        self._server = _Server(self, tls)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def __enter__(self) -> FeedServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving; wakes handlers that wait on ``server.stopping``."""
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (``https`` with ``tls``), without a trailing slash."""
        return f"{self._scheme}://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` (which starts with ``/``) on this server."""
        return self.base_url + path

    def add(
        self,
        path: str,
        body: bytes,
        *,
        content_type: str = "application/rss+xml; charset=utf-8",
        etag: str | None = None,
        last_modified: str | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        gzip: bool = False,
    ) -> None:
        """Serve ``body`` at ``path`` (replacing what was there) with these headers."""
        route = Route(body, content_type, status, etag, last_modified, dict(headers or {}), gzip)
        with self._lock:
            self._routes[path] = route

    def add_handler(self, path: str, handler: Handler) -> None:
        """Answer requests for ``path`` with ``handler(request_handler)``.

        The handler writes the whole response itself (``send_response``,
        ``send_header``, ``end_headers``, ``wfile.write``); the connection is
        closed afterwards. It may wait on ``request_handler.server.stopping``.
        """
        with self._lock:
            self._routes[path] = handler

    @property
    def requests(self) -> list[Request]:
        """A snapshot of every request received so far."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, path: str) -> list[Request]:
        """The requests whose path (without query) is ``path``."""
        return [r for r in self.requests if r.path.split("?", 1)[0] == path]

    def wait_for_requests(self, count: int, *, path: str | None = None, timeout: float = 5) -> None:
        """Block until ``count`` requests (for ``path``, if given) arrived, or fail."""
        deadline = time.monotonic() + timeout
        while True:
            got = len(self.requests_for(path) if path else self.requests)
            if got >= count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} requests, got {got} in {timeout} s")
            time.sleep(0.01)

    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _lookup(self, path: str) -> Route | Handler | None:
        with self._lock:
            return self._routes.get(path)


# -- handler factories for hostile and unusual servers ------------------------


def redirect(location: str, status: int = 301) -> Handler:
    """Answer with a redirect to ``location`` (relative or absolute)."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handle


def stall(seconds: float = 30) -> Handler:
    """Accept the request and send nothing for ``seconds`` (or until the server closes)."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.server.stopping.wait(seconds)  # type: ignore[attr-defined]

    return handle


def trickle(interval: float = 0.01, chunk: bytes = b"<", limit: float = 30) -> Handler:
    """Send 200 headers, then ``chunk`` every ``interval`` seconds for up to ``limit`` seconds."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        end = time.monotonic() + limit
        stopping: threading.Event = h.server.stopping  # type: ignore[attr-defined]
        while time.monotonic() < end and not stopping.wait(interval):
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            h.wfile.flush()

    return handle


def _chunks(total: int, size: int = 65536) -> Iterator[bytes]:
    block = b"\0" * size
    while total > 0:
        yield block[: min(size, total)]
        total -= size


def bomb(encoding: str = "gzip", size: int = 1 << 30) -> Handler:
    """Serve ``size`` zero bytes compressed with ``encoding`` (gzip or deflate), streamed.

    A gigabyte of zeros is about 1 MB compressed: a client that decodes
    without a cap exhausts its memory.
    """

    def handle(h: BaseHTTPRequestHandler) -> None:
        if encoding == "gzip":
            compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        else:
            compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS)
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.send_header("Content-Encoding", encoding)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for block in _chunks(size, 1 << 20):
            data = compressor.compress(block)
            if data:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        data = compressor.flush()
        h.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))

    return handle


def chunked(size: int, chunk: int = 65536) -> Handler:
    """Stream ``size`` bytes with chunked encoding, so no Content-Length announces them."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        for block in _chunks(size, chunk):
            h.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
        h.wfile.write(b"0\r\n\r\n")

    return handle


def status(code: int, headers: Mapping[str, str] | None = None, body: bytes = b"") -> Handler:
    """Answer with ``code``, the given headers and body, e.g. 429 with Retry-After."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(code)
        for name, value in (headers or {}).items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return handle


class Concurrency:
    """A handler that answers ``body`` after ``hold`` seconds, counting requests in flight.

    ``most`` is the largest number of requests it was answering at one moment.
    """

    def __init__(self, body: bytes, hold: float) -> None:
        self.body = body
        self.hold = hold
        self.now = 0
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(self.hold)
        with self._lock:
            self.now -= 1
        status(200, {"Content-Type": "application/rss+xml"}, self.body)(h)
