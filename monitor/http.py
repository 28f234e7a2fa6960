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
            status, content_type, body = self._route(method, path.split("?")[0])
        except (TimeoutError, ValueError, ConnectionError):
            writer.close()
            return
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(ConnectionError):
            writer.write(head.encode() + body)
            await writer.drain()
        writer.close()

    def _route(self, method: str, path: str) -> tuple[str, str, bytes]:
        if method != "GET":
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
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
