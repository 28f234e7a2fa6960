"""The outbox run by the real Daemon with an injected clock, a real store and a local receiver.

Alerts are queued through the store's own ``apply`` (as a poll would), then
``Daemon.drain_outbox`` runs at chosen clock times; nothing sleeps. Covers
digests, quiet hours, HTTP 429 pauses (across a restart), rate limits,
retries, and health alerts (issue 4).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from receivers import HTTPReceiver

from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.model import AlertIntent, DeliveryState, FeedStatus, FeedUpdateIntent
from monitor.outage import SETTLE_SECONDS, OutageWatch
from monitor.store.sqlite import SQLiteStore

FEED = "http://127.0.0.1:9/feed.xml"  # configured, never fetched: the tests queue alerts
MINUTE = timedelta(minutes=1)


class Clock:
    """A settable clock for the daemon."""

    def __init__(self, start: datetime) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def set(self, moment: datetime) -> None:
        """Move the clock to ``moment``."""
        self.moment = moment


class Harness:
    """A Daemon over a state file in ``tmp_path``, reopened on demand like a restart."""

    def __init__(self, tmp_path: Path, config_text: str, clock: Clock) -> None:
        self.path = tmp_path / "monitor.yaml"
        self.path.write_text(f"state: {tmp_path / 'state.db'}\n{config_text}", encoding="utf-8")
        self.config = load_config(self.path)
        self.clock = clock
        self.store = SQLiteStore(self.config.state)
        self.daemon = Daemon(self.config, self.store, now=clock)
        self.stories = 0

    def queue(self, rule: str, *targets: str, title: str | None = None) -> str:
        """Queue a new alert of ``rule`` to ``targets`` at the clock's time; return its title."""
        self.stories += 1
        headline = title or f"Story {self.stories} about drones"
        intent = AlertIntent(
            rule=rule,
            story=f"story-{self.stories}",
            feed="Test Feed",
            feed_url=FEED,
            title=headline,
            link=f"https://news.example/{self.stories}",
            published=self.clock(),
            summary=f"{headline}.",
            terms=("drones",),
            hits=(),
            targets=targets,
        )
        self.store.apply(self._poll(alerts=(intent,)))
        return headline

    def _poll(self, **changes: object) -> FeedUpdateIntent:
        fields: dict[str, object] = {
            "url": FEED,
            "now": self.clock(),
            "status": FeedStatus.OK,
            "next_due": self.clock() + 10 * MINUTE,
            "error_streak": 0,
            "success": True,
        }
        fields.update(changes)
        return FeedUpdateIntent(**fields)  # type: ignore[arg-type]

    def feed_polled(self, *, streak: int) -> None:
        """Record a poll of the feed at the clock's time: failed (``streak`` > 0) or not."""
        if streak:
            self.store.apply(
                self._poll(status=FeedStatus.ERROR, error_streak=streak, success=False, error="503")
            )
        else:
            self.store.apply(self._poll())

    def drain(self, at: datetime) -> None:
        """Set the clock to ``at`` and run the daemon's delivery until nothing due is left."""
        self.clock.set(at)
        asyncio.run(self.daemon.drain_outbox())

    def restart(self) -> None:
        """Close the store and start a new Daemon on the same file."""
        self.close()
        self.store = SQLiteStore(self.config.state)
        self.daemon = Daemon(self.config, self.store, now=self.clock)

    def close(self) -> None:
        """Release the daemon's resources and the store."""
        asyncio.run(self.daemon.runtime.aclose())
        self.store.close()


@pytest.fixture
def receiver() -> Iterator[HTTPReceiver]:
    """A local HTTP receiver for json:// targets."""
    with HTTPReceiver() as hook:
        yield hook


def titles(hook: HTTPReceiver, path: str | None = None) -> list[str]:
    """The titles of the messages the receiver got (at ``path``), in arrival order."""
    return [r.json["title"] for r in hook.requests if path is None or r.path == path]


