"""One poll of one feed: the pipeline read left to right.

    FeedForUpdate ─► fetch ─► parse (process pool) ─► decide ─► store.apply

(The delivery half lives in :mod:`monitor.delivery`.)

This module calls the stages in order and owns no state beyond what the
:class:`Runtime` was built with; *when* things run is the scheduler's business
(:mod:`monitor.daemon`).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import random
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from monitor import __version__
from monitor.cadence import Cadence
from monitor.config import Config
from monitor.decide import (
    FeedSpec,
    RuleSpec,
    decide_entries,
    decide_failure,
    decide_unchanged,
    lookup_keys,
)
from monitor.errors import FeedError, FetchError
from monitor.fetch import Fetcher
from monitor.fetch.translate import hostport
from monitor.logs import event
from monitor.match import Matcher, compile_matcher
from monitor.metrics import Metrics
from monitor.model import (
    FeedForUpdate,
    FeedStatus,
    FeedUpdateIntent,
    ParsedFeed,
)
from monitor.notify import Notifier
from monitor.outage import OutageWatch
from monitor.parse import body_hash, parse_feed
from monitor.store import Store

log = logging.getLogger("monitor")

USER_AGENT = f"news-monitor/{__version__} (+https://github.com/news-monitor/news-monitor)"

Clock = Callable[[], datetime]

# Connections open at once.
MAX_CONNECTIONS = 64


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def feed_specs(config: Config) -> dict[str, FeedSpec]:
    """Each enabled feed's policy, with the rules whose scope includes it."""
    specs = {}
    for feed in config.feeds:
        if not feed.enabled:
            continue
        rules = tuple(
            RuleSpec(rule.name, tuple(rule.notify), rule.backfill)
            for rule in config.rules_for_feed(feed)
            if rule.enabled
        )
        specs[feed.url] = FeedSpec(
            url=feed.url,
            name=feed.name,
            interval=feed.interval or config.poll.interval,
            rules=rules,
            backfill=feed.backfill,
            jitter=config.poll.jitter,
            max_backoff=config.poll.max_backoff,
            max_age=config.delivery.max_age,
            story_window=config.delivery.story_window,
            cadence=Cadence(
                interval=feed.interval or config.poll.interval,
                min_interval=config.poll.min_interval,
                max_interval=config.poll.max_interval,
            )
            if (config.poll.adaptive if feed.adaptive is None else feed.adaptive)
            else None,
        )
    return specs


