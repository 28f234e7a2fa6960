"""Prometheus metrics (SPEC §7), in a registry of the daemon's own.

A registry per daemon, not the process-global default, so that tests and
``demo`` can build several daemons in one process without collisions.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from monitor.model import DeliveryOutcome, FeedUpdateIntent, StatusReport


class Metrics:
    """Every series news-monitor exports, and how pipeline outcomes update them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.fetches = Counter(
            "news_monitor_fetches", "Feed polls by result", ["result"], registry=r
        )
        self.fetch_seconds = Histogram(
            "news_monitor_fetch_duration_seconds",
            "Time to fetch, parse and store one feed",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.entries_seen = Counter("news_monitor_entries_seen", "New entries recorded", registry=r)
        self.matches = Counter(
            "news_monitor_matches", "Alerts raised by rule", ["rule"], registry=r
        )
        self.deliveries = Counter(
            "news_monitor_deliveries",
            "Delivery attempts by target and result",
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
        self.feeds_in_error = Gauge(
            "news_monitor_feeds_in_error", "Feeds whose last poll failed", registry=r
        )
        self.last_tick = Gauge(
            "news_monitor_last_tick_timestamp_seconds",
            "Unix time of the scheduler's last completed tick",
            registry=r,
        )

    def polled(self, intent: FeedUpdateIntent, duration: float) -> None:
        """Count one poll's outcome."""
        self.fetches.labels(result=str(intent.status)).inc()
        self.fetch_seconds.observe(duration)
        self.entries_seen.inc(len(intent.seen))
        for alert in intent.alerts:
            self.matches.labels(rule=alert.rule).inc()

    def delivered(self, target: str, outcome: DeliveryOutcome) -> None:
        """Count one delivery attempt."""
        result = (
            "sent"
            if outcome.state == "sent"
            else "failed"
            if outcome.state == "failed"
            else "retry"
        )
        self.deliveries.labels(target=target, result=result).inc()

    def observe_store(self, report: StatusReport, now: datetime) -> None:
        """Refresh the gauges read from the store."""
        self.outbox_pending.set(report.pending)
        self.outbox_failed.set(report.failed)
        if report.oldest_pending is None:
            self.oldest_pending_age.set(0)
        else:
            self.oldest_pending_age.set((now - report.oldest_pending).total_seconds())
        self.feeds_in_error.set(sum(1 for f in report.feeds if f.status in ("error", "gone")))

    def exposition(self) -> bytes:
        """The Prometheus text format of every series."""
        return generate_latest(self.registry)
