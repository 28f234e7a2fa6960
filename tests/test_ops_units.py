"""Operations (issue 6), the smaller parts: progress on a terminal, sd_notify, log masking.

Progress is checked by running the real command line with its standard error
on a pseudo-terminal (and on a pipe, where it must stay quiet); sd_notify
against a real unix datagram socket bound by the test.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import pty
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from feedserver import FeedServer
from test_ops_daemon import rss

from monitor.commands.progress import ProgressBar
from monitor.config import Secrets
from monitor.daemon import SHUTDOWN_GRACE_SECONDS
from monitor.http import Health, HTTPEndpoint, Liveness, judge_health
from monitor.logs import event, reconfigure_logging, setup_logging
from monitor.metrics import Metrics
from monitor.model import FeedStatus, FeedUpdateIntent, SourceIntent
from monitor.sdnotify import SystemdNotifier

ROOT = Path(__file__).resolve().parents[1]


def run_cli(argv: list[str], *, tty: bool, cwd: Path = ROOT) -> tuple[int, str, str]:
    """Run ``news-monitor ARGV``; standard error on a pseudo-terminal when ``tty``."""
    command = [sys.executable, "-m", "monitor", *argv]
    env = {k: v for k, v in os.environ.items() if k != "NEWS_MONITOR_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    if not tty:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=60, check=False, cwd=cwd, env=env
        )
        return done.returncode, done.stdout, done.stderr
    master, slave = pty.openpty()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=slave, cwd=cwd, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.wait(timeout=60), out, b"".join(chunks).decode()


@pytest.fixture
def three_feeds(tmp_path: Path) -> Iterator[tuple[FeedServer, Path]]:
    """Three small feeds (one failing) and a configuration that watches them."""
    with FeedServer() as feeds:
        feeds.add("/a.xml", rss("Drone strike"))
        feeds.add("/b.xml", rss("Weather"))
        feeds.add("/c.xml", b"", status=500)
        config = tmp_path / "monitor.yaml"
        urls = "".join(f"  - url: {feeds.url(p)}\n" for p in ("/a.xml", "/b.xml", "/c.xml"))
        config.write_text(
            f"state: {tmp_path / 'state.db'}\nfeeds:\n{urls}"
            "targets:\n  out: console://\nrules:\n  - name: drones\n    query: drone*\n"
            "    notify: [out]\n"
        )
        yield feeds, config


def test_run_once_draws_a_progress_bar_on_a_terminal_only(
    three_feeds: tuple[FeedServer, Path],
) -> None:
    """`run --once` draws a progress bar over the feeds on a terminal, and none on a pipe."""
    _, config = three_feeds
    code, _, terminal = run_cli(["run", "--once", "--config", str(config)], tty=True)
    assert code == 0, terminal
    assert "polling [" in terminal
    assert "3/3 feeds, 1 failed" in terminal
    code, _, piped = run_cli(["run", "--once", "--config", str(config)], tty=False)
    assert code == 0, piped
    assert "polling [" not in piped and "\r" not in piped


def test_match_url_spins_while_a_slow_feed_loads_on_a_terminal_only(tmp_path: Path) -> None:
    """`match --url` shows a spinner while a slow feed loads on a terminal, nothing on a pipe,
    and its standard output (the matches) is the same either way."""

    def slow(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(0.5)
        body = rss("Drone strike")
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with FeedServer() as feeds:
        feeds.add_handler("/slow.xml", slow)
        argv = ["match", "--url", feeds.url("/slow.xml"), "--query", "drone*", "--json"]
        # Run where no configuration exists: an ad-hoc query needs none.
        code, out_tty, terminal = run_cli(argv, tty=True, cwd=tmp_path)
        assert code == 0, terminal
        assert f"fetching {feeds.url('/slow.xml')}" in terminal
        code, out_pipe, piped = run_cli(argv, tty=False, cwd=tmp_path)
        assert code == 0, piped
        assert "fetching" not in piped
    assert out_tty == out_pipe
    assert json.loads(out_pipe)["title"] == "Drone strike"


def test_progress_bar_redraws_in_place() -> None:
    """The bar returns to the line's start, pads over longer text, and ends with a newline."""
    out = io.StringIO()
    bar = ProgressBar("polling", 4, unit="feeds", out=out)
    bar.advance(note="1 failed")
    bar.advance()
    bar.close()
    frames = out.getvalue().split("\r")[1:]
    assert frames[0].startswith("polling [------------------------] 0/4 feeds")
    assert frames[1].startswith("polling [######------------------] 1/4 feeds, 1 failed")
    assert frames[2].rstrip() == "polling [############------------] 2/4 feeds"
    assert len(frames[2].rstrip("\n")) == len(frames[1])  # padded over the longer line
    assert out.getvalue().endswith("\n")