def config_text(hook: HTTPReceiver, extra_targets: str = "", health: str = "") -> str:
    """A configuration with target ``desk``, a plain rule ``r`` and a 1h digest rule ``d``."""
    return f"""
feeds:
  - url: {FEED}
    name: Test Feed
targets:
  desk: "{hook.json_url("/desk")}"
{extra_targets}
rules:
  - name: r
    query: drones
    notify: [desk]
  - name: d
    query: drones
    notify: [desk]
    digest: 1h
{health}
"""


T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def test_a_digest_rule_sends_its_batch_once_a_period_after_the_first_alert(
    tmp_path: Path, receiver: HTTPReceiver
) -> None:
    """Digest alerts wait a period from the first of their batch, then go as one message."""
    run = Harness(tmp_path, config_text(receiver), Clock(T0))
    try:
        first = run.queue("d", "desk")
        plain = run.queue("r", "desk")
        run.drain(T0)
        assert titles(receiver) == [f"[r] {plain}"]  # the plain rule is not held
        run.clock.set(T0 + 20 * MINUTE)
        second = run.queue("d", "desk")
        run.drain(T0 + 20 * MINUTE)
        run.drain(T0 + 59 * MINUTE)
        assert len(receiver.requests) == 1

        run.drain(T0 + 60 * MINUTE)
        (digest,) = receiver.requests[1:]
        assert digest.json["title"] == "[d] 2 new alerts"
        assert first in digest.json["message"]
        assert second in digest.json["message"]
        run.drain(T0 + 61 * MINUTE)
        assert len(receiver.requests) == 2

        # The next alert starts a new batch: a batch of one goes as the alert itself.
        run.clock.set(T0 + 90 * MINUTE)
        third = run.queue("d", "desk")
        run.drain(T0 + 149 * MINUTE)
        assert len(receiver.requests) == 2
        run.drain(T0 + 150 * MINUTE)
        assert titles(receiver)[2:] == [f"[d] {third}"]
        status = run.store.status()
        assert (status.pending, status.failed) == (0, 0)
    finally:
        run.close()


QUIET = """
  night:
    urls: "{url}"
    quiet_hours: {{start: "22:00", end: "07:00", timezone: Europe/Kyiv}}
"""


def test_quiet_hours_hold_alerts_and_release_them_as_one_digest_when_they_end(
    tmp_path: Path, receiver: HTTPReceiver
) -> None:
    """Alerts due between 22:00 and 07:00 Kyiv time go out together at 07:00, no sooner."""
    night = QUIET.format(url=receiver.json_url("/night"))
    evening = datetime(2024, 6, 1, 18, 30, tzinfo=UTC)  # 21:30 in Kyiv (UTC+3)
    run = Harness(tmp_path, config_text(receiver, night), Clock(evening))
    try:
        before = run.queue("r", "night")
        run.drain(evening)
        assert titles(receiver, "/night") == [f"[r] {before}"]

        run.clock.set(datetime(2024, 6, 1, 19, 30, tzinfo=UTC))  # 22:30 in Kyiv
        held = [run.queue("r", "night"), run.queue("d", "night")]
        run.drain(run.clock())
        run.clock.set(datetime(2024, 6, 2, 1, 0, tzinfo=UTC))  # 04:00 in Kyiv
        held.append(run.queue("r", "night"))
        run.drain(run.clock())
        run.drain(datetime(2024, 6, 2, 3, 59, tzinfo=UTC))  # 06:59 in Kyiv
        assert len(titles(receiver, "/night")) == 1

        run.drain(datetime(2024, 6, 2, 4, 0, tzinfo=UTC))  # 07:00 in Kyiv
        (digest,) = [r for r in receiver.requests if r.path == "/night"][1:]
        assert digest.json["title"] == "3 new alerts"
        for headline in held:
            assert headline in digest.json["message"]
        assert before not in digest.json["message"]

        after = run.queue("r", "night")
        run.drain(datetime(2024, 6, 2, 4, 1, tzinfo=UTC))
        assert titles(receiver, "/night")[2:] == [f"[r] {after}"]
        assert run.store.status().pending == 0
    finally:
        run.close()