def parse_executor() -> Executor:
    """A process pool for feedparser, which is CPU-bound: one worker per core.

    Fork is avoided because the parent runs threads (asyncio, Apprise).
    """
    context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(max_workers=multiprocessing.cpu_count(), mp_context=context)


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll did, for progress and summaries.

    Counts rather than the intent itself: `run --once` holds a result per feed
    until the end, and 2,000 intents with their entries are tens of megabytes.
    """

    url: str
    status: FeedStatus
    error: str | None
    seen: int  # entries recorded
    alerts: int  # alerts queued
    duration: float


class Runtime:
    """Everything built from one configuration: matcher, fetcher, notifier, feed policies.

    A reload builds a new Runtime and swaps it in; the store and the parse pool
    outlive it. Fetching runs on the caller's event loop.
    """

    def __init__(self, config: Config, *, rng: random.Random | None = None) -> None:
        self.config = config
        self.specs = feed_specs(config)
        self.matcher: Matcher = compile_matcher(config)
        self.templates = {rule.name: rule.template for rule in config.rules}
        self.notifier = Notifier(
            {name: target.urls for name, target in config.targets.items()},
            secrets=config.secrets.values,
        )
        self.fetcher = Fetcher(
            user_agent=config.poll.user_agent or USER_AGENT,
            timeout=config.poll.timeout.total_seconds(),
            max_size=config.poll.max_size,
            per_host=config.poll.per_host,
            max_connections=MAX_CONNECTIONS,
        )
        self.rng = rng or random.Random()

    async def aclose(self) -> None:
        """Close network resources."""
        await self.fetcher.aclose()


async def poll_feed(
    runtime: Runtime,
    store: Store,
    executor: Executor | None,
    feed: FeedForUpdate,
    now: Clock,
    metrics: Metrics | None = None,
    network: OutageWatch | None = None,
) -> PollResult:
    """Fetch, parse, decide and store one feed. Expected failures become data, never raise.

    ``network`` learns whether the fetch reached its server; while it judges
    the network down, connection failures are not blamed on the feed.
    """
    spec = runtime.specs[feed.url]
    started = time.monotonic()
    fetch_seconds: float | None = None
    feed_config = runtime.config.feed_by_url(feed.url)
    try:
        fetched = await runtime.fetcher.fetch(
            feed.fetch_url,
            etag=feed.etag,
            last_modified=feed.last_modified,
            # Only a body already parsed successfully may be skipped.
            known_hash=feed.body_hash if feed.last_success is not None else None,
            timeout=feed_config.timeout.total_seconds()
            if feed_config and feed_config.timeout
            else None,
            max_size=feed_config.max_size if feed_config else None,
        )
        fetch_seconds = time.monotonic() - started
        _observe(network, feed.fetch_url, reached=True)
        digest = fetched.digest or body_hash(fetched.body)
        if fetched.not_modified or (feed.body_hash == digest and feed.last_success is not None):
            intent = decide_unchanged(feed, spec, fetched, now(), runtime.rng)
        else:
            parsed = await _parse(executor, fetched.body, dict(fetched.headers), fetched.url)
            # No await between lookup and apply: deciding and storing have one writer,
            # so two feeds carrying the same story cannot both alert it.
            ids, link_keys, title_keys = lookup_keys(parsed.entries)
            moment = now()
            lookup = store.lookup(feed.url, ids, link_keys, title_keys, moment - spec.story_window)
            intent = decide_entries(
                feed,
                spec,
                fetched,
                parsed,
                digest,
                lookup,
                runtime.matcher.match,
                moment,
                runtime.rng,
            )
    except FeedError as exc:
        if fetch_seconds is None:
            fetch_seconds = time.monotonic() - started
        if isinstance(exc, FetchError):
            _observe(network, feed.fetch_url, reached=not exc.network)
        down = network is not None and network.down
        intent = decide_failure(feed, spec, exc, now(), runtime.rng, network_down=down)
    store.apply(intent)
    duration = time.monotonic() - started
    _log_poll(feed, intent, duration)
    if metrics is not None:
        metrics.polled(intent, fetch_seconds)
    return PollResult(
        feed.url, intent.status, intent.error, len(intent.seen), len(intent.alerts), duration
    )


def _observe(network: OutageWatch | None, url: str, *, reached: bool) -> None:
    """Tell the outage watch how a fetch went; log the network going down or coming back."""
    if network is None:
        return
    change = network.record(hostport(url), reached=reached)
    if change is not None:
        if network.down:
            hosts = len(network.state.failures)
            event(log, logging.WARNING, str(change), hosts_unreachable=hosts)
        else:
            event(log, logging.INFO, str(change))


async def _parse(
    executor: Executor | None, body: bytes, headers: dict[str, str], url: str
) -> ParsedFeed:
    if executor is None:
        return parse_feed(body, headers, url)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, parse_feed, body, headers, url)


def _log_poll(feed: FeedForUpdate, intent: FeedUpdateIntent, duration: float) -> None:
    level = logging.WARNING if intent.status in ("error", "gone") else logging.INFO
    event(
        log,
        level,
        "feed.polled",
        feed=feed.url,
        status=str(intent.status),
        http=intent.http_status,
        new=len(intent.seen) or None,
        alerts=len(intent.alerts) or None,
        streak=intent.error_streak or None,
        error=intent.error,
        next_due=intent.next_due.isoformat(timespec="seconds"),
        duration=f"{duration:.3f}s",
    )