def test_sd_notify_speaks_to_an_abstract_socket_and_throttles_the_watchdog() -> None:
    """An ``@name`` NOTIFY_SOCKET is the abstract socket; the watchdog pings at most once per
    half interval; a WATCHDOG_PID naming another process, or no socket, disables it all."""
    name = f"news-monitor-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind("\0" + name)
        systemd.settimeout(2)
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "10000000"})
        assert notifier.enabled and notifier.watchdog_interval == 10.0
        notifier.ready("polling 2 feeds")
        assert systemd.recv(4096) == b"READY=1\nSTATUS=polling 2 feeds"
        notifier.watchdog()
        notifier.watchdog()  # within 5 s of the first: not sent
        notifier.stopping()
        assert systemd.recv(4096) == b"WATCHDOG=1"
        assert systemd.recv(4096) == b"STOPPING=1\nSTATUS=stopping"
    other = SystemdNotifier(
        {"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "1000", "WATCHDOG_PID": "1"}
    )
    assert other.watchdog_interval is None
    assert SystemdNotifier({}).notify("READY=1") is False


def test_a_reload_masks_old_and_new_secrets_in_logs() -> None:
    """After reconfigure_logging (a reload), log lines hide the old and the new secrets alike."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    try:
        setup_logging("json", "info", Secrets({"old-s3cret"}).mask)
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        reconfigure_logging("info", Secrets({"old-s3cret", "new-s3cret"}).mask)
        event(logging.getLogger("monitor"), logging.WARNING, "x", a="old-s3cret", b="new-s3cret")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    line = stream.getvalue()
    assert json.loads(line)["event"] == "x"
    assert "s3cret" not in line


def test_skipped_scheduler_runs_are_not_logged_but_other_scheduler_warnings_are() -> None:
    """A 1 s job still running when its next run comes is by design: no warning every second."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    try:
        setup_logging("text", "info", Secrets(set()).mask)
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        scheduler = logging.getLogger("apscheduler.scheduler")
        scheduler.warning(
            'Execution of job "%s" skipped: maximum number of running instances reached (%d)',
            "Daemon.delivery_round",
            1,
        )
        scheduler.warning("Run time of job %s was missed by %s", "tick", "0:00:31")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    out = stream.getvalue()
    assert "maximum number of running instances" not in out
    assert "was missed by 0:00:31" in out


def test_matches_count_alerts_and_sources_and_fetch_time_is_the_http_part() -> None:
    """A match that joins an earlier alert as a source is a match of its rule too; the fetch
    histogram takes the time it is given (the HTTP exchange), not the whole poll."""
    now = datetime(2026, 12, 1, tzinfo=UTC)
    metrics = Metrics()
    source = SourceIntent("drones", "link:a.example/1", "A", "https://a.example/rss", None)
    intent = FeedUpdateIntent(
        "https://a.example/rss", now, FeedStatus.OK, now, 0, sources=(source,)
    )
    metrics.polled(intent, 0.07)
    text = metrics.registry.get_sample_value
    assert text("news_monitor_matches_total", {"rule": "drones"}) == 1
    assert text("news_monitor_fetch_duration_seconds_bucket", {"le": "0.05"}) == 0
    assert text("news_monitor_fetch_duration_seconds_bucket", {"le": "0.1"}) == 1


def test_dockerfile_and_systemd_unit_agree_with_the_daemon() -> None:
    """The Dockerfile runs non-root with a /data volume and health-checks the port it serves;
    the systemd unit is Type=notify with a watchdog, reloads with SIGHUP and stops the main
    process only."""
    docker = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.12-slim" in docker
    assert 'VOLUME ["/data"]' in docker and "NEWS_MONITOR_STATE=/data/" in docker
    user = next(line.split()[1] for line in docker.splitlines() if line.startswith("USER "))
    assert user != "root"
    assert 'CMD ["news-monitor", "run", "--http", "0.0.0.0:9108"]' in docker
    assert "HEALTHCHECK" in docker and "http://127.0.0.1:9108/healthz" in docker
    unit = dict(
        line.split("=", 1)
        for line in (ROOT / "config" / "news-monitor.service").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert unit["Type"] == "notify" and unit["NotifyAccess"] == "main"
    assert int(unit["WatchdogSec"]) >= 10
    assert unit["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert unit["KillMode"] == "mixed"
    # The stop timeout leaves room for the daemon's own grace period.
    assert int(unit["TimeoutStopSec"]) > SHUTDOWN_GRACE_SECONDS


@pytest.mark.parametrize(
    ("state", "ok", "reason"),
    [
        (Liveness(100, 99.5, None, 0, 99.0, False), True, "polling and delivering"),
        (Liveness(100, 99.5, 95.0, 99.0, 90, False), True, "polling and delivering"),
        (Liveness(100, 99.5, 95.0, 0, 90, False), False, "delivery stalled"),
        (Liveness(100, 99.5, 95.0, 94.0, 90, False), False, "delivery stalled"),
        (Liveness(100, 60.0, None, 0, 99.0, False), False, "scheduler has not ticked for 40s"),
        (Liveness(100, 99.5, None, 0, 50.0, False), False, "delivery worker has not run"),
        (Liveness(100, 99.5, None, 0, 99.0, True), False, "shutting down"),
    ],
)
def test_health_judges_ticks_and_delivery_progress(state: Liveness, ok: bool, reason: str) -> None:
    """Unhealthy when the scheduler stops ticking, a round finishes no attempt for stall_after,
    the worker stops running, or on shutdown; a long round that keeps finishing attempts is
    healthy."""
    health = judge_health(state, stall_after=3.0, tick_grace=30.0)
    assert health.ok is ok
    assert health.reason.startswith(reason)


def test_http_endpoint_routes_healthz_metrics_head_and_errors() -> None:
    """/healthz is 200 or 503 with JSON, HEAD gives the status without a body, /metrics is
    Prometheus text, other paths are 404 and other methods 405."""

    async def scenario() -> list[tuple[int, bytes]]:
        healthy = [True]
        endpoint = HTTPEndpoint(
            lambda: Health(healthy[0], "fine" if healthy[0] else "stalled", {"x": 1}),
            lambda: b"news_monitor_up 1\n",
        )
        _, port = await endpoint.start("127.0.0.1", 0)
        answers = []
        for method, path in [
            ("GET", "/healthz"),
            ("HEAD", "/healthz"),
            ("GET", "/metrics"),
            ("GET", "/nope"),
            ("POST", "/healthz"),
            ("GET", "/healthz?verbose=1"),
        ]:
            if path.endswith("=1"):
                healthy[0] = False
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            raw = await reader.read()
            writer.close()
            head, _, body = raw.partition(b"\r\n\r\n")
            answers.append((int(head.split()[1]), body))
        await endpoint.close()
        return answers

    answers = asyncio.run(scenario())
    assert answers[0][0] == 200 and json.loads(answers[0][1]) == {
        "status": "ok",
        "reason": "fine",
        "x": 1,
    }
    assert answers[1] == (200, b"")
    assert answers[2] == (200, b"news_monitor_up 1\n")
    assert answers[3][0] == 404
    assert answers[4][0] == 405
    assert answers[5][0] == 503 and json.loads(answers[5][1])["reason"] == "stalled"
