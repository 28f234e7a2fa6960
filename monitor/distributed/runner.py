"""``news-monitor run`` on PostgreSQL: N poll workers and one outbox worker in one process.

The process prepares the database (the store's schema, then Procrastinate's,
each once however many processes start together), makes sure every
configured feed has a row, and runs its workers on one event loop until
SIGTERM or SIGINT. They share the process's runtime (one fetcher, so
``poll.per_host`` holds per process), its store connection and its parse pool.

- Each poll worker runs up to ``poll.concurrency`` polls at once, so
  ``--workers N`` is how many feeds one process fetches at a time, times N.
- The outbox worker runs the dispatchers, the recovery of dead workers'
  jobs and up to ``delivery.workers`` delivery rounds (one per target) at once.
  Deliveries never wait behind polls: they are on a queue of their own.

Stopping: polls in flight are cancelled at once (each goes back to the queue
and is run again, by this process or another); delivery rounds get
:data:`~monitor.daemon.SHUTDOWN_GRACE_SECONDS` to finish, as the SQLite daemon's do.
SIGHUP reloads the configuration; ``/healthz`` (``--http``) answers 200 while
every worker of the process runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from monitor.config import Config, Secrets, load_config
from monitor.daemon import SHUTDOWN_GRACE_SECONDS
from monitor.distributed.jobs import (
    FEEDS_QUEUE,
    HEARTBEAT_SECONDS,
    LEASE_SECONDS,
    OUTBOX_QUEUE,
    Node,
    build_app,
)
from monitor.errors import ConfigError, ConfigErrors, MonitorError, StoreError
from monitor.http import Health, HTTPEndpoint
from monitor.logs import event, reconfigure_logging
from monitor.pipeline import Runtime
from monitor.sdnotify import SystemdNotifier
from monitor.store.postgres import PostgresStore, describe

log = logging.getLogger("monitor")

# The dispatchers and recovery, beside the delivery rounds, on the outbox worker.
_OUTBOX_EXTRA_SLOTS = 3
# With LISTEN/NOTIFY a worker hears of new jobs at once; this is only the fallback.
_FETCH_POLL_SECONDS = 2.0


class WorkerProcess:
    """The workers of one ``news-monitor run`` on PostgreSQL, and their shared runtime."""

    def __init__(
        self,
        config: Config,
        store: PostgresStore,
        executor: Executor | None,
        *,
        workers: int,
        config_path: Path | None = None,
    ) -> None:
        self.config_path = config_path
        self.url = config.state
        self.workers = workers
        self.store = store
        self.node = Node(Runtime(config), store, executor)
        self.systemd = SystemdNotifier()
        self._retired: list[Runtime] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Future[None]] = set()

    @property
    def abandoned(self) -> bool:
        """Whether the stop gave up on a delivery whose thread may still be sending."""
        return self.node.abandoned

    async def run(self, http: tuple[str, int] | None = None) -> int:
        """Prepare the database, run the workers until stopped; 0, or 1 if a worker died."""
        # Procrastinate's INFO lines (every job started and ended) would drown ours.
        logging.getLogger("procrastinate").setLevel(logging.WARNING)
        store = self.store
        store.migrate_queue()
        runtime = self.node.runtime
        store.sync_feeds(list(runtime.specs), self.node.now())
        self.node.metrics.feeds.set(len(runtime.specs))
        app = build_app(self.url, self.node, pool_size=self.workers + 3)
        endpoint = HTTPEndpoint(self.health, self.exposition)
        try:
            await app.open_async()
        except Exception as exc:
            raise self._error("cannot open the job queue", exc) from None
        try:
            if http is not None:
                await endpoint.start(*http)
            self._install_signals()
            common: dict[str, Any] = {
                "install_signal_handlers": False,
                "update_heartbeat_interval": HEARTBEAT_SECONDS,
                "stalled_worker_timeout": LEASE_SECONDS,
                "delete_jobs": "always",
                "fetch_job_polling_interval": _FETCH_POLL_SECONDS,
            }
            config = runtime.config
            for n in range(self.workers):
                self._start(
                    app.run_worker_async(
                        name=f"poll-{n + 1}",
                        queues=[FEEDS_QUEUE],
                        concurrency=config.poll.concurrency,
                        shutdown_graceful_timeout=0,
                        **common,
                    )
                )
            self._start(
                app.run_worker_async(
                    name="outbox",
                    queues=[OUTBOX_QUEUE],
                    concurrency=config.delivery.workers + _OUTBOX_EXTRA_SLOTS,
                    shutdown_graceful_timeout=SHUTDOWN_GRACE_SECONDS,
                    **common,
                )
            )
            event(
                log,
                logging.INFO,
                "daemon.started",
                feeds=len(runtime.specs),
                workers=self.workers,
                database=store.describe(),
            )
            self.systemd.ready(f"{self.workers} workers, {len(runtime.specs)} feeds")
            watchdog = asyncio.ensure_future(self._watchdog())
            stop = asyncio.ensure_future(self._stop.wait())
            await asyncio.wait([stop, *self._tasks], return_when=asyncio.FIRST_COMPLETED)
            code = 0 if self._stop.is_set() else self._died()
            watchdog.cancel()
            stop.cancel()
            await self._shutdown()
        finally:
            for task in self._background:
                task.cancel()
            await endpoint.close()
            await app.close_async()
            for each in [*self._retired, self.node.runtime]:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2):
                        await each.aclose()
        event(log, logging.INFO, "daemon.stopped")
        return code

    def stop(self) -> None:
        """Ask the workers to stop (signal handlers call this)."""
        if not self._stop.is_set():
            event(log, logging.INFO, "daemon.stopping", grace=f"{SHUTDOWN_GRACE_SECONDS:g}s")
            self.systemd.stopping()
            self._stop.set()

    def reload(self) -> bool:
        """Load the configuration file again and use it for the jobs that start from now on.

        An invalid file is logged and the running configuration kept. Every
        process should run the same configuration: the dispatcher defers the
        feeds of its own, and a poll of a feed this process does not know is skipped.
        """
        if self.config_path is None or self._stop.is_set():
            return False
        self.systemd.reloading()
        try:
            config = load_config(self.config_path)
            runtime = Runtime(config)
        except ConfigErrors as exc:
            for error in exc.errors:
                event(log, logging.ERROR, "config.invalid", error=str(error))
            return False
        except (ConfigError, MonitorError) as exc:
            event(log, logging.ERROR, "config.invalid", error=str(exc))
            return False
        finally:
            self.systemd.ready(f"{self.workers} workers")
        old = self.node.runtime
        if config.state != old.config.state:
            event(log, logging.WARNING, "config.restart_needed", key="state")
        reconfigure_logging(
            config.log_level, Secrets(old.config.secrets.values | config.secrets.values).mask
        )
        self.store.sync_feeds(list(runtime.specs), self.node.now())
        # Jobs running now finish with the old runtime, then it is closed (its fetcher
        # holds connections: a service reloaded for months must not pile them up).
        self._retired.append(old)
        retiring = asyncio.ensure_future(self._retire(old))
        self._background.add(retiring)
        retiring.add_done_callback(self._background.discard)
        self.node.runtime = runtime
        self.node.metrics.feeds.set(len(runtime.specs))
        event(log, logging.INFO, "config.reloaded", trigger="signal", feeds=len(runtime.specs))
        return True

    async def _retire(self, old: Runtime) -> None:
        """Close a replaced runtime once the polls that started with it have ended.

        (Delivery rounds do not use what closing releases: the fetcher.)
        """
        await self.node.polls_ended(old)
        if old in self._retired:
            self._retired.remove(old)
            await old.aclose()

    def health(self) -> Health:
        """Healthy while every worker of this process runs."""
        running = sum(not task.done() for task in self._tasks)
        details: dict[str, object] = {"workers_running": running, "workers": len(self._tasks)}
        if self._stop.is_set():
            return Health(False, "stopping", details)
        if running < len(self._tasks) or not self._tasks:
            return Health(False, "a worker has stopped", details)
        return Health(True, "ok", details)

    def exposition(self) -> bytes:
        """``/metrics``: the gauges read from the store, then every series."""
        metrics = self.node.metrics
        try:
            report = self.store.status(recent=0)
            metrics.observe_store(report, self.node.now())
            metrics.observe_feeds(report, frozenset(self.node.runtime.specs))
        except MonitorError as exc:
            event(log, logging.ERROR, "metrics.store_unreadable", error=str(exc))
        return metrics.exposition()

    def _error(self, doing: str, exc: BaseException) -> StoreError:
        """A StoreError naming the database, with the password scrubbed from the message."""
        name, secrets = describe(self.url)
        message = str(exc).strip() or type(exc).__name__
        for secret in secrets:
            message = message.replace(secret, "***")
        return StoreError(f"PostgreSQL database {name}: {doing}: {message}")

    def _start(self, worker: Any) -> None:
        self._tasks.append(asyncio.ensure_future(worker))

    def _install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self.reload)

    def _died(self) -> int:
        """A worker ended on its own: log why; the process stops and exits 1."""
        for task in self._tasks:
            if task.done() and not task.cancelled():
                error = task.exception()
                event(log, logging.ERROR, "worker.died", error=repr(error) if error else "stopped")
        return 1

    async def _shutdown(self) -> None:
        """Stop every worker: polls go back to the queue, delivery rounds get the grace."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _watchdog(self) -> None:
        """Ping systemd's watchdog while the event loop runs."""
        interval = self.systemd.watchdog_interval
        if interval is None:
            return
        while True:
            self.systemd.watchdog()
            await asyncio.sleep(min(interval / 4, 1.0))
