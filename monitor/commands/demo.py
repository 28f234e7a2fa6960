"""``news-monitor demo``: the whole pipeline offline, on bundled sample feeds.

The sample stories (``monitor/demo_data/stories.json``, after the AP report
of 18 October 2024) are rendered as RSS 2.0, Atom and JSON Feed with
publication times a few hours before now, so the ``max_age`` guard lets
them through, and served from a local port. The bundled configuration runs
the README's three example rules and prints alerts through the ``console``
target. No network, no secrets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.logs import setup_logging
from monitor.store import open_store

_TYPES = {
    "rss": "application/rss+xml",
    "atom": "application/atom+xml",
    "json": "application/feed+json",
}


def _rss(feed: dict[str, Any], now: datetime) -> str:
    items = "".join(
        f"<item><title>{escape(i['title'])}</title><link>{escape(i['link'])}</link>"
        f'<guid isPermaLink="false">{escape(i["id"])}</guid>'
        f"<pubDate>{format_datetime(now - timedelta(hours=i['hours_ago']))}</pubDate>"
        f"<description>{escape(i['summary'])}</description></item>"
        for i in feed["items"]
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{escape(feed['title'])}</title><link>{escape(feed['link'])}</link>"
        f"<description>news-monitor demo feed</description>{items}</channel></rss>"
    )


def _atom(feed: dict[str, Any], now: datetime) -> str:
    entries = "".join(
        f"<entry><id>{escape(i['id'])}</id><title>{escape(i['title'])}</title>"
        f'<link rel="alternate" href="{escape(i["link"])}"/>'
        f"<updated>{(now - timedelta(hours=i['hours_ago'])).isoformat()}</updated>"
        f"<summary>{escape(i['summary'])}</summary></entry>"
        for i in feed["items"]
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>{escape(feed['title'])}</title><id>{escape(feed['link'])}</id>"
        f"<updated>{now.isoformat()}</updated>{entries}</feed>"
    )


def _json_feed(feed: dict[str, Any], now: datetime) -> str:
    items = [
        {
            "id": i["id"],
            "url": i["link"],
            "title": i["title"],
            "content_text": i["summary"],
            "date_published": (now - timedelta(hours=i["hours_ago"])).isoformat(),
        }
        for i in feed["items"]
    ]
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": feed["title"],
        "home_page_url": feed["link"],
        "items": items,
    }
    return json.dumps(doc)


def demo_feeds(now: datetime) -> dict[str, tuple[str, bytes]]:
    """Path -> (content type, body) of every bundled demo feed, dated relative to ``now``."""
    stories = json.loads(resources.files("monitor").joinpath("demo_data/stories.json").read_text())
    render = {"rss": _rss, "atom": _atom, "json": _json_feed}
    return {
        f"/{name}": (_TYPES[feed["format"]], render[feed["format"]](feed, now).encode())
        for name, feed in stories.items()
    }


@contextmanager
def serve_demo_feeds(now: datetime) -> Iterator[str]:
    """Serve the demo feeds on 127.0.0.1 (a free port); yield the base URL."""
    feeds = demo_feeds(now)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = feeds.get(self.path)
            if found is None:
                self.send_error(404)
                return
            content_type, body = found
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the demo's output is its alerts

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the bundled rules over the bundled feeds and print the alerts."""
    config_file = resources.files("monitor").joinpath("demo_data/demo.yaml")
    with (
        tempfile.TemporaryDirectory(prefix="news-monitor-demo-") as tmp,
        serve_demo_feeds(datetime.now(UTC)) as base,
    ):
        path = Path(tmp) / "demo.yaml"
        path.write_text(config_file.read_text())
        config = load_config(
            path, env={"DEMO_BASE": base, "DEMO_STATE": str(Path(tmp) / "demo.db")}
        )
        setup_logging(args.log_format, "warning", config.secrets.mask)
        print(f"news-monitor demo: {len(config.feeds)} sample feeds served at {base}")
        print(f"rules: {', '.join(rule.name for rule in config.rules)}\n")
        store = open_store(config.state)
        try:
            daemon = Daemon(config, store)
            results = asyncio.run(_once(daemon))
            report = store.status(recent=50)
        finally:
            store.close()
    entries = sum(r.seen for r in results)
    print(
        f"\n{entries} entries read from {len(results)} feeds; "
        f"{len(report.recent_alerts)} alerts sent to the terminal."
    )
    return 0


async def _once(daemon: Daemon) -> list[Any]:
    try:
        return await daemon.run_once()
    finally:
        await daemon.runtime.aclose()
