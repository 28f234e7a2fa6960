"""Helpers for the many-workers tests (issue 7): worker processes, live feeds, a config.

WorkerRun
    ``news-monitor run --config PATH [ARGS]`` as a subprocess in its own process
    group (a :class:`daemon_proc.DaemonProcess` with extra arguments).

LiveFeed
    An RSS feed the test publishes stories to while workers poll it; it records
    when each fetch arrived (monotonic seconds), so a test can tell one fetch
    per interval from one per worker.

process_groups_of_clients(ports)
    Which process groups hold the client ends of these local TCP connections: with
    ``LiveFeed.held_ports`` it tells which worker has a poll in flight.

titles(receiver)
    The titles of the messages a receiver got, in arrival order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from daemon_proc import REPO, DaemonProcess, Item, rss
from receivers import HTTPReceiver


class WorkerRun(DaemonProcess):
    """One ``news-monitor run`` worker process, with extra command-line arguments."""

    def __init__(self, config: Path, log: Path, *args: str) -> None:
        super().__init__(config, log)
        self.args = args

    def start(self) -> None:
        """Start it; its standard error is appended to ``log``."""
        assert self.process is None, "already running"
        self._log_start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(self.config), *self.args],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                cwd=REPO,
                start_new_session=True,
            )


@dataclass
class LiveFeed:
    """A feed whose items grow during the test, answering each fetch after ``delay`` seconds."""

    name: str
    delay: float = 0.0
    items: list[Item] = field(default_factory=list)
    fetched_at: list[float] = field(default_factory=list)  # time.monotonic() of each fetch
    held: dict[int, float] = field(default_factory=dict)  # client port -> when its wait began
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, title: str, link: str) -> None:
        """Add a story (newest first in the document)."""
        with self.lock:
            self.items.insert(0, Item(link, title, link, datetime.now(UTC)))

    def __call__(self, request: BaseHTTPRequestHandler) -> None:
        port = request.client_address[1]
        with self.lock:
            self.fetched_at.append(time.monotonic())
            self.held[port] = time.monotonic()
            body = rss(self.name, list(self.items))
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            del self.held[port]
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def fetches(self) -> list[float]:
        """When each fetch arrived, in order."""
        with self.lock:
            return list(self.fetched_at)

    def held_ports(self, since: float) -> set[int]:
        """Client ports of the fetches whose answer is held, which arrived after ``since``."""
        with self.lock:
            return {port for port, began in self.held.items() if began > since}


def tcp_sockets(*, local_ports: set[int] = frozenset(), remote_port: int = 0) -> set[str]:
    """The ``socket:[inode]`` names of established TCP connections with one of these local
    ports, or to this remote port (Linux: read from ``/proc/net/tcp*``)."""
    found = set()
    for table in ("tcp", "tcp6"):
        for row in Path("/proc/net", table).read_text().splitlines()[1:]:
            fields = row.split()
            local = int(fields[1].rsplit(":", 1)[1], 16)
            remote = int(fields[2].rsplit(":", 1)[1], 16)
            if fields[3] == "01" and (local in local_ports or remote == remote_port):
                found.add(f"socket:[{fields[9]}]")
    return found


def held_by(pid: int, sockets: set[str]) -> int:
    """How many of ``sockets`` process ``pid`` holds among its file descriptors."""
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            held += str(fd.readlink()) in sockets
        except OSError:
            continue  # closed meanwhile
    return held


def process_groups_of_clients(ports: set[int]) -> set[int]:
    """The process groups of the local processes whose TCP connections have these local
    ports (the client ends of connections a test server holds)."""
    sockets = tcp_sockets(local_ports=ports)
    groups = set()
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            if held_by(int(process.name), sockets):
                groups.add(os.getpgid(int(process.name)))
        except OSError:
            continue  # gone, or not ours to read
    return groups


def titles(receiver: HTTPReceiver) -> list[str]:
    """The title of every complete JSON message ``receiver`` got, in arrival order."""
    out = []
    for request in receiver.requests:
        try:
            out.append(json.loads(request.body)["title"])
        except (ValueError, KeyError, TypeError):
            continue  # cut off by a kill: nothing was delivered
    return out
