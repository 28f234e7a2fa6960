"""Logging: one event per outcome, with fields; text on a terminal, JSON lines on request.

Call sites log an event name and fields (after structlog's taste)::

    event(log, logging.INFO, "feed.polled", feed=url, status="ok", new=3)

Every formatted line passes through the configured secret mask last, so no
code path can print a secret (SPEC §3).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

_FIELDS = "monitor_fields"


def event(logger: logging.Logger, level: int, name: str, /, **fields: Any) -> None:
    """Log the event ``name`` with ``fields`` (values are rendered with ``str``)."""
    if logger.isEnabledFor(level):
        logger.log(level, name, extra={_FIELDS: fields}, stacklevel=2)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = getattr(record, _FIELDS, {})
    return fields


def _text_value(value: Any) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n'):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    """``2026-11-25 10:00:00 INFO  feed.polled feed=… status=ok`` — for people."""

    def __init__(self, mask: Callable[[str], str]) -> None:
        super().__init__()
        self._mask = mask

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
        parts = [when, f"{record.levelname:<7}", record.getMessage()]
        parts += [f"{k}={_text_value(v)}" for k, v in _fields(record).items() if v is not None]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return self._mask(line)


class JSONFormatter(logging.Formatter):
    """One JSON object per line — for log shippers."""

    def __init__(self, mask: Callable[[str], str]) -> None:
        super().__init__()
        self._mask = mask

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
        }
        for key, value in _fields(record).items():
            if value is not None:
                doc[key] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            doc["traceback"] = self.formatException(record.exc_info)
        return self._mask(json.dumps(doc, ensure_ascii=False))


def _no_mask(text: str) -> str:
    return text


class _Mask:
    """The secret mask every formatter applies last; a reload swaps what it hides."""

    def __init__(self, mask: Callable[[str], str]) -> None:
        self.mask = mask

    def __call__(self, text: str) -> str:
        return self.mask(text)


_current_mask = _Mask(_no_mask)


def setup_logging(
    fmt: str = "text", level: str = "info", mask: Callable[[str], str] = _no_mask
) -> None:
    """Send logs to standard error in ``fmt`` ("text" or "json"), masking secrets."""
    _current_mask.mask = mask
    handler = logging.StreamHandler(sys.stderr)
    formatter = JSONFormatter(_current_mask) if fmt == "json" else TextFormatter(_current_mask)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Python warnings become log events too, so JSON output stays one object per line.
    logging.captureWarnings(True)
    # Libraries speak only when something is wrong; their INFO lines would repeat ours.
    for noisy in ("httpx", "httpcore", "apscheduler", "apprise", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    scheduler = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(f, _SkippedRunFilter) for f in scheduler.filters):
        scheduler.addFilter(_SkippedRunFilter())


class _SkippedRunFilter(logging.Filter):
    """Drop APScheduler's warning that a job's next run was skipped while it still runs.

    The tick and delivery jobs run every second with ``max_instances=1`` on
    purpose: a delivery round to a slow target outlasts many seconds, and the
    skipped runs are the design, not a fault. The warning would repeat every
    second for as long as the round takes.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in record.getMessage()


def reconfigure_logging(level: str, mask: Callable[[str], str]) -> None:
    """Apply a reloaded configuration's ``log_level`` and secret mask to the running logs.

    ``mask`` should hide the old secrets as well as the new ones: work started
    under the old configuration may still log (see ``Daemon.reload``).
    """
    _current_mask.mask = mask
    logging.getLogger().setLevel(level.upper())
