"""When things run: the scheduler tick, the delivery loop, signals and reloads.

The scheduler holds no state the store does not (STYLE "The shape we
expect"): each feed's next due time lives in the store, and a short tick
dispatches the feeds whose time has come. APScheduler 3.11's
``AsyncIOScheduler`` drives two jobs, ``tick`` and ``deliver``; both run on
the event loop, while parsing runs in a process pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor.config import Config, load_config
from monitor.delivery import deliver_due
from monitor.errors import ConfigError, ConfigErrors, MonitorError
from monitor.http import Health, HTTPEndpoint
from monitor.logs import event
from monitor.metrics import Metrics
from monitor.model import FeedForUpdate
from monitor.pipeline import Clock, PollResult, Runtime, poll_feed, utcnow
from monitor.store import Store

log = logging.getLogger("monitor")

TICK_SECONDS = 1.0
# APScheduler's default grace of 1 s drops runs whenever the loop is busy for a moment.
MISFIRE_GRACE_SECONDS = 30
# How long SIGTERM waits for in-flight deliveries before closing the store.
SHUTDOWN_GRACE_SECONDS = 10.0
# /healthz turns 503 when no delivery round has completed for this long.
STALL_AFTER_SECONDS = 120.0
GAUGE_REFRESH_SECONDS = 15.0

Progress = Callable[[PollResult], None]


class Daemon:
    """The long-running service: polls due feeds and drains the outbox."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        executor: Executor | None = None,
        now: Clock = utcnow,
        stall_after: float = STALL_AFTER_SECONDS,
    ) -> None:
        self.runtime = Runtime(config)
        self.metrics = Metrics()
        self.stall_after = stall_after
        self._last_tick = time.monotonic()
        self._last_delivery = time.monotonic()
        self._last_gauges = 0.0
        self.store = store
        self.executor = executor
        self.now = now
        self._polls: dict[str, asyncio.Task[PollResult | None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._stop = asyncio.Event()
        self._retired: list[Runtime] = []
        store.sync_feeds(list(self.runtime.specs), now())

    @property
    def feed_urls(self) -> list[str]:
        """The enabled feeds of the running configuration."""
        return list(self.runtime.specs)

    # -- one pass, for `run --once` ----------------------------------------

    async def run_once(self, progress: Progress | None = None) -> list[PollResult]:
        """Poll every enabled feed once, then try every pending delivery once."""
        feeds = self.store.feeds(self.feed_urls)
        limit = asyncio.Semaphore(self.runtime.config.poll.concurrency)

        async def one(feed: FeedForUpdate) -> PollResult:
            async with limit:
                result = await poll_feed(
                    self.runtime, self.store, self.executor, feed, self.now, self.metrics
                )
            if progress:
                progress(result)
            return result

        results = await asyncio.gather(*(one(feed) for feed in feeds if feed.status != "gone"))
        await self.drain_outbox()
        return list(results)

    async def drain_outbox(self) -> None:
        """Try each delivery that is due now once (retries wait for their time)."""
        tried: set[int] = set()
        while attempted := await deliver_due(
            self.runtime, self.store, self.now, exclude=frozenset(tried), metrics=self.metrics
        ):
            tried.update(attempted)

    # -- the service, for `run` --------------------------------------------

    async def run_forever(
        self, config_path: Path | None = None, http: tuple[str, int] | None = None
    ) -> None:
        """Run until SIGTERM/SIGINT; SIGHUP reloads ``config_path``; ``http`` serves /healthz."""
        loop = asyncio.get_running_loop()
        endpoint = HTTPEndpoint(self.health, self.metrics.exposition)
        if http is not None:
            await endpoint.start(*http)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        if config_path is not None:
            loop.add_signal_handler(signal.SIGHUP, self.reload, config_path)
        scheduler = AsyncIOScheduler(
            job_defaults={
                "misfire_grace_time": MISFIRE_GRACE_SECONDS,
                "coalesce": True,
                "max_instances": 1,
            }
        )
        scheduler.add_job(self.tick, "interval", seconds=TICK_SECONDS, id="tick")
        scheduler.add_job(self.deliver, "interval", seconds=TICK_SECONDS, id="deliver")
        scheduler.start()
        event(log, logging.INFO, "daemon.started", feeds=len(self.feed_urls))
        await self.tick()
        await self._stop.wait()
        scheduler.shutdown(wait=False)
        await endpoint.close()
        await self._shutdown()

    def stop(self) -> None:
        """Ask the service to stop (signal handlers call this)."""
        event(log, logging.INFO, "daemon.stopping")
        self._stop.set()

    async def tick(self) -> None:
        """Start a poll for each due feed, up to the concurrency limit; never waits for them."""
        self._last_tick = time.monotonic()
        self.metrics.last_tick.set(time.time())
        free = self.runtime.config.poll.concurrency - len(self._polls)
        if free <= 0 or self._stop.is_set():
            return
        due = self.store.due_feeds(self.feed_urls, self.now(), free + len(self._polls))
        for feed in due:
            if feed.url in self._polls or len(self._polls) >= self.runtime.config.poll.concurrency:
                continue
            task = asyncio.create_task(self._poll(feed), name=f"poll {feed.url}")
            self._polls[feed.url] = task

    async def _poll(self, feed: FeedForUpdate) -> PollResult | None:
        try:
            return await poll_feed(
                self.runtime, self.store, self.executor, feed, self.now, self.metrics
            )
        except MonitorError as exc:
            event(log, logging.ERROR, "feed.poll_failed", feed=feed.url, error=str(exc))
        except Exception:
            # A bug: logged loudly with its traceback; the service carries on (STYLE point 5).
            log.exception("bug while polling %s", feed.url)
        finally:
            self._polls.pop(feed.url, None)
        return None

    async def deliver(self) -> None:
        """Send what is due in the outbox."""
        if self._stop.is_set():
            return
        self._idle.clear()
        try:
            await deliver_due(self.runtime, self.store, self.now, metrics=self.metrics)
            self._last_delivery = time.monotonic()
            if self._last_delivery - self._last_gauges >= GAUGE_REFRESH_SECONDS:
                self._last_gauges = self._last_delivery
                self.metrics.observe_store(self.store.status(recent=0), self.now())
        except Exception:
            log.exception("bug while delivering")
        finally:
            self._idle.set()

    def health(self) -> Health:
        """Healthy while the scheduler ticks and the delivery worker completes its rounds."""
        moment = time.monotonic()
        tick_age = moment - self._last_tick
        delivery_age = moment - self._last_delivery
        details: dict[str, object] = {
            "last_tick_seconds_ago": round(tick_age, 1),
            "last_delivery_round_seconds_ago": round(delivery_age, 1),
        }
        if self._stop.is_set():
            return Health(False, "shutting down", details)
        if tick_age > MISFIRE_GRACE_SECONDS:
            return Health(False, f"scheduler has not ticked for {tick_age:.0f}s", details)
        if delivery_age > self.stall_after:
            return Health(False, f"delivery stalled for {delivery_age:.0f}s", details)
        return Health(True, "polling and delivering", details)

    def reload(self, config_path: Path) -> None:
        """Load ``config_path`` again; keep the running configuration if it is invalid."""
        try:
            config = load_config(config_path)
            runtime = Runtime(config)
        except ConfigErrors as exc:
            for error in exc.errors:
                event(log, logging.ERROR, "config.invalid", error=str(error))
            event(log, logging.ERROR, "config.reload_rejected", errors=len(exc.errors))
            return
        except (ConfigError, MonitorError) as exc:
            event(log, logging.ERROR, "config.reload_rejected", error=str(exc))
            return
        self._retired.append(self.runtime)
        self.runtime = runtime
        self.store.sync_feeds(self.feed_urls, self.now())
        event(
            log,
            logging.INFO,
            "config.reloaded",
            feeds=len(runtime.specs),
            rules=len(runtime.matcher.rules),
        )

    async def _shutdown(self) -> None:
        polls = list(self._polls.values())
        for task in polls:
            task.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
        # In-flight deliveries finish (bounded); what is left stays pending in the store.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SHUTDOWN_GRACE_SECONDS):
                await self._idle.wait()
        for runtime in [*self._retired, self.runtime]:
            await runtime.aclose()
        event(log, logging.INFO, "daemon.stopped")
