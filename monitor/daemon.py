"""When things run: the scheduler tick, the delivery loop, signals and reloads.

The scheduler holds no state the store does not (STYLE "The shape we
expect"): each feed's next due time lives in the store, and a short tick
dispatches the feeds whose time has come. APScheduler 3.11's
``AsyncIOScheduler`` drives three jobs, ``tick``, ``deliver`` and
``watch-config``; all run on the event loop, while parsing runs in a process
pool.

Operations (issue 6): ``/healthz`` reports whether the scheduler ticks and the
delivery worker makes progress; SIGHUP, or a change of the configuration
file, reloads it (validated first, applied without losing work); SIGTERM and
SIGINT stop within a bounded time, leaving pending work in the store; under
systemd the daemon speaks ``sd_notify`` (:mod:`monitor.sdnotify`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import signal
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from monitor.config import Config, Secrets, load_config
from monitor.delivery import deliver_due
from monitor.errors import ConfigError, ConfigErrors, MonitorError
from monitor.http import Health, HTTPEndpoint, Liveness, judge_health
from monitor.logs import event, reconfigure_logging
from monitor.metrics import Metrics
from monitor.model import FeedForUpdate
from monitor.outage import OutageWatch
from monitor.pipeline import Clock, PollResult, Runtime, poll_feed, utcnow
from monitor.sdnotify import SystemdNotifier
from monitor.store import Store

log = logging.getLogger("monitor")

TICK_SECONDS = 1.0
# APScheduler's default grace of 1 s drops runs whenever the loop is busy for a moment.
MISFIRE_GRACE_SECONDS = 30
# How long SIGTERM waits for in-flight deliveries before closing the store. Below
# Docker's default stop timeout (10 s) so that the daemon, not SIGKILL, ends the run.
SHUTDOWN_GRACE_SECONDS = 8.0
# The default of ``health.stall_after``, for daemons built without a configuration value.
STALL_AFTER_SECONDS = 120.0
GAUGE_REFRESH_SECONDS = 15.0
# How often the configuration file's modification time is checked.
CONFIG_WATCH_SECONDS = 2.0

Progress = Callable[[PollResult], None]
_Signature = tuple[int, int, int]


class Daemon:
    """The long-running service: polls due feeds and drains the outbox."""

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        executor: Executor | None = None,
        now: Clock = utcnow,
        stall_after: float | None = None,
        systemd: SystemdNotifier | None = None,
    ) -> None:
        self.runtime = Runtime(config)
        self.metrics = Metrics()
        # Outlives reloads: whether the network is down is not configuration.
        self.network = OutageWatch()
        self._stall_override = stall_after
        self.stall_after = _stall_after(config, stall_after)
        self._last_tick = time.monotonic()
        self._last_delivery = time.monotonic()
        self._last_round_end = time.monotonic()
        self._round_started: float | None = None
        self._round_task: asyncio.Task[object] | None = None
        self._last_gauges = 0.0
        self.store = store
        self.executor = executor
        self.now = now
        self.systemd = systemd or SystemdNotifier()
        self._polls: dict[str, asyncio.Task[PollResult | None]] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._stop = asyncio.Event()
        self._hurry = asyncio.Event()
        self._retired: list[Runtime] = []
        self._background: set[asyncio.Task[None]] = set()
        self._config_seen: tuple[_Signature | None, str | None] = (None, None)
        # True when shutdown gave up waiting on a delivery still running in a thread.
        self.abandoned = False
        store.sync_feeds(list(self.runtime.specs), now())
        self.metrics.feeds.set(len(self.runtime.specs))

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
                    self.runtime,
                    self.store,
                    self.executor,
                    feed,
                    self.now,
                    self.metrics,
                    self.network,
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
            self.runtime,
            self.store,
            self.now,
            exclude=frozenset(tried),
            metrics=self.metrics,
            feed_health=self.network.settled(),
        ):
            tried.update(attempted)

    # -- the service, for `run` --------------------------------------------

    async def run_forever(
        self, config_path: Path | None = None, http: tuple[str, int] | None = None
    ) -> None:
        """Run until SIGTERM/SIGINT; SIGHUP reloads ``config_path``; ``http`` serves /healthz."""
        # Imported here: `run --once` and `demo` never schedule, and should not load it.
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        loop = asyncio.get_running_loop()
        endpoint = HTTPEndpoint(self.health, self.exposition)
        if http is not None:
            await endpoint.start(*http)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        scheduler = AsyncIOScheduler(
            job_defaults={
                "misfire_grace_time": MISFIRE_GRACE_SECONDS,
                "coalesce": True,
                "max_instances": 1,
            }
        )
        if config_path is not None:
            self._config_seen = _fingerprint(config_path)
            loop.add_signal_handler(signal.SIGHUP, self.reload, config_path, "signal")
            scheduler.add_job(
                self.watch_config,
                "interval",
                args=[config_path],
                seconds=CONFIG_WATCH_SECONDS,
                id="watch-config",
            )
        scheduler.add_job(self.tick, "interval", seconds=TICK_SECONDS, id="tick")
        scheduler.add_job(self.delivery_round, "interval", seconds=TICK_SECONDS, id="deliver")
        scheduler.start()
        if self.systemd.watchdog_interval is not None:
            self._spawn(self._watchdog())
        event(log, logging.INFO, "daemon.started", feeds=len(self.feed_urls))
        await self.tick()
        self.systemd.ready(f"polling {len(self.feed_urls)} feeds")
        try:
            await self._stop.wait()
        finally:
            # Pause, not shut down: APScheduler's shutdown cancels running jobs, and the
            # delivery round in flight should finish (bounded) and record its outcomes.
            scheduler.pause()
            await endpoint.close()
            await self._shutdown()
            scheduler.shutdown(wait=False)

    def stop(self) -> None:
        """Ask the service to stop (signal handlers call this); a second call hurries it."""
        if self._stop.is_set():
            event(log, logging.WARNING, "daemon.stopping_now")
            self._hurry.set()
            return
        event(log, logging.INFO, "daemon.stopping", grace=f"{SHUTDOWN_GRACE_SECONDS:g}s")
        self.systemd.stopping()
        self._stop.set()

    async def tick(self) -> None:
        """Start a poll for each due feed, up to the concurrency limit; never waits for them."""
        self._last_tick = time.monotonic()
        if self._stop.is_set():
            return
        free = self.runtime.config.poll.concurrency - len(self._polls)
        if free > 0:
            try:
                due = self.store.due_feeds(self.feed_urls, self.now(), free + len(self._polls))
            except MonitorError as exc:
                event(log, logging.ERROR, "tick.failed", error=str(exc))
                return
            for feed in due:
                if (
                    feed.url in self._polls
                    or len(self._polls) >= self.runtime.config.poll.concurrency
                ):
                    continue
                task = asyncio.create_task(self._poll(feed), name=f"poll {feed.url}")
                self._polls[feed.url] = task
        self.metrics.last_tick.set(time.time())

    async def _poll(self, feed: FeedForUpdate) -> PollResult | None:
        try:
            return await poll_feed(
                self.runtime, self.store, self.executor, feed, self.now, self.metrics, self.network
            )
        except MonitorError as exc:
            event(log, logging.ERROR, "feed.poll_failed", feed=feed.url, error=str(exc))
        except Exception:
            # A bug: logged loudly with its traceback; the service carries on (STYLE point 5).
            self.metrics.bugs.labels(where="poll").inc()
            log.exception("bug while polling %s", feed.url)
        finally:
            self._polls.pop(feed.url, None)
        return None

    async def delivery_round(self) -> None:
        """One scheduled round of :meth:`deliver`, timed for ``/healthz``."""
        self._round_started = time.monotonic()
        self._round_task = asyncio.current_task()
        try:
            await self.deliver()
        except asyncio.CancelledError:
            if not self._stop.is_set():
                raise
            # Shutdown gave up on this round; its unrecorded deliveries stay pending.
        finally:
            self._round_started = None
            self._round_task = None
            self._last_round_end = time.monotonic()

    async def deliver(self) -> None:
        """Send what is due in the outbox."""
        if self._stop.is_set():
            return
        self._idle.clear()
        try:
            await deliver_due(
                self.runtime,
                self.store,
                self.now,
                metrics=self.metrics,
                feed_health=self.network.settled(),
            )
            self._last_delivery = time.monotonic()
            if self._last_delivery - self._last_gauges >= GAUGE_REFRESH_SECONDS:
                self._last_gauges = self._last_delivery
                self.metrics.observe_store(self.store.status(recent=0), self.now())
        except Exception:
            log.exception("bug while delivering")
        finally:
            self._idle.set()

    # -- watching it --------------------------------------------------------

    def health(self) -> Health:
        """Healthy while the scheduler ticks and the delivery worker makes progress."""
        return judge_health(
            Liveness(
                now=time.monotonic(),
                last_tick=self._last_tick,
                round_started=self._round_started,
                last_progress=self.metrics.last_delivery_progress,
                last_round_end=self._last_round_end,
                stopping=self._stop.is_set(),
                polls_in_flight=len(self._polls),
            ),
            stall_after=self.stall_after,
            tick_grace=MISFIRE_GRACE_SECONDS,
        )

    def exposition(self) -> bytes:
        """``/metrics``: refresh the gauges read from the store, then render every series."""
        try:
            report = self.store.status(recent=0)
            self.metrics.observe_store(report, self.now())
            self.metrics.observe_feeds(report, frozenset(self.feed_urls))
        except MonitorError as exc:
            event(log, logging.ERROR, "metrics.store_unreadable", error=str(exc))
        return self.metrics.exposition()

    async def _watchdog(self) -> None:
        """Ping systemd's watchdog while the scheduler ticks (a blocked loop stops the pings)."""
        interval = self.systemd.watchdog_interval or 1.0
        while not self._stop.is_set():
            if time.monotonic() - self._last_tick <= max(3 * TICK_SECONDS, interval / 2):
                self.systemd.watchdog()
            await asyncio.sleep(min(interval / 4, TICK_SECONDS))

    # -- changing it --------------------------------------------------------

    async def watch_config(self, config_path: Path) -> None:
        """Reload when the configuration file's contents changed since last seen."""
        signature, digest = _fingerprint(config_path)
        seen_signature, seen_digest = self._config_seen
        if signature is None or signature == seen_signature:
            return
        self._config_seen = (signature, digest)
        if digest != seen_digest:
            self.reload(config_path, "file")

    def reload(self, config_path: Path, trigger: str = "signal") -> bool:
        """Load ``config_path`` again; keep the running configuration if it is invalid.

        A valid file is applied without losing work: in-flight deliveries finish
        with the old targets, pending ones stay in the store for the new
        configuration, new feeds become due at once, removed feeds stop (an
        in-flight poll of one is cancelled before it stores anything) and the
        rules are compiled anew. ``state`` and ``http`` need a restart.
        """
        if self._stop.is_set():
            return False  # too late: the next start reads the file anyway
        self.systemd.reloading()
        self._config_seen = _fingerprint(config_path)
        try:
            return self._reload(config_path, trigger)
        finally:
            self.systemd.ready(f"polling {len(self.feed_urls)} feeds")

    def _reload(self, config_path: Path, trigger: str) -> bool:
        try:
            config = load_config(config_path)
            runtime = Runtime(config)
        except ConfigErrors as exc:
            for error in exc.errors:
                event(log, logging.ERROR, "config.invalid", file=str(config_path), error=str(error))
            self._rejected(config_path, trigger, len(exc.errors))
            return False
        except (ConfigError, MonitorError) as exc:
            event(log, logging.ERROR, "config.invalid", file=str(config_path), error=str(exc))
            self._rejected(config_path, trigger, 1)
            return False
        old = self.runtime
        for key in ("state", "http"):
            if getattr(config, key) != getattr(old.config, key):
                event(log, logging.WARNING, "config.restart_needed", key=key)
        # Old secrets stay masked too: work started under the old configuration may still log.
        secrets = Secrets(old.config.secrets.values | config.secrets.values)
        reconfigure_logging(config.log_level, secrets.mask)
        self.runtime = runtime
        self.stall_after = _stall_after(config, self._stall_override)
        removed = [url for url in old.specs if url not in runtime.specs]
        added = [url for url in runtime.specs if url not in old.specs]
        for url in removed:
            task = self._polls.get(url)
            if task is not None:
                task.cancel()
        self.store.sync_feeds(self.feed_urls, self.now())
        self.metrics.feeds.set(len(runtime.specs))
        self.metrics.reloads.labels(result="applied").inc()
        self.metrics.reload_ok.set(1)
        self._retired.append(old)
        self._spawn(self._retire(old, list(self._polls.values())))
        event(
            log,
            logging.INFO,
            "config.reloaded",
            trigger=trigger,
            feeds=len(runtime.specs),
            added=len(added),
            removed=len(removed),
            rules=len(runtime.matcher.rules),
            targets=len(config.targets),
        )
        return True

    def _rejected(self, config_path: Path, trigger: str, errors: int) -> None:
        self.metrics.reloads.labels(result="rejected").inc()
        self.metrics.reload_ok.set(0)
        event(
            log,
            logging.ERROR,
            "config.reload_rejected",
            file=str(config_path),
            trigger=trigger,
            errors=errors,
            kept="the running configuration",
        )

    async def _retire(self, old: Runtime, polls: list[asyncio.Task[PollResult | None]]) -> None:
        """Close a replaced runtime once the polls and delivery round that use it are done."""
        await asyncio.gather(*polls, return_exceptions=True)
        await self._idle.wait()
        if old in self._retired:
            self._retired.remove(old)
            await old.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- stopping it --------------------------------------------------------

    async def _shutdown(self) -> None:
        polls = list(self._polls.values())
        for task in polls:
            task.cancel()
        await asyncio.gather(*polls, return_exceptions=True)
        # In-flight deliveries finish (bounded); what is left stays pending in the store.
        waiting = asyncio.ensure_future(self._idle.wait())
        hurry = asyncio.ensure_future(self._hurry.wait())
        done, _ = await asyncio.wait(
            {waiting, hurry}, timeout=SHUTDOWN_GRACE_SECONDS, return_when=asyncio.FIRST_COMPLETED
        )
        waiting.cancel()
        hurry.cancel()
        if waiting not in done:
            # Their outcome is not recorded, so they stay pending and go out on the next run.
            self.abandoned = True
            event(log, logging.WARNING, "daemon.deliveries_abandoned", left="pending in the store")
            if self._round_task is not None:
                self._round_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    async with asyncio.timeout(1):
                        await self._round_task
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        for runtime in [*self._retired, self.runtime]:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await runtime.aclose()
        event(log, logging.INFO, "daemon.stopped")


def _stall_after(config: Config, override: float | None) -> float:
    if override is not None:
        return override
    return config.health.stall_after.total_seconds()


def _fingerprint(path: Path) -> tuple[_Signature | None, str | None]:
    """(modification time, size, inode) and a digest of the contents; Nones when unreadable."""
    try:
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None, None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino), digest
