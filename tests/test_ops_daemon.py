"""Operations (issue 6): the real ``news-monitor run`` daemon as a subprocess.

Each test starts the daemon with ``--http 127.0.0.1:0`` and ``--log-format
json``, learns the bound port from its ``http.listening`` log event, and waits
for conditions (a log event, a ``/healthz`` answer, a receiver request) with
timeouts, never for fixed times. Feeds come from a local :class:`FeedServer`,
alerts go over ``json://`` to a local :class:`HTTPReceiver`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from feedserver import FeedServer
from prometheus_client.parser import text_string_to_metric_families
from receivers import HTTPReceiver

from monitor.daemon import SHUTDOWN_GRACE_SECONDS

Event = dict[str, Any]


def rss(*titles: str) -> bytes:
    """An RSS 2.0 feed with one fresh item per title (ids from the titles)."""
    when = format_datetime(datetime.now(UTC))
    items = "".join(
        f"<item><title>{t}</title><link>https://example.org/{i}</link>"
        f'<guid isPermaLink="false">{t}</guid><pubDate>{when}</pubDate>'
        f"<description>{t}.</description></item>"
        for i, t in enumerate(titles)
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Ops News</title>'
        f"<link>https://example.org/</link><description>x</description>{items}</channel></rss>"
    ).encode()


class DaemonProcess:
    """``news-monitor run`` in a subprocess, its JSON log events collected as they come."""

    def __init__(
        self, config: Path, *extra: str, env: dict[str, str] | None = None, http: bool = True
    ) -> None:
        argv = [sys.executable, "-m", "monitor", "run", "--config", str(config)]
        argv += ["--log-format", "json", *(["--http", "127.0.0.1:0"] if http else []), *extra]
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own process group, as a terminal's job is
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0
        if http:
            listening = self.wait_event(lambda e: e["event"] == "http.listening")
            self.port = int(listening["address"].rsplit(":", 1)[1])

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    @property
    def events(self) -> list[Event]:
        """Every log line so far, parsed (each line must be one JSON object)."""
        with self._cond:
            return [json.loads(line) for line in self.lines]

    def wait_event(
        self, match: Callable[[Event], bool], timeout: float = 15.0, after: int = 0
    ) -> Event:
        """The first log event from line ``after`` on that ``match`` accepts, waiting up to
        ``timeout`` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[after:]:
                    doc: Event = json.loads(line)
                    if match(doc):
                        return doc
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    tail = "\n".join(self.lines[-20:])
                    raise AssertionError(f"no matching log event within {timeout}s:\n{tail}")
                self._cond.wait(min(left, 0.2))

    def get(self, path: str) -> tuple[int, bytes]:
        """GET ``path`` from the daemon's HTTP endpoint: (status, body)."""
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def wait_health(self, status: int, timeout: float = 15.0) -> dict[str, Any]:
        """Poll /healthz until it answers ``status``; return its JSON document."""
        deadline = time.monotonic() + timeout
        seen: list[int] = []
        while time.monotonic() < deadline:
            code, body = self.get("/healthz")
            seen.append(code)
            if code == status:
                doc: dict[str, Any] = json.loads(body)
                return doc
            time.sleep(0.05)
        raise AssertionError(f"/healthz never answered {status} in {timeout}s (saw {seen[-5:]})")

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the daemon."""
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM, then the exit code (it must exit within ``timeout``)."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        """Make sure the process is gone (test teardown)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=5)


