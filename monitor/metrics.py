"""Prometheus metrics (SPEC §7, issue 6), in a registry of the daemon's own.

A registry per daemon, not the process-global default, so that tests and
``demo`` can build several daemons in one process without collisions.

Counters move as pipeline outcomes happen (:meth:`Metrics.polled`,
:meth:`Metrics.delivered`); the gauges read from the store (outbox depth,
oldest pending age, feeds in error) are refreshed when scraped, so a scrape
always shows the store as it is (see ``Daemon.exposition``).
"""

from __future__ import annotations

import time
from datetime import datetime

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

from monitor import __version__
from monitor.model import DeliveryOutcome, DeliveryState, FeedUpdateIntent, StatusReport

# news_monitor_feeds_failing{streak=N}: how many feeds have failed N polls in a row or more.
STREAK_STEPS = (1, 3, 10)
# The label a delivery attempt is counted under, by how it ended.
SENT, RETRY, PAUSED, FAILED = "sent", "retry", "paused", "failed"


def delivery_result(outcome: DeliveryOutcome) -> str:
    """``sent``, ``failed`` (given up), ``paused`` (the target said 429) or ``retry``."""
    if outcome.state is DeliveryState.SENT:
        return SENT
    if outcome.state is DeliveryState.FAILED:
        return FAILED
    return RETRY if outcome.count_attempt else PAUSED


class Metrics:
    """Every series news-monitor exports, and how pipeline outcomes update them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        # time.monotonic() of the last finished delivery attempt: /healthz's "progress".
        self.last_delivery_progress = 0.0
        Info("news_monitor_build", "The running version", registry=r).info({"version": __version__})
        self.fetches = Counter(
            "news_monitor_fetches",
            "Feed polls by result (ok, not-modified, unchanged, error, gone)",
            ["result"],
            registry=r,
        )
        self.fetch_seconds = Histogram(
            "news_monitor_fetch_duration_seconds",
            "Time to fetch one feed (HTTP exchange and body, redirects included), ok or not",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.entries_seen = Counter("news_monitor_entries_seen", "New entries recorded", registry=r)
        self.matches = Counter(
            "news_monitor_matches",
            "Rule matches on new entries, by rule: each raised an alert or joined one as a source",
            ["rule"],
            registry=r,
        )
        self.alerts = Counter(
            "news_monitor_alerts",
            "Alerts by target and result: queued, then sent or failed (given up)",
            ["target", "result"],
            registry=r,
        )
        self.deliveries = Counter(
            "news_monitor_deliveries",
            "Delivery attempts by target and result (sent, retry, paused, failed)",
            ["target", "result"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "news_monitor_outbox_pending", "Deliveries waiting in the outbox", registry=r
        )
        self.outbox_failed = Gauge(
            "news_monitor_outbox_failed", "Deliveries given up after retry_for", registry=r
        )
        self.oldest_pending_age = Gauge(
            "news_monitor_outbox_oldest_pending_age_seconds",
            "Age of the oldest pending delivery (0 when none)",
            registry=r,
        )
        self.feeds = Gauge("news_monitor_feeds", "Feeds in the running configuration", registry=r)
        self.feeds_in_error = Gauge(
            "news_monitor_feeds_in_error", "Feeds whose last poll failed (or were Gone)", registry=r
        )
        # Per-feed series would carry feed URLs (tokens live in some) and thousands of
        # labels; the streaks are shown per feed by `status`, summarised here.
        self.feeds_failing = Gauge(
            "news_monitor_feeds_failing",
            "Feeds whose error streak (failed polls in a row) is at least `streak`",
            ["streak"],
            registry=r,
        )
        self.longest_streak = Gauge(
            "news_monitor_feed_error_streak_max",
            "The longest error streak of any feed (0 when every feed is fine)",
            registry=r,
        )
        self.last_tick = Gauge(
            "news_monitor_last_tick_timestamp_seconds",
            "Unix time of the scheduler's last successful tick",
            registry=r,
        )
        self.reloads = Counter(
            "news_monitor_config_reloads",
            "Configuration reloads by result (applied, rejected)",
            ["result"],
            registry=r,
        )
        self.reload_ok = Gauge(
            "news_monitor_config_last_reload_successful",
            "1 when the last reload was applied (or none was tried), 0 when it was rejected",
            registry=r,
        )
        self.reload_ok.set(1)
        self.bugs = Counter(
            "news_monitor_bugs",
            "Unexpected exceptions caught (each logged with its traceback), by where",
            ["where"],
            registry=r,
        )

    def polled(self, intent: FeedUpdateIntent, fetch_seconds: float) -> None:
        """Count one poll's outcome; ``fetch_seconds`` is the HTTP part of it."""
        self.fetches.labels(result=str(intent.status)).inc()
        self.fetch_seconds.observe(fetch_seconds)
        self.entries_seen.inc(len(intent.seen))
        for source in intent.sources:
            self.matches.labels(rule=source.rule).inc()
        for alert in intent.alerts:
            self.matches.labels(rule=alert.rule).inc()
            for target in alert.targets:
                self.alerts.labels(target=target, result="queued").inc()

    def delivered(self, target: str, outcome: DeliveryOutcome) -> None:
        """Count one delivery attempt (and the alert's end, when it has one)."""
        self.last_delivery_progress = time.monotonic()
        result = delivery_result(outcome)
        self.deliveries.labels(target=target, result=result).inc()
        if result in (SENT, FAILED):
            self.alerts.labels(target=target, result=result).inc()

    def observe_store(self, report: StatusReport, now: datetime) -> None:
        """Refresh the gauges read from the store."""
        self.outbox_pending.set(report.pending)
        self.outbox_failed.set(report.failed)
        if report.oldest_pending is None:
            self.oldest_pending_age.set(0)
        else:
            age = (now - report.oldest_pending).total_seconds()
            self.oldest_pending_age.set(max(0.0, age))

    def observe_feeds(self, report: StatusReport, urls: frozenset[str]) -> None:
        """Refresh the feed gauges, counting only the feeds of the running configuration."""
        mine = [f for f in report.feeds if f.url in urls]
        self.feeds.set(len(urls))
        self.feeds_in_error.set(sum(1 for f in mine if f.status in ("error", "gone")))
        streaks = [f.error_streak for f in mine]
        for at_least in STREAK_STEPS:
            self.feeds_failing.labels(streak=str(at_least)).set(
                sum(1 for s in streaks if s >= at_least)
            )
        self.longest_streak.set(max(streaks, default=0))

    def exposition(self) -> bytes:
        """The Prometheus text format of every series."""
        return generate_latest(self.registry)
