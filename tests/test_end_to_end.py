"""End to end: the real ``news-monitor run --once`` subprocess, real feed bytes, receivers.

Feeds are captured NPR pages from ``../shared/realfeeds`` served by a local
HTTP server; alerts go over ``json://``, ``ntfy://`` and ``mailto://`` to
local receivers (aiosmtpd for mail).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from feedserver import FeedServer
from receivers import HTTPReceiver, SMTPReceiver

REALFEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "realfeeds"
pytestmark = pytest.mark.skipif(
    not REALFEEDS.is_dir(), reason=f"real feed captures not found at {REALFEEDS}"
)

NK_RULE = '("north korean" OR "north korea" OR DPRK) NEAR/6 (troops OR soldiers)'
BIDEN = "In a first, Biden allows Ukraine to strike Russia with U.S. long-range weapons"
SOUTH_KOREA = (
    "South Korea warns it may send Ukraine weapons after North Korea sent troops to Russia"
)


def run_once(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run the real command line once, as cron would."""
    return subprocess.run(
        [sys.executable, "-m", "monitor", "run", "--once", "--config", str(config), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_config(tmp_path: Path, feeds: FeedServer, hook: HTTPReceiver, smtp: SMTPReceiver) -> Path:
    config = tmp_path / "monitor.yaml"
    config.write_text(
        f"""
state: {tmp_path / "state.db"}
poll: {{interval: 10m, timeout: 10s}}
delivery:
  max_age: 100000d     # the captures are from 2024
feeds:
  - url: {feeds.url("/npr-news.xml")}
    name: NPR News
  - url: {feeds.url("/npr-later.xml")}
    name: NPR Later
    backfill: true
targets:
  hook: "{hook.json_url("/hook")}"
  push: "{hook.ntfy_url("desk")}"
  mail: "{smtp.mailto_url(to="desk@example.org")}"
rules:
  - name: north-korean-troops
    query: '{NK_RULE}'
    notify: [hook, push, mail]
"""
    )
    return config


def received(hook: HTTPReceiver, smtp: SMTPReceiver) -> dict[str, list[str]]:
    """The message titles each receiver got, by target."""
    by_target: dict[str, list[str]] = {"hook": [], "push": [], "mail": []}
    for request in hook.requests:
        doc = json.loads(request.body)
        target = "hook" if request.path == "/hook" else "push"
        by_target[target].append(doc["title"])
    by_target["mail"] = [mail.subject for mail in smtp.mails]
    return {k: sorted(v) for k, v in by_target.items()}


def test_run_once_delivers_exact_alerts_then_polls_conditionally(tmp_path: Path) -> None:
    """First fetch is silent unless backfilled, new entries alert every target once, and an
    unchanged second poll sends nothing while asking with ETag and Last-Modified."""
    april = (REALFEEDS / "04_npr_news_2024-04-15_iran-drones.xml").read_bytes()
    october = (REALFEEDS / "01_npr_news_2024-10-25_nk-troops.xml").read_bytes()
    november = (REALFEEDS / "02_npr_news_2024-11-18_kursk.xml").read_bytes()
    rss = "application/rss+xml"
    with FeedServer() as feeds, HTTPReceiver() as hook, SMTPReceiver() as smtp:
        feeds.add("/npr-news.xml", april, content_type=rss, etag='"april"')
        feeds.add(
            "/npr-later.xml",
            november,
            content_type=rss,
            etag='"nov"',
            last_modified="Mon, 18 Nov 2024 10:00:00 GMT",
        )
        config = write_config(tmp_path, feeds, hook, smtp)

        # Poll 1: npr-news is new and silent; npr-later is backfilled and alerts its match.
        done = run_once(config)
        assert done.returncode == 0, done.stderr
        expected = [f"[north-korean-troops] {BIDEN}"]
        assert received(hook, smtp) == {"hook": expected, "push": expected, "mail": expected}

        # Poll 2: npr-news now carries the October page; only its new matching entry alerts.
        feeds.add("/npr-news.xml", october, content_type=rss, etag='"october"')
        done = run_once(config)
        assert done.returncode == 0, done.stderr
        expected = sorted([*expected, f"[north-korean-troops] {SOUTH_KOREA}"])
        assert received(hook, smtp) == {"hook": expected, "push": expected, "mail": expected}

        # Poll 3: nothing changed; nothing is sent, and both feeds were asked conditionally.
        before = len(feeds.requests)
        done = run_once(config)
        assert done.returncode == 0, done.stderr
        assert received(hook, smtp) == {"hook": expected, "push": expected, "mail": expected}
        third = {r.path: r.headers for r in feeds.requests[before:]}
        assert third["/npr-news.xml"]["if-none-match"] == '"october"'
        assert third["/npr-later.xml"]["if-none-match"] == '"nov"'
        assert third["/npr-later.xml"]["if-modified-since"] == "Mon, 18 Nov 2024 10:00:00 GMT"
        assert third["/npr-news.xml"]["user-agent"].startswith("news-monitor/")


def test_alert_bodies_carry_rule_sources_link_and_marked_words(tmp_path: Path) -> None:
    """Each channel's message names the rule, the source feed and link, and marks the words."""
    november = (REALFEEDS / "02_npr_news_2024-11-18_kursk.xml").read_bytes()
    with FeedServer() as feeds, HTTPReceiver() as hook, SMTPReceiver() as smtp:
        feeds.add("/npr-news.xml", b"", content_type="application/rss+xml", status=404)
        feeds.add("/npr-later.xml", november, content_type="application/rss+xml")
        config = write_config(tmp_path, feeds, hook, smtp)
        done = run_once(config)
        assert done.returncode == 0, done.stderr
        hook_doc = next(json.loads(r.body) for r in hook.requests if r.path == "/hook")
        (mail,) = smtp.mails
        for body in (hook_doc["message"], mail.text):
            assert "NPR Later" in body
            assert "https://www.npr.org/2024/11/17/nx-s1-5194432/" in body
            assert "north-korean-troops" in body
        assert "<" not in hook_doc["message"]
        # The failing feed is recorded, not fatal, and the log says why in one line.
        assert "HTTP 404" in done.stderr
        assert "Traceback" not in done.stderr