@pytest.fixture
def daemons() -> Iterator[Callable[..., DaemonProcess]]:
    """Start daemons; kill whatever a failing test left running."""
    started: list[DaemonProcess] = []

    def start(config: Path, *extra: str, **kwargs: Any) -> DaemonProcess:
        process = DaemonProcess(config, *extra, **kwargs)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def write_config(
    path: Path,
    feeds: list[str],
    targets: dict[str, str],
    rules: dict[str, str],
    *,
    extra: str = "",
    notify: list[str] | None = None,
) -> Path:
    """A configuration with backfilled feeds (so the first poll alerts) and quick retries."""
    feed_lines = "".join(f"  - url: {url}\n    backfill: true\n" for url in feeds)
    target_lines = "".join(f'  {name}: "{url}"\n' for name, url in targets.items())
    names = notify or list(targets)
    rule_lines = "".join(
        f"  - name: {name}\n    query: '{query}'\n    notify: [{', '.join(names)}]\n"
        for name, query in rules.items()
    )
    path.write_text(
        f"state: {path.parent / 'state.db'}\n"
        "poll: {interval: 1h, timeout: 5s, jitter: 0}\n"
        "delivery: {retry_initial: 1s, retry_max: 1s}\n"
        f"{extra}"
        f"feeds:\n{feed_lines}targets:\n{target_lines}rules:\n{rule_lines}"
    )
    return path


def titles(receiver: HTTPReceiver, path: str = "/hook") -> list[str]:
    """The alert titles ``receiver`` got on ``path``, in arrival order."""
    return [r.json["title"] for r in receiver.requests if r.path == path and r.json]


