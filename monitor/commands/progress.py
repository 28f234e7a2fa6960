"""Progress on a terminal for long commands (SPEC §2): quiet when nobody is watching.

Drawn on standard error with a carriage return, so standard output stays the
command's result (``match --json`` piped to ``jq``) and the line is replaced,
not repeated. Callers build a bar only when :func:`monitor.commands.common.on_terminal`
says a person is there.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable
from typing import TextIO, TypeVar

T = TypeVar("T")

WIDTH = 24
SPINNER = "|/-\\"


class ProgressBar:
    """``polling [#########---------------] 3/8 feeds, 1 failed``, redrawn in place."""

    def __init__(
        self, label: str, total: int, *, unit: str = "", out: TextIO | None = None
    ) -> None:
        self.label = label
        self.total = max(total, 0)
        self.unit = unit
        self.count = 0
        self.out = out or sys.stderr
        self._width = 0
        self.draw()

    def advance(self, step: int = 1, note: str = "") -> None:
        """Count ``step`` more done, and redraw."""
        self.count += step
        self.draw(note)

    def draw(self, note: str = "") -> None:
        """Redraw the line."""
        done = min(self.count, self.total)
        filled = WIDTH * done // self.total if self.total else WIDTH
        bar = "#" * filled + "-" * (WIDTH - filled)
        text = f"{self.label} [{bar}] {done}/{self.total}"
        text += f" {self.unit}" if self.unit else ""
        text += f", {note}" if note else ""
        self._write(text)

    def _write(self, text: str) -> None:
        # Pad over a longer previous line, then return to the line's start.
        padding = " " * max(0, self._width - len(text))
        self._width = len(text)
        self.out.write(f"\r{text}{padding}")
        self.out.flush()

    def close(self) -> None:
        """End the line, leaving the last state visible."""
        self.out.write("\n")
        self.out.flush()


async def with_spinner(label: str, work: Awaitable[T], out: TextIO | None = None) -> T:
    """Await ``work`` while ``label |  1.2s`` spins on the terminal; clear it afterwards."""
    stream = out or sys.stderr
    task = asyncio.ensure_future(work)
    started = time.monotonic()
    frame = 0
    line = ""
    try:
        while not task.done():
            line = f"{label} {SPINNER[frame % len(SPINNER)]} {time.monotonic() - started:4.1f}s"
            stream.write(f"\r{line}")
            stream.flush()
            frame += 1
            await asyncio.wait({task}, timeout=0.1)
        return task.result()
    finally:
        task.cancel()
        stream.write("\r" + " " * len(line) + "\r")
        stream.flush()
