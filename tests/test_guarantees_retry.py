"""SPEC §5 "no alert lost", with the real daemon: failing targets are retried, then kept as failed.

The daemon runs as a subprocess (``news-monitor run``) against a local feed
server and real receivers: ``json://`` and ``ntfy://`` over HTTP, ``mailto://``
to aiosmtpd. Retries are made fast through ``delivery.retry_initial`` and
``retry_max``; ``retry_for`` is short so a dead target gives up within seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from daemon_proc import DaemonProcess, Item, rss, run_cli, status_json, wait_until
from feedserver import FeedServer
from receivers import HTTPReceiver, SMTPReceiver

HEADLINES = [
    "Drone barrage hits the port of Odesa overnight",
    "Air defence downs drones over the capital region",
    "New drone factory opens near the border town",
]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    """A daemon process handle that is killed if the test leaves it running."""
    proc = DaemonProcess(tmp_path / "monitor.yaml", tmp_path / "daemon.log")
    yield proc
    proc.close()


def test_failing_targets_are_retried_until_they_recover_or_end_as_failed(
    tmp_path: Path, daemon: DaemonProcess
) -> None:
    """A target failing for a while gets every alert exactly once after it recovers; one that
    never recovers ends with its alerts failed, shown by ``status`` and ``status --json``."""
    now = datetime.now(UTC)
    items = [
        Item(f"g{n}", title, f"https://news.example/{n}", now - timedelta(minutes=n + 1))
        for n, title in enumerate(HEADLINES)
    ]
    with (
        FeedServer() as feeds,
        HTTPReceiver() as hook,
        HTTPReceiver() as dead,
        SMTPReceiver() as smtp,
    ):
        feeds.add("/wire.xml", rss("Wire", items))
        failures = 2 * len(HEADLINES)  # two full rounds of 500s, then 200s
        hook.respond_with(500, count=failures)
        dead.respond_with(500)  # forever: both its json:// path and its ntfy:// topic
        smtp.fail_next(1)  # one temporary SMTP failure
        # Apprise's ntfy and e-mail plugins wait 5.5 s between requests (their built-in
        # throttle), so the rule that reaches them has a single alert to keep this quick.
        daemon.config.write_text(
            f"""
state: {tmp_path / "state.db"}
poll: {{interval: 1h, timeout: 5s, jitter: 0}}
delivery: {{retry_initial: 1s, retry_max: 2s, retry_for: 12s}}
feeds:
  - url: {feeds.url("/wire.xml")}
    name: Wire
    backfill: true
targets:
  hook: "{hook.json_url("/hook")}"
  dead: "{dead.json_url("/dead")}"
  mail: "{smtp.mailto_url()}"
  push: "{dead.ntfy_url("desk")}"
rules:
  - name: drones
    query: drone
    notify: [hook, dead]
  - name: factories
    query: factory
    notify: [mail, push]
"""
        )
        daemon.start()
        expected = sorted(f"[drones] {title}" for title in HEADLINES)
        wait_until(
            lambda: len(hook.requests) >= failures + len(expected) and len(smtp.mails) >= 1,
            30,
            "the recovering targets to accept every alert",
        )
        wait_until(
            lambda: status_json(daemon.config)["pending"] == 0,
            40,
            "the dead targets' deliveries to be given up",
        )
        report = status_json(daemon.config)
        assert daemon.stop() == 0, daemon.run_log()

    # The recovering targets: every alert exactly once after their failures, none before.
    accepted = hook.requests[failures:]
    assert sorted(json.loads(r.body)["title"] for r in accepted) == expected
    assert [m.subject for m in smtp.mails] == [f"[factories] {HEADLINES[2]}"]
    # The dead targets were tried more than once per alert (backoff), never with success.
    assert len([r for r in dead.requests if r.path == "/dead"]) >= 2 * len(expected)
    assert len([r for r in dead.requests if r.path == "/"]) >= 2
    # Nothing is left pending; the dead targets' alerts are kept as failed, with the reason.
    assert report["pending"] == 0 and report["failed"] == len(expected) + 1
    failed = report["failed_deliveries"]
    assert sorted(target for _, target, _ in failed) == ["dead"] * len(expected) + ["push"]
    assert all(error for _, _, error in failed)
    text = run_cli(daemon.config, "status")
    assert text.returncode == 0, text.stderr
    assert "0 pending, 4 failed" in text.stdout
    assert text.stdout.count("-> dead:") == len(expected)
    assert text.stdout.count("-> push:") == 1
