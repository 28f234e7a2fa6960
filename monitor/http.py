"""The optional HTTP endpoint: ``/healthz`` and ``/metrics`` (SPEC §7).

A deliberately small HTTP/1.1 responder on asyncio streams: two GET routes,
no keep-alive, loopback by default. It runs on the daemon's event loop, so a
``/healthz`` that answers at all also proves the loop is not blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass

from monitor.errors import ConfigError
from monitor.logs import event

log = logging.getLogger("monitor")


@dataclass(frozen=True, slots=True)
class Health:
    """The daemon's answer to ``/healthz``."""

    ok: bool
    reason: str
    details: dict[str, object]


@dataclass(frozen=True, slots=True)
class Liveness:
    """What the daemon knows about its own progress, in ``time.monotonic()`` seconds."""

    now: float
    last_tick: float  # the scheduler's last tick
    round_started: float | None  # the delivery round in flight, if any
    last_progress: float  # the last delivery attempt that finished
    last_round_end: float  # the last delivery round that finished
    stopping: bool
    polls_in_flight: int = 0


def judge_health(state: Liveness, *, stall_after: float, tick_grace: float) -> Health:
    """Healthy while the scheduler ticks and the delivery worker makes progress (issue 6).

    A delivery round in flight makes progress while delivery attempts keep
    finishing; one that has finished none for ``stall_after`` seconds (a target
    holding its answer, a hung thread) is a stall. Between rounds, a worker
    that has not run for ``stall_after`` (and ``tick_grace``) is not running.
    """
    tick_age = state.now - state.last_tick
    round_age = state.now - state.last_round_end
    details: dict[str, object] = {
        "last_tick_seconds_ago": round(tick_age, 1),
        "last_delivery_round_seconds_ago": round(round_age, 1),
        "stall_after_seconds": stall_after,
        "polls_in_flight": state.polls_in_flight,
    }
    if state.stopping:
        return Health(False, "shutting down", details)
    if tick_age > tick_grace:
        return Health(False, f"scheduler has not ticked for {tick_age:.0f}s", details)
    if state.round_started is not None:
        quiet = state.now - max(state.round_started, state.last_progress)
        details["delivery_round_seconds"] = round(state.now - state.round_started, 1)
        if quiet > stall_after:
            reason = f"delivery stalled: no delivery attempt finished for {quiet:.0f}s"
            return Health(False, reason, details)
    elif round_age > max(stall_after, tick_grace):
        return Health(False, f"delivery worker has not run for {round_age:.0f}s", details)
    return Health(True, "polling and delivering", details)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT`` or ``PORT`` -> (host, port); the host defaults to loopback."""
    host, _, port = value.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--http expects HOST:PORT, e.g. 127.0.0.1:9108 (got {value!r})")
    return host, int(port)


class HTTPEndpoint:
    """Serves ``health()`` at /healthz and ``metrics()`` at /metrics."""

    def __init__(self, health: Callable[[], Health], metrics: Callable[[], bytes]) -> None:
        self._health = health
        self._metrics = metrics
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; return the bound address (port 0 picks a free one)."""
        try:
            self._server = await asyncio.start_server(self._serve, host, port)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        bound = self._server.sockets[0].getsockname()
        event(log, logging.INFO, "http.listening", address=f"{bound[0]}:{bound[1]}")
        return bound[0], bound[1]

    async def close(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                request = await reader.readline()
                while (await reader.readline()).strip():
                    pass  # headers are not needed
            method, path, *_ = request.decode("latin-1").split() or ["", ""]
            # HEAD answers like GET without the body, for checkers that only look at the status.
            get = "GET" if method == "HEAD" else method
            status, content_type, body = self._route(get, path.split("?")[0])
        except (TimeoutError, ValueError, ConnectionError):
            writer.close()
            return
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        writer.close()

    def _route(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method != "GET":
            return "405 Method Not Allowed", "text/plain", b"GET or HEAD only\n"
        if path == "/healthz":
            health = self._health()
            doc: dict[str, object] = {"status": "ok" if health.ok else "unhealthy"}
            doc["reason"] = health.reason
            doc.update(health.details)
            body = json.dumps(doc).encode()
            return ("200 OK" if health.ok else "503 Service Unavailable"), "application/json", body
        if path == "/metrics":
            return "200 OK", "text/plain; version=0.0.4; charset=utf-8", self._metrics()
        return "404 Not Found", "text/plain", b"try /healthz or /metrics\n"