def test_a_429_pauses_the_whole_target_without_failing_and_survives_a_restart(
    tmp_path: Path, receiver: HTTPReceiver
) -> None:
    """After a 429 nothing goes to the target until the pause ends, even after a restart."""
    run = Harness(tmp_path, config_text(receiver), Clock(T0))
    try:
        receiver.respond_with(429, {"Retry-After": "60"}, count=1)
        one, two = run.queue("r", "desk"), run.queue("r", "desk")
        run.drain(T0)
        assert len(receiver.requests) == 1  # the second waits with the first
        state = run.store.target_states()["desk"]
        assert state.paused_until is not None and state.paused_until > T0
        assert state.failing_since is None  # a pause is not a failure

        run.restart()
        run.drain(state.paused_until - timedelta(seconds=1))
        assert len(receiver.requests) == 1
        run.drain(state.paused_until)
        assert titles(receiver)[1:] == [f"[r] {one}", f"[r] {two}"]
        (sent,) = {d for a in run.store.status().recent_alerts for d in a.deliveries.values()}
        assert sent is DeliveryState.SENT
    finally:
        run.close()


RATED = """
  slow:
    urls: "{url}"
    rate_limit: 2/min
"""


def test_a_rate_limit_spreads_a_burst_over_time_dropping_nothing(
    tmp_path: Path, receiver: HTTPReceiver
) -> None:
    """Five alerts to a 2/min target go out two a minute, oldest first, across a restart."""
    slow = RATED.format(url=receiver.json_url("/slow"))
    run = Harness(tmp_path, config_text(receiver, slow), Clock(T0))
    try:
        burst = [run.queue("r", "slow") for _ in range(5)]
        run.drain(T0)
        assert len(receiver.requests) == 2
        run.drain(T0 + 30 * timedelta(seconds=1))
        assert len(receiver.requests) == 2
        run.restart()  # the send log is in the store: the window survives
        run.drain(T0 + 59 * timedelta(seconds=1))
        assert len(receiver.requests) == 2
        run.drain(T0 + MINUTE)
        assert len(receiver.requests) == 4
        run.drain(T0 + 2 * MINUTE)
        assert titles(receiver) == [f"[r] {headline}" for headline in burst]
        assert run.store.status().pending == 0
    finally:
        run.close()


HEALTH = """
health:
  feed_failing_after: 1h
  target_failing_after: 30m
  notify: [ops]
"""


def test_a_failing_target_sends_one_health_alert_then_one_recovery(tmp_path: Path) -> None:
    """A target failing beyond target_failing_after alerts ops once, and once on recovery."""
    with HTTPReceiver() as flaky, HTTPReceiver() as ops:
        targets = f'  ops: "{ops.json_url("/ops")}"\n  flaky: "{flaky.json_url("/flaky")}"\n'
        run = Harness(tmp_path, config_text(flaky, targets, HEALTH), Clock(T0))
        try:
            flaky.respond_with(500)
            headline = run.queue("r", "flaky")
            run.drain(T0)
            run.drain(T0 + 30 * MINUTE)  # retried, still failing, not longer than 30m
            assert titles(ops) == []
            run.drain(T0 + 31 * MINUTE)
            assert titles(ops) == ["[news-monitor] Target flaky is failing"]
            assert "500" in ops.requests[0].json["message"]
            run.drain(T0 + 3 * 60 * MINUTE)
            assert len(ops.requests) == 1

            flaky.reset()
            run.drain(T0 + 5 * 60 * MINUTE)
            assert titles(flaky)[-1] == f"[r] {headline}"
            assert titles(ops) == [
                "[news-monitor] Target flaky is failing",
                "[news-monitor] Target flaky recovered",
            ]
            run.drain(T0 + 6 * 60 * MINUTE)
            assert len(ops.requests) == 2
            assert run.store.status().pending == 0
        finally:
            run.close()


