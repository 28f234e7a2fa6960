"""Fetching feeds over HTTP: polite to servers, defensive against them (SPEC §5).

One :class:`Fetcher` sends ``httpx.Request`` objects through one transport
(:class:`~monitor.fetch.transport.H11Transport`, HTTP/1.1 with keep-alive;
httpx's client layer adds nothing the fetcher wants: it follows its own
redirects, and a cookie jar shared by every feed is not wanted) and turns
every failure into a :class:`~monitor.errors.FetchError` with a message
fit for ``status``: ``cannot resolve host example.invalid``, ``HTTP 503
Service Unavailable``, ``response larger than 10.0 MB``.

Two hazards shape the code:

* Deadlines are enforced without cancelling requests: every transport
  timeout is set from the remaining budget and the streaming loop checks the
  deadline itself, closing the response normally. (With httpcore, the
  transport this replaced, a cancelled request could leak a pool slot
  forever: httpcore issue 1093.) A caller that cancels
  :meth:`Fetcher.fetch` only stops waiting: the request runs on, shielded,
  to its own deadline, and our semaphore bounds the connections in use.
* Hostile bodies: the size cap applies to *decoded* bytes while streaming,
  and gzip/deflate are decoded here in bounded pieces, so a compression bomb
  is cut at ``max_size`` instead of being inflated in memory first.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from urllib.parse import urlsplit

import httpx

from monitor.errors import DeadlineError, FetchError, TooLargeError
from monitor.fetch.body import Overrun, drain, read_body
from monitor.fetch.translate import (
    brief,
    format_seconds,
    format_size,
    hostport,
    parse_retry_after,
    safe_url,
    status_error,
    translate,
)
from monitor.fetch.transport import H11Transport
from monitor.model import Fetched

__all__ = ["ACCEPT", "ACCEPT_ENCODING", "Fetcher", "parse_retry_after"]

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, "
    "application/json;q=0.8, */*;q=0.5"
)
# Only what we decode ourselves, in bounded pieces (brotli is not installed).
ACCEPT_ENCODING = "gzip, deflate"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_PERMANENT = frozenset({301, 308})


@dataclass(frozen=True, slots=True)
class _Answer:
    """One HTTP exchange, before redirects are followed."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Fetcher:
    """Fetches feed URLs concurrently, with per-host limits and a deadline per fetch.

    Use it as an async context manager or call :meth:`aclose`. ``timeout``
    and ``max_size`` are defaults that each :meth:`fetch` may override.
    """

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: float,
        max_size: int,
        per_host: int = 4,
        max_redirects: int = 10,
        max_connections: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._timeout = timeout
        self._max_size = max_size
        self._per_host = per_host
        self._max_redirects = max_redirects
        self._headers = {
            "User-Agent": user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": ACCEPT_ENCODING,
        }
        self._transport = transport or H11Transport(max_idle=max_connections)
        # Never more requests in flight, so never more connections open, than this.
        self._connections = asyncio.Semaphore(max_connections)
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._tasks: set[asyncio.Task[Fetched]] = set()
        self._closed = False

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Wait for fetches still running (each ends by its deadline), then close the transport."""
        self._closed = True
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._transport.aclose()

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        # A budget enforced without cancelling anything (module doc), not a cancel scope.
        timeout: float | None = None,  # noqa: ASYNC109
        max_size: int | None = None,
        known_hash: str | None = None,
    ) -> Fetched:
        """GET ``url``, following redirects, conditionally when validators are given.

        The result carries the body's SHA-256 as ``digest``; when that is
        ``known_hash`` (the body the caller already has) the body itself is
        left out.

        Returns a :class:`Fetched` (``not_modified`` on 304) or raises a
        :class:`FetchError`: :class:`HTTPStatusError` for 4xx/5xx (with
        ``retry_after`` from 429/503), :class:`TooLargeError` past
        ``max_size`` decoded bytes, :class:`DeadlineError` past ``timeout``
        seconds. Time spent waiting for a per-host slot does not count
        against the deadline. Cancelling the caller does not cancel the
        request, which finishes in the background by its deadline.
        """
        if self._closed:
            raise FetchError("the fetcher is closed")
        task = asyncio.get_running_loop().create_task(
            self._fetch(
                url,
                etag,
                last_modified,
                self._timeout if timeout is None else timeout,
                self._max_size if max_size is None else max_size,
                known_hash,
            )
        )
        self._tasks.add(task)
        task.add_done_callback(_forget(self._tasks))
        return await asyncio.shield(task)

    async def _fetch(
        self,
        url: str,
        etag: str | None,
        last_modified: str | None,
        seconds: float,
        max_size: int,
        known_hash: str | None,
    ) -> Fetched:
        started = time.monotonic()
        headers: dict[str, str] = {}
        # Validators come from servers: resend them only if they are legal header values.
        if etag and _header_safe(etag):
            headers["If-None-Match"] = etag
        if last_modified and _header_safe(last_modified):
            headers["If-Modified-Since"] = last_modified
        budget = [seconds]  # seconds left, spent only while a request is in flight
        chain = [_check_url(url)]
        permanent = True
        while True:
            answer = await self._exchange(chain[-1], headers, budget, seconds, max_size)
            if answer.status not in _REDIRECTS:
                break
            permanent = permanent and answer.status in _PERMANENT
            chain.append(_next_hop(chain, answer, self._max_redirects))
        final = chain[-1]
        status = answer.status
        if status >= 300 and status != 304:
            raise status_error(answer.status, answer.headers)
        digest = hashlib.sha256(answer.body).hexdigest()
        return Fetched(
            url=final,
            status=status,
            not_modified=status == 304,
            body=b"" if digest == known_hash and status != 304 else answer.body,
            headers=answer.headers,
            # A 304 may omit validators; the ones we sent still hold (RFC 9110 §15.4.5).
            etag=answer.headers.get("etag") or (etag if status == 304 else None),
            last_modified=answer.headers.get("last-modified")
            or (last_modified if status == 304 else None),
            permanent_redirect=final if permanent and len(chain) > 1 else None,
            elapsed=time.monotonic() - started,
            digest=digest,
        )

    async def _exchange(
        self,
        url: str,
        headers: dict[str, str],
        budget: list[float],
        seconds: float,
        max_size: int,
    ) -> _Answer:
        async with self._host_slot(hostport(url)), self._connections:
            started = time.monotonic()
            try:
                return await self._stream(url, headers, started + budget[0], seconds, max_size)
            finally:
                budget[0] -= time.monotonic() - started

    async def _stream(
        self,
        url: str,
        headers: dict[str, str],
        deadline: float,
        seconds: float,
        max_size: int,
    ) -> _Answer:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _overtime(seconds)
        body = b""
        request = httpx.Request(
            "GET",
            _parse_url(url),
            headers={**self._headers, **headers},
            extensions={"timeout": httpx.Timeout(remaining).as_dict()},
        )
        try:
            response = await self._transport.handle_async_request(request)
            try:
                answer_headers = dict(response.headers.items())
                if 200 <= response.status_code < 300:
                    declared = answer_headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_size:
                        raise TooLargeError(f"response larger than {format_size(max_size)}")
                    body = await read_body(response, deadline, max_size)
                    if answer_headers.pop("content-encoding", None):
                        # The body is decoded now; wire-level headers would mislead.
                        answer_headers.pop("content-length", None)
                else:
                    await drain(response, deadline)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise translate(exc, url, seconds) from exc
        except Overrun as exc:
            if exc.deadline:
                raise DeadlineError(
                    f"the fetch took longer than {format_seconds(seconds)}"
                ) from None
            raise TooLargeError(f"response larger than {format_size(max_size)}") from None
        return _Answer(response.status_code, answer_headers, body)

    def _host_slot(self, host: str) -> asyncio.Semaphore:
        slot = self._hosts.get(host)
        if slot is None:
            slot = self._hosts[host] = asyncio.Semaphore(self._per_host)
        return slot


def _overtime(seconds: float) -> DeadlineError:
    return DeadlineError(f"the fetch took longer than {format_seconds(seconds)}")


def _forget(tasks: set[asyncio.Task[Fetched]]) -> Callable[[asyncio.Task[Fetched]], None]:
    def done(task: asyncio.Task[Fetched]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: an abandoned fetch's error is not "never retrieved"

    return done


def _check_url(url: str) -> str:
    _parse_url(url)
    return url


@functools.lru_cache(maxsize=8192)
def _parse_url(url: str) -> httpx.URL:
    """``url`` parsed and checked, or FetchError. Cached: httpx's parser is a tenth of a
    poll's CPU, and a daemon fetches the same URLs every cycle (the URL is immutable)."""
    try:
        parsed = httpx.URL(url)
        scheme = parsed.scheme
        # Both raise ValueError on a bad port or IDNA label, which httpx would raise later.
        parsed.host  # noqa: B018
        urlsplit(url).port  # noqa: B018
    except (httpx.InvalidURL, ValueError) as exc:  # IDNA errors are ValueErrors too
        raise FetchError(f"invalid URL {safe_url(url)}: {brief(exc)}") from None
    if scheme not in ("http", "https"):
        raise FetchError(f"unsupported URL scheme {scheme!r} in {safe_url(url)}")
    return parsed


def _next_hop(chain: list[str], answer: _Answer, max_redirects: int) -> str:
    location = answer.headers.get("location", "").strip()
    if not location:
        raise FetchError(f"HTTP {answer.status} redirect without a Location header")
    try:
        target = str(httpx.URL(chain[-1]).join(location).copy_with(fragment=None))
    except httpx.InvalidURL as exc:
        raise FetchError(f"redirect to an invalid URL: {exc}") from None
    _check_url(target)
    if target in chain:
        hops = " -> ".join(safe_url(u) for u in [*chain[chain.index(target) :], target])
        raise FetchError(f"redirect loop: {hops}")
    if len(chain) > max_redirects:
        raise FetchError(
            f"too many redirects: more than {max_redirects}, from {safe_url(chain[0])}"
            f" to {safe_url(target)}"
        )
    return target


def _header_safe(value: str) -> bool:
    return value.isascii() and value.isprintable()