def wait_until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "") -> None:
    """Poll ``condition`` until true or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


# -- /healthz -------------------------------------------------------------------


def test_healthz_turns_503_while_delivery_stalls_and_200_again(
    tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    """/healthz answers 503 with a JSON reason while a target holds its answer longer than
    health.stall_after, and 200 again once the delivery finishes."""
    with FeedServer() as feeds, HTTPReceiver() as hook:
        feeds.add("/news.xml", rss("Drone barrage on Kyiv"))
        hook.respond_with(200, count=1, delay=3.5)  # under Apprise's 4 s read timeout
        config = write_config(
            tmp_path / "monitor.yaml",
            [feeds.url("/news.xml")],
            {"hook": hook.json_url("/hook")},
            {"drones": "drone*"},
            extra="health: {stall_after: 0.5s}\n",
        )
        daemon = daemons(config)
        hook.wait_for(1, timeout=15)
        stalled = daemon.wait_health(503, timeout=5)
        assert stalled["status"] == "unhealthy"
        assert "delivery stalled" in stalled["reason"]
        assert stalled["stall_after_seconds"] == 0.5
        healthy = daemon.wait_health(200, timeout=10)
        assert healthy["status"] == "ok"
        daemon.wait_event(lambda e: e["event"] == "alert.delivered")
        assert daemon.stop() == 0


# -- /metrics and status --------------------------------------------------------


def metric_values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, from a Prometheus exposition."""
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def test_metrics_and_status_report_a_known_run(
    tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    """After one known run (a good feed with 3 entries, 2 matching; a 404 feed; a target that
    accepts and one that answers 500), /metrics holds exactly those counts and gauges, and
    `status --json` run beside the daemon agrees."""
    started = time.time()
    with FeedServer() as feeds, HTTPReceiver() as hook, HTTPReceiver() as broken:
        feeds.add("/good.xml", rss("Drone strike", "Weather", "Drones over Odesa"))
        feeds.add("/bad.xml", b"", status=404)
        broken.respond_with(500)
        config = write_config(
            tmp_path / "monitor.yaml",
            [feeds.url("/good.xml"), feeds.url("/bad.xml")],
            {"hook": hook.json_url("/hook"), "broken": broken.json_url("/x")},
            {"drones": "drone*"},
        )
        # Retries wait an hour, so each delivery is tried exactly once.
        text = config.read_text().replace("retry_initial: 1s, retry_max: 1s", "retry_initial: 1h")
        config.write_text(text)
        daemon = daemons(config)
        hook.wait_for(2)
        broken.wait_for(2)
        daemon.wait_event(lambda e: e["event"] == "feed.polled" and e.get("http") == 404)
        wait_until(
            lambda: sum(e["event"] == "alert.not_delivered" for e in daemon.events) == 2,
            what="two failed deliveries logged",
        )
        # The receiver has both messages before the daemon has recorded (and counted)
        # the second as sent: wait for the record too.
        wait_until(
            lambda: (
                sum(
                    e["event"] == "alert.delivered" and e.get("target") == "hook"
                    for e in daemon.events
                )
                == 2
            ),
            what="two deliveries recorded",
        )
        code, body = daemon.get("/metrics")
        assert code == 200
        values = metric_values(body.decode())

        def value(name: str, **labels: str) -> float:
            return values.get((name, tuple(sorted(labels.items()))), 0.0)

        assert value("news_monitor_fetches_total", result="ok") == 1
        assert value("news_monitor_fetches_total", result="error") == 1
        assert value("news_monitor_fetch_duration_seconds_count") == 2
        assert value("news_monitor_entries_seen_total") == 3
        assert value("news_monitor_matches_total", rule="drones") == 2
        assert value("news_monitor_alerts_total", target="hook", result="queued") == 2
        assert value("news_monitor_alerts_total", target="hook", result="sent") == 2
        assert value("news_monitor_alerts_total", target="broken", result="queued") == 2
        assert value("news_monitor_alerts_total", target="broken", result="failed") == 0
        assert value("news_monitor_deliveries_total", target="hook", result="sent") == 2
        assert value("news_monitor_deliveries_total", target="broken", result="retry") == 2
        assert value("news_monitor_outbox_pending") == 2
        assert value("news_monitor_outbox_failed") == 0
        assert 0 <= value("news_monitor_outbox_oldest_pending_age_seconds") < 60
        assert value("news_monitor_feeds") == 2
        assert value("news_monitor_feeds_in_error") == 1
        assert value("news_monitor_feeds_failing", streak="1") == 1
        assert value("news_monitor_feeds_failing", streak="3") == 0
        assert value("news_monitor_feed_error_streak_max") == 1
        assert started <= value("news_monitor_last_tick_timestamp_seconds") <= time.time()
        assert value("news_monitor_config_last_reload_successful") == 1

        status = subprocess.run(
            [sys.executable, "-m", "monitor", "status", "--json", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert status.returncode == 0, status.stderr
        report = json.loads(status.stdout)
        assert report["pending"] == 2 and report["failed"] == 0
        by_url = {feed["url"]: feed for feed in report["feeds"]}
        assert by_url[feeds.url("/bad.xml")]["error_streak"] == 1
        assert by_url[feeds.url("/bad.xml")]["http_status"] == 404
        assert by_url[feeds.url("/good.xml")]["status"] == "ok"
        assert all(feed["next_due"] for feed in report["feeds"])
        assert {a["title"] for a in report["recent_alerts"]} == {
            "Drone strike",
            "Drones over Odesa",
        }
        assert daemon.stop() == 0


# -- reload -----------------------------------------------------------------------


def test_reload_rejects_a_broken_file_and_applies_a_fixed_one_without_losing_alerts(
    tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    """SIGHUP with a broken file logs every error and keeps the old rules matching; with a
    fixed file the new rules and feeds apply, and an alert pending since before still arrives;
    a changed file is picked up without a signal."""
    with FeedServer() as feeds, HTTPReceiver() as hook:
        feeds.add("/news.xml", rss("Drone strike"))
        feeds.add("/extra.xml", rss("Tanks advance"))
        hook.respond_with(500)  # the first alert stays pending across both reloads
        path = tmp_path / "monitor.yaml"
        old = {"drones": "drone*"}
        hooks = {"hook": hook.json_url("/hook")}
        # Re-poll every second so that "the old rules keep working" can be seen.
        fast = "poll: {interval: 1s, timeout: 5s, jitter: 0}\n"
        write_config(path, [feeds.url("/news.xml")], hooks, old)
        path.write_text(
            path.read_text().replace("poll: {interval: 1h, timeout: 5s, jitter: 0}\n", fast)
        )
        good = path.read_text()
        daemon = daemons(path)
        hook.wait_for(1)

        # A broken file: two errors, both logged; the running configuration stays.
        path.write_text(
            good.replace("query: 'drone*'", "query: 'drone* AND ('").replace(
                "targets:", "colour: blue\ntargets:"
            )
        )
        mark = len(daemon.lines)
        daemon.signal(signal.SIGHUP)
        rejected = daemon.wait_event(lambda e: e["event"] == "config.reload_rejected", after=mark)
        assert rejected["errors"] == 2
        # (The file watcher may see the new file before the signal does: take the first pass.)
        first_pass = daemon.events[mark : daemon.events.index(rejected)]
        invalid = [e for e in first_pass if e["event"] == "config.invalid"]
        assert len(invalid) == 2
        assert any("colour" in e["error"] for e in invalid)
        assert any("drones" in e["error"] for e in invalid)
        # The old rule still matches a new entry.
        feeds.add("/news.xml", rss("Drone strike", "Drone barrage"))
        wait_until(lambda: "[drones] Drone barrage" in titles(hook), what="old rule alert")
        assert daemon.wait_health(200)["status"] == "ok"
        rejected_metrics = metric_values(daemon.get("/metrics")[1].decode())
        assert rejected_metrics[("news_monitor_config_last_reload_successful", ())] == 0

        # A fixed file: a new rule and a new feed; the old rule is gone.
        fixed = write_config(
            tmp_path / "fixed.yaml",
            [feeds.url("/news.xml"), feeds.url("/extra.xml")],
            hooks,
            {"tanks": "tank*"},
        ).read_text()
        path.write_text(fixed)  # same state file: both live in tmp_path
        mark = len(daemon.lines)
        daemon.signal(signal.SIGHUP)
        reloaded = daemon.wait_event(lambda e: e["event"] == "config.reloaded", after=mark)
        assert reloaded["added"] == 1 and reloaded["rules"] == 1
        hook.reset()  # the target recovers: pending alerts go out now
        wait_until(
            lambda: (
                {"[drones] Drone strike", "[drones] Drone barrage", "[tanks] Tanks advance"}
                <= set(titles(hook))
            ),
            what="pending and new alerts delivered",
        )

        # Editing the file is enough: the daemon notices the change itself. Dropping a feed
        # stops it.
        mark = len(daemon.lines)
        edited = path.read_text().replace("tank*", "tank* OR drone*")
        path.write_text(
            edited.replace(f"  - url: {feeds.url('/news.xml')}\n    backfill: true\n", "")
        )
        by_file = daemon.wait_event(
            lambda e: e["event"] == "config.reloaded" and e.get("trigger") == "file", after=mark
        )
        assert by_file["rules"] == 1 and by_file["removed"] == 1 and by_file["feeds"] == 1
        values = metric_values(daemon.get("/metrics")[1].decode())
        assert values[("news_monitor_feeds", ())] == 1
        assert values[("news_monitor_config_reloads_total", (("result", "rejected"),))] >= 1
        assert values[("news_monitor_config_last_reload_successful", ())] == 1
        assert daemon.stop() == 0


# -- shutdown -------------------------------------------------------------------------


def test_sigterm_exits_0_promptly_and_loses_no_alert(
    tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    """SIGTERM during a slow delivery lets it finish and exits 0 within the bound; an alert
    still pending (its target failing) stays in the store and the next run delivers it once."""
    with FeedServer() as feeds, HTTPReceiver() as slow, HTTPReceiver() as flaky:
        feeds.add("/news.xml", rss("Drone strike"))
        slow.respond_with(200, delay=1.5)
        flaky.respond_with(500)
        config = write_config(
            tmp_path / "monitor.yaml",
            [feeds.url("/news.xml")],
            {"slow": slow.json_url("/hook"), "flaky": flaky.json_url("/hook")},
            {"drones": "drone*"},
        )
        daemon = daemons(config)
        slow.wait_for(1)
        flaky.wait_for(1)
        began = time.monotonic()
        code = daemon.stop(timeout=15)
        assert code == 0
        assert time.monotonic() - began < 10  # SHUTDOWN_GRACE_SECONDS (8 s) plus start-up slack
        events = [e["event"] for e in daemon.events]
        assert "daemon.stopped" in events
        assert "daemon.deliveries_abandoned" not in events
        delivered = [e for e in daemon.events if e["event"] == "alert.delivered"]
        assert [e["target"] for e in delivered] == ["slow"]

        # The next run delivers the pending alert, once, and nothing twice.
        flaky.reset()
        retry_at = max(
            datetime.fromisoformat(e["retry_at"])
            for e in daemon.events
            if e["event"] == "alert.not_delivered"
        )
        wait_until(lambda: datetime.now(UTC) >= retry_at, timeout=5, what="the retry time")
        done = subprocess.run(
            [sys.executable, "-m", "monitor", "run", "--once", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert titles(flaky) == ["[drones] Drone strike"]  # reset() forgot the refused try
        assert len(slow.requests) == 1


@pytest.mark.parametrize("hurry", [False, True], ids=["one-signal", "second-signal"])
def test_sigterm_does_not_wait_past_the_bound_for_a_hung_target(
    tmp_path: Path, daemons: Callable[..., DaemonProcess], hurry: bool
) -> None:
    """A target that never answers does not hold shutdown past the grace period (or past a
    second signal): the daemon exits 0, logs the abandoned delivery, the alert stays pending."""
    with FeedServer() as feeds, HTTPReceiver() as hung:
        feeds.add("/news.xml", rss("Drone strike"))
        hung.respond_with(200, delay=25)
        config = write_config(
            tmp_path / "monitor.yaml",
            [feeds.url("/news.xml")],
            # Apprise's read timeout (rto, 4 s by default) must not end the wait first.
            {"hung": hung.json_url("/hook") + "?rto=30"},
            {"drones": "drone*"},
        )
        daemon = daemons(config)
        hung.wait_for(1)
        began = time.monotonic()
        daemon.signal(signal.SIGTERM)
        if hurry:
            time.sleep(0.2)
            began = time.monotonic()
            daemon.signal(signal.SIGTERM)  # a second signal skips the grace period
        assert daemon.proc.wait(timeout=SHUTDOWN_GRACE_SECONDS + 10) == 0
        took = time.monotonic() - began
        if hurry:
            assert took < 5
        else:  # the in-flight delivery had its grace, and no more
            assert SHUTDOWN_GRACE_SECONDS - 1 < took < SHUTDOWN_GRACE_SECONDS + 4
        daemon.kill()
        assert "daemon.deliveries_abandoned" in [e["event"] for e in daemon.events]
        status = subprocess.run(
            [sys.executable, "-m", "monitor", "status", "--json", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert json.loads(status.stdout)["pending"] == 1


def test_ctrl_c_to_the_process_group_stops_cleanly(
    tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    """SIGINT to the daemon's whole process group (Ctrl-C on a terminal, which reaches the
    parse workers too) stops it with exit 0 and no traceback in the log."""
    with FeedServer() as feeds, HTTPReceiver() as hook:
        feeds.add("/news.xml", rss("Drone strike"))
        config = write_config(
            tmp_path / "monitor.yaml",
            [feeds.url("/news.xml")],
            {"hook": hook.json_url("/hook")},
            {"drones": "drone*"},
        )
        daemon = daemons(config)
        daemon.wait_event(lambda e: e["event"] == "alert.delivered")  # the pool has workers
        os.killpg(daemon.proc.pid, signal.SIGINT)
        assert daemon.proc.wait(timeout=15) == 0
        daemon.kill()
    assert all("traceback" not in e for e in daemon.events)
    assert daemon.events[-1]["event"] == "daemon.stopped"


# -- logs -------------------------------------------------------------------------------


def test_json_logs_parse_line_by_line_and_hold_no_secret(
    tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    """With --log-format json every stderr line is one JSON object with fields per outcome,
    and no secret from ${VAR} in a target URL appears, even in a failing target's errors."""
    secrets = {
        "HOOK_PASSWORD": "hunter2-Sekret-7731",
        "DEAD_TOKEN": "tok3n-Zx81-Qq42",
        "FAIL_PASSWORD": "p4ss-Wd-0417",
    }
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        dead_port = closed.getsockname()[1]  # nothing listens here once closed
    with FeedServer() as feeds, HTTPReceiver() as hook, HTTPReceiver() as failing:
        feeds.add("/news.xml", rss("Drone strike"))
        failing.respond_with(500, body=b"internal error")
        config = write_config(
            tmp_path / "monitor.yaml",
            [feeds.url("/news.xml")],
            {
                "hook": f"json://desk:${{HOOK_PASSWORD}}@127.0.0.1:{hook.port}/hook",
                "dead": f"json://127.0.0.1:{dead_port}/${{DEAD_TOKEN}}",
                "failing": f"json://bot:${{FAIL_PASSWORD}}@127.0.0.1:{failing.port}/f",
            },
            {"drones": "drone*"},
        )
        daemon = daemons(config, env=secrets)
        hook.wait_for(1)
        wait_until(
            lambda: (
                {e.get("target") for e in daemon.events if e["event"] == "alert.not_delivered"}
                >= {"dead", "failing"}
            ),
            what="both failing targets logged",
        )
        assert daemon.stop() == 0
    for line in daemon.lines:
        doc = json.loads(line)  # every line parses on its own
        assert {"ts", "level", "event"} <= set(doc)
        for secret in secrets.values():
            assert secret not in line
    polled = next(e for e in daemon.events if e["event"] == "feed.polled")
    assert polled["feed"] == feeds.url("/news.xml") and polled["status"] == "ok"
    assert polled["duration"].endswith("s")
    sent = next(e for e in daemon.events if e["event"] == "alert.delivered")
    assert sent["rule"] == "drones" and sent["target"] == "hook" and sent["status"] == "sent"
    failed = next(e for e in daemon.events if e["event"] == "alert.not_delivered")
    assert failed["level"] == "warning" and failed["error"]
    # The secret really was used: the receiver saw it in the Authorization header.
    assert "authorization" in hook.requests[0].headers


# -- systemd ----------------------------------------------------------------------------


def test_sd_notify_ready_watchdog_reloading_and_stopping(
    tmp_path: Path, daemons: Callable[..., DaemonProcess]
) -> None:
    """Under a NOTIFY_SOCKET (a real unix datagram socket standing in for systemd) the daemon
    sends READY=1, WATCHDOG=1 at half the WATCHDOG_USEC interval, RELOADING=1 then READY=1 on
    SIGHUP, and STOPPING=1 on SIGTERM."""
    with FeedServer() as feeds, HTTPReceiver() as hook:
        feeds.add("/news.xml", rss("Weather"))
        config = write_config(
            tmp_path / "monitor.yaml",
            [feeds.url("/news.xml")],
            {"hook": hook.json_url("/hook")},
            {"drones": "drone*"},
        )
        # A short directory: unix socket paths are limited to about 100 bytes.
        with tempfile.TemporaryDirectory(prefix="nm-") as short:
            address = str(Path(short) / "notify")
            received: list[str] = []
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
                systemd.bind(address)
                systemd.settimeout(0.2)

                def wait_for(message: str, count: int = 1, timeout: float = 15.0) -> None:
                    deadline = time.monotonic() + timeout
                    while sum(message in m.split("\n") for m in received) < count:
                        assert time.monotonic() < deadline, f"no {message} in {received}"
                        with contextlib.suppress(TimeoutError):
                            received.append(systemd.recv(4096).decode())

                env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "600000"}
                daemon = daemons(config, env=env, http=False)
                wait_for("READY=1")
                assert any(
                    m.startswith("STATUS=polling 1 feeds") for r in received for m in r.split("\n")
                )
                wait_for("WATCHDOG=1", count=3, timeout=5)
                daemon.signal(signal.SIGHUP)
                wait_for("RELOADING=1")
                wait_for("READY=1", count=2)
                daemon.signal(signal.SIGTERM)
                wait_for("STOPPING=1")
                assert daemon.proc.wait(timeout=15) == 0