def test_a_failing_feed_sends_one_health_alert_then_one_recovery(
    tmp_path: Path, receiver: HTTPReceiver
) -> None:
    """A feed failing beyond feed_failing_after alerts once from its first error, then recovers."""
    ops = f'  ops: "{receiver.json_url("/ops")}"\n'
    run = Harness(tmp_path, config_text(receiver, ops, HEALTH), Clock(T0))
    try:
        for minutes, streak in ((0, 1), (20, 2), (50, 3)):
            run.clock.set(T0 + minutes * MINUTE)
            run.feed_polled(streak=streak)
            run.drain(run.clock())
        run.drain(T0 + 60 * MINUTE)
        assert titles(receiver) == []
        run.drain(T0 + 61 * MINUTE)
        run.drain(T0 + 62 * MINUTE)
        assert titles(receiver) == ["[news-monitor] Feed Test Feed is failing"]
        assert "3 failed attempts" in receiver.requests[0].json["message"]

        run.clock.set(T0 + 70 * MINUTE)
        run.feed_polled(streak=0)
        run.drain(run.clock())
        run.drain(T0 + 80 * MINUTE)
        assert titles(receiver) == [
            "[news-monitor] Feed Test Feed is failing",
            "[news-monitor] Feed Test Feed recovered",
        ]
    finally:
        run.close()


def test_feed_health_alerts_wait_while_the_network_is_down(
    tmp_path: Path, receiver: HTTPReceiver
) -> None:
    """During an outage (and just after) a long-failing feed sends no health alert; once the
    network has settled and the feed still fails, it does."""
    ops = f'  ops: "{receiver.json_url("/ops")}"\n'
    run = Harness(tmp_path, config_text(receiver, ops, HEALTH), Clock(T0))
    try:
        for minutes, streak in ((0, 1), (20, 2), (50, 3)):
            run.clock.set(T0 + minutes * MINUTE)
            run.feed_polled(streak=streak)
        moment = [0.0]
        watch = run.daemon.network = OutageWatch(clock=lambda: moment[0])
        for host in ("a.example", "b.example", "c.example"):
            watch.record(host, reached=False)
        run.drain(T0 + 62 * MINUTE)
        assert titles(receiver) == []
        watch.record("a.example", reached=True)  # back, not settled: streaks date from the outage
        run.drain(T0 + 63 * MINUTE)
        assert titles(receiver) == []
        moment[0] += SETTLE_SECONDS  # settled, and the feed fails still: its own fault
        run.drain(T0 + 64 * MINUTE)
        assert titles(receiver) == ["[news-monitor] Feed Test Feed is failing"]
    finally:
        run.close()


def test_a_target_failing_past_retry_for_ends_failed_and_429s_never_count(
    tmp_path: Path, receiver: HTTPReceiver
) -> None:
    """Retries back off until retry_for, then the delivery is failed; pauses add no attempt."""
    text = config_text(receiver).replace("feeds:", "delivery: {retry_for: 10m}\nfeeds:", 1)
    run = Harness(tmp_path, text, Clock(T0))
    try:
        receiver.respond_with(429, count=1)
        receiver.respond_with(500)
        run.queue("r", "desk")
        run.drain(T0)  # 429: paused
        moment = T0
        while run.store.status().pending and moment < T0 + 60 * MINUTE:
            moment += MINUTE
            run.drain(moment)
        status = run.store.status()
        assert (status.pending, status.failed) == (0, 1)
        ((_, target, error),) = status.failed_deliveries
        assert target == "desk" and error is not None and "500" in error
        # One 429, then attempts at backoff pace (30s, 1m, 2m, 4m... with jitter) for 10 minutes.
        assert 4 <= len(receiver.requests) <= 7
    finally:
        run.close()


def test_an_overdue_digest_goes_at_once_and_a_failed_one_retries_whole(
    tmp_path: Path, receiver: HTTPReceiver
) -> None:
    """A digest whose period passed while the service was down goes in the first round; a
    failed digest is retried as the same one message."""
    run = Harness(tmp_path, config_text(receiver), Clock(T0))
    try:
        batch = [run.queue("d", "desk"), run.queue("d", "desk")]
        receiver.respond_with(500, count=1)
        run.drain(T0 + 3 * 60 * MINUTE)  # first round after a long stop: sent, refused
        assert len(receiver.requests) == 1
        retry = {q.due for q in run.store.batch_members("desk", "digest:d")}
        assert len(retry) == 1  # both members wait for the same retry
        run.drain(retry.pop())
        first, second = receiver.requests
        assert first.json == second.json
        assert second.json["title"] == "[d] 2 new alerts"
        assert all(headline in second.json["message"] for headline in batch)
        assert run.store.status().pending == 0
    finally:
        run.close()
