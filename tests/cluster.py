"""Helpers for the many-workers tests (issue 7): worker processes, live feeds, a config.

WorkerRun
    ``news-monitor run --config PATH [ARGS]`` as a subprocess in its own process
    group (a :class:`daemon_proc.DaemonProcess` with extra arguments).

LiveFeed
    An RSS feed the test publishes stories to while workers poll it; it records
    when each fetch arrived (monotonic seconds), so a test can tell one fetch
    per interval from one per worker.

titles(receiver)
    The titles of the messages a receiver got, in arrival order.
"""

from __future__ import annotations

import json
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
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, title: str, link: str) -> None:
        """Add a story (newest first in the document)."""
        with self.lock:
            self.items.insert(0, Item(link, title, link, datetime.now(UTC)))

    def __call__(self, request: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.fetched_at.append(time.monotonic())
            body = rss(self.name, list(self.items))
        if self.delay:
            time.sleep(self.delay)
        request.send_response(200)
        request.send_header("Content-Type", "application/rss+xml")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def fetches(self) -> list[float]:
        """When each fetch arrived, in order."""
        with self.lock:
            return list(self.fetched_at)


def titles(receiver: HTTPReceiver) -> list[str]:
    """The title of every complete JSON message ``receiver`` got, in arrival order."""
    out = []
    for request in receiver.requests:
        try:
            out.append(json.loads(request.body)["title"])
        except (ValueError, KeyError, TypeError):
            continue  # cut off by a kill: nothing was delivered
    return out
