"""``news-monitor check`` and ``news-monitor status``: read-only views."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import datetime
from typing import Any

from monitor.commands.common import load
from monitor.config import summarize
from monitor.match import compile_matcher
from monitor.model import StatusReport
from monitor.store import open_store


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the configuration (rules compiled too) and print its summary."""
    config = load(args)
    compile_matcher(config)
    print(summarize(config))
    print("configuration OK")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print the store's view of feeds, outbox and recent alerts."""
    config = load(args)
    store = open_store(config.state)
    try:
        report = store.status(recent=args.alerts)
    finally:
        store.close()
    print(json.dumps(_jsonable(asdict(report)), indent=2) if args.json else format_status(report))
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return value


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def format_status(report: StatusReport) -> str:
    """The human-readable ``status`` page."""
    lines = [f"Feeds ({len(report.feeds)}):"]
    for feed in report.feeds:
        lines.append(f"  {feed.title or feed.url}")
        lines.append(
            f"    {feed.status}  http={feed.http_status or '-'}  streak={feed.error_streak}  "
            f"seen={feed.entries_seen}  last={_when(feed.last_fetch)}  next={_when(feed.next_due)}"
        )
        if feed.title:
            lines.append(f"    {feed.url}")
        if feed.error:
            lines.append(f"    error: {feed.error}")
    lines.append(
        f"Outbox: {report.pending} pending, {report.failed} failed"
        + (
            f" (oldest pending since {_when(report.oldest_pending)})"
            if report.oldest_pending
            else ""
        )
    )
    for alert_id, target, error in report.failed_deliveries:
        lines.append(f"  failed: alert {alert_id} -> {target}: {error or 'unknown error'}")
    lines.append(f"Recent alerts ({len(report.recent_alerts)}):")
    for alert in report.recent_alerts:
        states = ", ".join(f"{t}={s}" for t, s in sorted(alert.deliveries.items()))
        lines.append(f"  {_when(alert.created_at)}  [{alert.rule}] {alert.title}  ({states})")
    return "\n".join(lines)
