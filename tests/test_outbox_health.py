"""Health alerts as values (monitor.health) and how they read (monitor.render.render_health)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.config import Config, load_config
from monitor.health import HEALTH_RULE, feed_notices, is_health, target_notices
from monitor.model import AlertRecord, FeedStatus
from monitor.render import render_health
from monitor.store.base import FeedHealth, HealthSubject, TargetState

T0 = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
FEED = "https://news.example/rss"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """Two targets; health alerts go to both after 1h (feeds) and 30m (targets)."""
    path = tmp_path / "monitor.yaml"
    path.write_text(
        f"""
state: {tmp_path / "state.db"}
feeds:
  - url: {FEED}
    name: Wire
targets:
  ops: "json://127.0.0.1:9/ops"
  desk: "json://127.0.0.1:9/desk"
rules:
  - name: r
    query: drones
    notify: [desk]
health:
  feed_failing_after: 1h
  target_failing_after: 30m
  notify: [ops, desk]
""",
        encoding="utf-8",
    )
    return load_config(path)


def failing_feed(since: datetime | None, alerted: datetime | None) -> FeedHealth:
    """Feed health as the store reports it."""
    return FeedHealth(FEED, "Wire Title", FeedStatus.ERROR, "HTTP 503", 4, since, alerted)


def test_a_feed_alert_names_the_feed_its_streak_and_last_error(config: Config) -> None:
    """A failing alert goes to every health target, once per streak, with the details."""
    now = T0 + timedelta(hours=2)
    assert feed_notices([failing_feed(T0, None)], {}, config, T0 + timedelta(hours=1)) == []
    (notice,) = feed_notices([failing_feed(T0, None)], {FEED: "Wire"}, config, now)
    assert (notice.subject, notice.name, notice.alerted_since) == (HealthSubject.FEED, FEED, T0)
    alert = notice.alert
    assert (alert.rule, alert.title, alert.targets) == (
        HEALTH_RULE,
        "Feed Wire is failing",
        ("ops", "desk"),
    )
    assert "2h" in alert.summary and "4 failed attempts" in alert.summary
    assert "HTTP 503" in alert.summary
    assert feed_notices([failing_feed(T0, T0)], {}, config, now) == []
    (recovered,) = feed_notices([failing_feed(None, T0)], {}, config, now)
    assert recovered.alert.title == "Feed Wire Title recovered"
    assert recovered.alerted_since is None
    assert recovered.alert.story != alert.story


def test_a_failing_target_is_not_told_about_itself(config: Config) -> None:
    """The failing target's own alert goes to the other health targets only; recovery to all."""
    states = {
        "desk": TargetState("desk", failing_since=T0, last_error="500 from server"),
        "gone": TargetState("gone", failing_since=T0),  # no longer configured: ignored
    }
    (notice,) = target_notices(states, config, T0 + timedelta(minutes=31))
    assert (notice.alert.title, notice.alert.targets) == ("Target desk is failing", ("ops",))
    healed = {"desk": TargetState("desk", health_alert_since=T0)}
    (recovered,) = target_notices(healed, config, T0 + timedelta(hours=1))
    assert (recovered.alert.title, recovered.alert.targets) == (
        "Target desk recovered",
        ("ops", "desk"),
    )


@pytest.mark.parametrize("markdown", [True, False])
def test_a_health_alert_renders_without_match_details(markdown: bool) -> None:
    """Health alerts read as news-monitor notices, with feed text escaped for Markdown."""
    alert = AlertRecord(
        7, HEALTH_RULE, "Feed *Wire* is failing", None, None, "Last error: <b>503</b>",
        (), (), (), T0,
    )  # fmt: skip
    assert is_health(alert)
    message = render_health(alert, markdown=markdown)
    assert message.title == "[news-monitor] Feed *Wire* is failing"
    assert "Matched" not in message.body
    assert "2024-06-01 12:00 UTC" in message.body
    assert ("<b>" in message.body) is not markdown  # no tag reaches an HTML-rendering target
    assert ("\\*Wire\\*" in message.body) is markdown
