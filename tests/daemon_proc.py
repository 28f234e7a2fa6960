"""Helpers for tests that run the real daemon as a subprocess (issue 4, "Done when").

DaemonProcess
    ``python -m monitor run --config PATH`` in its own process group, its log
    appended to a file. :meth:`~DaemonProcess.kill` sends SIGKILL to the whole
    group (the daemon and its parse pool), as a crash or ``kill -9`` of a
    service manager would; :meth:`~DaemonProcess.stop` sends SIGTERM to the
    daemon and waits for a clean exit.

run_cli(config, *args)
    One short command (``run --once``, ``status --json``) as a subprocess.

rss(title, items) / Item
    A small RSS 2.0 document with the given items, dates in RFC 822 form.

wait_until(predicate, timeout, what)
    Poll ``predicate`` every 20 ms; fail naming ``what`` when time runs out.

group_members(pgid)
    The live processes of a process group: a daemon and its workers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True, slots=True)
class Item:
    """One RSS item."""

    guid: str
    title: str
    link: str | None = None
    published: datetime | None = None
    summary: str = ""


def rss(title: str, items: list[Item]) -> bytes:
    """An RSS 2.0 document titled ``title`` carrying ``items`` in the order given."""
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>',
        f"<title>{escape(title)}</title><link>https://news.example/</link>",
        "<description>test feed</description>",
    ]
    for item in items:
        parts.append("<item>")
        parts.append(f'<guid isPermaLink="false">{escape(item.guid)}</guid>')
        parts.append(f"<title>{escape(item.title)}</title>")
        if item.link:
            parts.append(f"<link>{escape(item.link)}</link>")
        if item.published:
            parts.append(f"<pubDate>{format_datetime(item.published, usegmt=True)}</pubDate>")
        parts.append(f"<description>{escape(item.summary or item.title)}</description>")
        parts.append("</item>")
    parts.append("</channel></rss>\n")
    return "".join(parts).encode()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Return once ``predicate()`` holds; raise AssertionError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def run_cli(config: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``python -m monitor ARGS --config CONFIG`` to completion."""
    command, *rest = args
    return subprocess.run(
        [sys.executable, "-m", "monitor", command, "--config", str(config), *rest],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO,
    )


def status_json(config: Path) -> dict[str, Any]:
    """``news-monitor status --json``, parsed."""
    done = run_cli(config, "status", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert isinstance(doc, dict)
    return doc


def group_members(pgid: int) -> list[int]:
    """The live processes of a process group (a daemon, its fork server, its parse workers)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(b")", 1)[1].split()[2]) == pgid:
                members.append(int(entry.name))
    return members


class DaemonProcess:
    """The real daemon, ``news-monitor run``, started and stopped by a test."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    def start(self) -> None:
        """Start the daemon; its standard error is appended to ``log``."""
        assert self.process is None, "already running"
        self._log_start = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=sink,
                cwd=REPO,
                # Its own process group, so a kill reaches the parse pool too.
                start_new_session=True,
            )

    def run_log(self) -> str:
        """What this run (since the last start) has logged so far."""
        with self.log.open("rb") as source:
            source.seek(self._log_start)
            return source.read().decode("utf-8", "replace")

    def wait_started(self, timeout: float = 20.0) -> None:
        """Wait until this run logs ``daemon.started`` (configuration loaded, store open)."""
        wait_until(
            lambda: "daemon.started" in self.run_log() or self._exited(),
            timeout,
            "daemon.started",
        )
        assert not self._exited(), f"daemon exited early:\n{self.run_log()}"

    def _exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def kill(self) -> None:
        """SIGKILL the daemon's whole process group, as a crash would, and reap it."""
        assert self.process is not None
        pid = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM the daemon, wait for it to exit, and return its exit code."""
        assert self.process is not None
        process = self.process
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=timeout)
        finally:
            # Whatever is left of its group (parse workers) goes too.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            if process.poll() is None:
                process.wait(timeout=10)
            self.process = None
        return code

    def close(self) -> None:
        """Kill the daemon if a test left it running (after a failure)."""
        if self.process is not None:
            self.kill()
