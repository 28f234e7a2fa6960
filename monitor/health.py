"""Health alerts (SPEC §5): a feed or a target failing for too long, and its recovery.

A feed is failing from the first error of its current streak (the store keeps
``failing_since`` on its row; any successful poll ends the streak). A target
is failing from its first failed delivery attempt since it last accepted a
message; a 429 pause is not a failure. Once a streak has lasted longer than
``health.feed_failing_after`` / ``health.target_failing_after``, one
"failing" alert goes to the targets in ``health.notify``; when the streak
ends, one "recovered" alert.

Health alerts are stored as alerts of the reserved rule :data:`HEALTH_RULE`
and go through the same durable outbox as rule alerts (quiet hours and rate
limits apply to them too), so a crash loses none. Queuing the alert and
remembering which streak it named are one transaction, and the alert's story
names the streak, so none is sent twice. A target's own failing alert is not
sent to that target. With ``health.notify`` empty nothing is queued.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from monitor.config import Config
from monitor.logs import event
from monitor.model import AlertIntent, AlertRecord
from monitor.outbox_policy import HealthEvent, health_event
from monitor.render import utc_text
from monitor.store import Store
from monitor.store.base import FeedHealth, HealthNotice, HealthSubject, TargetState

log = logging.getLogger("monitor")

# Rule names in alerts come from the configuration; this one marks health alerts.
HEALTH_RULE = "news-monitor health"
_ERROR_MAX = 300


def is_health(alert: AlertRecord) -> bool:
    """Whether ``alert`` is a health alert rather than a rule's match."""
    return alert.rule == HEALTH_RULE


def _since(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _duration(start: datetime, now: datetime) -> str:
    minutes = max(0, int((now - start).total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days}d" if days else "", f"{hours}h" if hours else "", f"{minutes}m"]
    return "".join(part for part in parts if part) if (days or hours) else f"{minutes}m"


def _error(text: str | None) -> str:
    text = " ".join((text or "unknown error").split())
    return text if len(text) <= _ERROR_MAX else text[: _ERROR_MAX - 1] + "…"


def feed_notices(
    feeds: Sequence[FeedHealth],
    names: Mapping[str, str],
    config: Config,
    now: datetime,
) -> list[HealthNotice]:
    """The health alerts due now for these feeds (``names``: URL -> display name)."""
    notify = tuple(config.health.notify)
    notices = []
    for feed in feeds:
        happened = health_event(
            feed.failing_since, feed.health_alert_since, now, config.health.feed_failing_after
        )
        if happened is None or not notify:
            continue
        name = names.get(feed.url) or feed.title or feed.url
        if happened is HealthEvent.FAILING:
            assert feed.failing_since is not None  # health_event said so
            since, alerted = feed.failing_since, feed.failing_since
            title = f"Feed {name} is failing"
            summary = (
                f"No successful fetch for {_duration(since, now)} (since "
                f"{utc_text(since)}, {feed.error_streak} failed attempts). "
                f"Last error: {_error(feed.error)}"
            )
        else:
            assert feed.health_alert_since is not None
            since, alerted = feed.health_alert_since, None
            title = f"Feed {name} recovered"
            summary = f"Fetched successfully again after failing since {utc_text(since)}."
        story = f"feed:{feed.url}:{happened}:{_since(since)}"
        alert = _alert(story, name, feed.url, title, summary, notify)
        notices.append(HealthNotice(HealthSubject.FEED, feed.url, alert, alerted))
    return notices


def target_notices(
    targets: Mapping[str, TargetState], config: Config, now: datetime
) -> list[HealthNotice]:
    """The health alerts due now for configured targets."""
    notify = tuple(config.health.notify)
    notices = []
    for name, state in targets.items():
        if name not in config.targets or not notify:
            continue
        happened = health_event(
            state.failing_since, state.health_alert_since, now, config.health.target_failing_after
        )
        if happened is HealthEvent.FAILING:
            assert state.failing_since is not None
            since, alerted = state.failing_since, state.failing_since
            title = f"Target {name} is failing"
            summary = (
                f"Deliveries have failed for {_duration(since, now)} (since "
                f"{utc_text(since)}); they are retried. Last error: {_error(state.last_error)}"
            )
            # The failing target would not receive its own alert.
            recipients = tuple(t for t in notify if t != name)
        elif happened is HealthEvent.RECOVERED:
            assert state.health_alert_since is not None
            since, alerted = state.health_alert_since, None
            title = f"Target {name} recovered"
            summary = f"Accepting messages again after failing since {utc_text(since)}."
            recipients = notify
        else:
            continue
        story = f"target:{name}:{happened}:{_since(since)}"
        alert = _alert(story, name, f"target:{name}", title, summary, recipients)
        notices.append(HealthNotice(HealthSubject.TARGET, name, alert, alerted))
    return notices


def _alert(
    story: str, name: str, source: str, title: str, summary: str, targets: tuple[str, ...]
) -> AlertIntent:
    return AlertIntent(
        rule=HEALTH_RULE,
        story=f"health:{story}",
        feed=name,
        feed_url=source,
        title=title,
        link=None,
        published=None,
        summary=summary,
        terms=(),
        hits=(),
        targets=targets,
    )


def queue_health_alerts(
    config: Config, store: Store, urls: Sequence[str], now: datetime, *, feeds: bool = True
) -> int:
    """Queue the health alerts due now for the feeds ``urls`` and every target; return how many.

    Cheap when all is well: two small reads, of failing feeds and of targets.
    ``feeds=False`` leaves the feeds out, while the network itself is down or
    has just come back (monitor.outage): every feed fails then, and one alert
    per feed would be a flood about nothing the feeds did.
    """
    if not config.health.notify:
        return 0
    notices = []
    if feeds:
        names = {}
        for url in urls:
            feed = config.feed_by_url(url)
            if feed is not None and feed.name:
                names[url] = feed.name
        notices += feed_notices(store.feed_health(urls), names, config, now)
    notices += target_notices(store.target_states(), config, now)
    queued = 0
    for notice in notices:
        if store.queue_health(notice, now):
            queued += 1
            event(
                log,
                logging.WARNING,
                "health.alert",
                subject=str(notice.subject),
                name=notice.alert.feed,
                alert=notice.alert.title,
            )
    return queued
