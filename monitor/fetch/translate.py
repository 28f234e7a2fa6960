"""httpx failures and HTTP error statuses as FetchErrors with specific, secret-free messages.

Messages name the host (``host:port``), never userinfo or a query string,
where tokens live: ``cannot resolve host example.invalid``, ``connection
refused by 127.0.0.1:8080``, ``HTTP 503 Service Unavailable``.
"""

from __future__ import annotations

import errno
import functools
import re
import socket
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from urllib.parse import urlsplit, urlunsplit

import httpx

from monitor.errors import DeadlineError, FetchError, HTTPStatusError

_RETRY_AFTER = frozenset({429, 503})  # RFC 9110 §10.2.3


def status_error(status: int, headers: Mapping[str, str]) -> HTTPStatusError:
    """``HTTP 503 Service Unavailable``, with Retry-After read for 429 and 503."""
    try:
        message = f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        message = f"HTTP {status}"
    retry_after = None
    if status in _RETRY_AFTER:
        retry_after = parse_retry_after(headers.get("retry-after"), headers.get("date"))
    return HTTPStatusError(status, message, retry_after=retry_after)


def parse_retry_after(value: str | None, date: str | None = None) -> float | None:
    """Seconds to wait from a Retry-After value: delay-seconds or an HTTP-date (RFC 9110 §10.2.3).

    A date is measured from the response's ``Date`` header when there is
    one, so a server whose clock is off still gets the pause it meant.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    now = _http_date(date) if date else None
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _http_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def translate(exc: httpx.HTTPError, url: str, timeout: float) -> FetchError:
    """A specific, secret-free message for an httpx failure; ``timeout`` is the fetch's limit."""
    host = hostport(url)
    limit = format_seconds(timeout)
    # Every httpx timeout was the remaining budget, so any of them means the deadline passed.
    if isinstance(exc, httpx.ConnectTimeout):
        return DeadlineError(
            f"connect timeout: no connection to {host} within {limit}", network=True
        )
    if isinstance(exc, httpx.ReadTimeout):
        return DeadlineError(f"read timeout: {host} sent nothing for {limit}")
    if isinstance(exc, httpx.TimeoutException):
        return DeadlineError(f"timeout talking to {host} after {limit}")
    cause = _root_cause(exc)
    if isinstance(exc, httpx.ConnectError):
        if isinstance(cause, socket.gaierror):
            return FetchError(f"cannot resolve host {urlsplit(url).hostname}", network=True)
        if isinstance(cause, ssl.SSLCertVerificationError):
            return FetchError(f"TLS error with {host}: {cause.verify_message or cause.reason}")
        if isinstance(cause, ssl.SSLError):
            reason = (cause.reason or "").replace("_", " ").lower() or brief(cause)
            return FetchError(f"TLS error with {host}: {reason}")
        if _refused(cause):
            return FetchError(f"connection refused by {host}", network=True)
        return FetchError(f"cannot connect to {host}: {brief(cause)}", network=True)
    if isinstance(exc, httpx.RemoteProtocolError):
        return FetchError(f"protocol error from {host}: {brief(exc)}")
    if isinstance(exc, httpx.ReadError | httpx.WriteError):
        return FetchError(f"connection to {host} broken: {brief(cause)}")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return FetchError(f"unsupported URL {safe_url(url)}")
    return FetchError(f"{type(exc).__name__} from {host}: {brief(exc)}")


def _refused(cause: BaseException) -> bool:
    if isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower():
        return True
    # Every address of the host refused: asyncio (Python < 3.12) joins their errors
    # into one message, "Multiple exceptions: [Errno 111] Connect call failed ...".
    codes = re.findall(r"\[Errno (\d+)\]", str(cause))
    return bool(codes) and all(int(code) == errno.ECONNREFUSED for code in codes)


def _root_cause(exc: BaseException) -> BaseException:
    seen = {id(exc)}
    while True:
        nxt = exc.__cause__ or exc.__context__
        if nxt is None or id(nxt) in seen:
            return exc
        seen.add(id(nxt))
        exc = nxt


def brief(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


@functools.lru_cache(maxsize=8192)
def hostport(url: str) -> str:
    """``host[:port]`` of a URL, without userinfo: the per-host key, and what messages name."""
    # Cached: asked two or three times per poll of every feed, with the same URLs each cycle.
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    return f"{host}:{parts.port}" if parts.port else host


def safe_url(url: str) -> str:
    """A URL for messages: no userinfo, no query or fragment (either may carry a secret)."""
    try:
        parts = urlsplit(url)
        netloc = hostport(url)
    except ValueError:
        return "<invalid URL>"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def format_seconds(value: float) -> str:
    return f"{round(value, 2):g} s"


def format_size(n: int) -> str:
    """Bytes for a message: ``10.0 MB`` (binary units when ``n`` is a whole number of MiB)."""
    mega = 1 << 20 if n % (1 << 20) == 0 else 1_000_000
    kilo = 1 << 10 if n % (1 << 10) == 0 else 1000
    if n >= mega:
        return f"{n / mega:.1f} MB"
    if n >= kilo:
        return f"{n / kilo:.1f} kB"
    return f"{n} bytes"
