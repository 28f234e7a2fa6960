"""The jobs of many workers: what each one does, and the Procrastinate app that runs them.

See :mod:`monitor.distributed` for the design. A :class:`Node` is one
process's share of the cluster: its runtime (configuration, fetcher,
matcher, notifier), its store connection, its parse pool; the job bodies are
its methods, registered on a Procrastinate :class:`~procrastinate.App` by
:func:`build_app`. Job arguments are only names (a feed URL, a target name):
every job reads what it needs from the store when it runs, so a job queued
long ago, retried, or taken over from a dead worker acts on the state as it
is now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Executor
from urllib.parse import parse_qs, urlsplit

from procrastinate import App, PsycopgConnector, RetryStrategy
from procrastinate import exceptions as queue_errors
from procrastinate.jobs import Job, Status

from monitor.delivery import deliver_target
from monitor.health import queue_health_alerts
from monitor.logs import event
from monitor.metrics import Metrics
from monitor.outage import OutageWatch
from monitor.pipeline import Clock, Runtime, poll_feed, utcnow
from monitor.store.postgres import CONNECT_TIMEOUT, PostgresStore

log = logging.getLogger("monitor")

# Leases (SPEC §8: a dead worker's work is taken over once its lease expires). A worker
# writes a heartbeat this often, and one silent for LEASE_SECONDS is taken for dead:
# several missed beats, so a busy moment on a live worker is not mistaken for death.
HEARTBEAT_SECONDS = 1.0
LEASE_SECONDS = 8.0

FEEDS_QUEUE = "feeds"  # poll jobs, run by the poll workers
OUTBOX_QUEUE = "outbox"  # dispatching, delivering and recovering, run by the outbox worker

POLL = "poll"
DELIVER = "deliver"
DISPATCH_FEEDS = "dispatch-feeds"
DISPATCH_DELIVERIES = "dispatch-deliveries"
RECOVER = "recover"

# Poll jobs waiting in the queue, at most: a dispatch (every second) tops the queue up to
# this many. Above what a few workers get through in a second, so they never wait for
# work; below thousands, because every fetch of a job reads the waiting ones, and the
# fewer they are, the less a fetch costs when the planner reads them all (a fetch
# planned from statistics of a nearly empty queue does). The cluster starts at most
# this many polls a second.
QUEUED_POLLS = 500
DELIVERIES_PER_ROUND = 100  # as the SQLite daemon's delivery round
# A poll or delivery round that raised (the database went away, a bug) is run again by
# the engine; failures the pipeline expects are data in the store, never raised.
RETRY = RetryStrategy(max_attempts=3, exponential_wait=2)

_IN_FLIGHT = (
    "SELECT queueing_lock, status FROM procrastinate_jobs"
    " WHERE task_name = %(task)s AND status IN ('todo', 'doing')"
)


def poll_locks(url: str) -> tuple[str, str]:
    """(lock, queueing lock) of the poll jobs of feed ``url``."""
    return f"feed:{url}", f"poll:{url}"


def deliver_locks(target: str) -> tuple[str, str]:
    """(lock, queueing lock) of the delivery rounds of ``target``."""
    return f"target:{target}", f"deliver:{target}"


class Node:
    """One process's part of the cluster: the job bodies and what they work with."""

    def __init__(
        self,
        runtime: Runtime,
        store: PostgresStore,
        executor: Executor | None,
        *,
        now: Clock = utcnow,
        metrics: Metrics | None = None,
    ) -> None:
        self.runtime = runtime  # replaced on reload
        self.store = store
        self.executor = executor
        self.now = now
        self.metrics = metrics or Metrics()
        # Per process: whether this machine's network is down is not shared state.
        self.network = OutageWatch()
        self.app: App | None = None
        self.queued_polls = QUEUED_POLLS
        # A delivery cancelled while Apprise was sending (stop grace exceeded).
        self.abandoned = False
        # Polls running per runtime: a runtime replaced by a reload is closed at zero.
        self._polling: Counter[Runtime] = Counter()
        self._polls_ended: dict[Runtime, asyncio.Event] = {}

    async def polls_ended(self, runtime: Runtime) -> None:
        """Return once no poll that started with ``runtime`` runs any more.

        Polls start with the current runtime, so once a replaced one has none
        it gets no more.
        """
        if self._polling[runtime]:
            await self._polls_ended.setdefault(runtime, asyncio.Event()).wait()

    # -- polling -------------------------------------------------------------

    async def dispatch_feeds(self, timestamp: int) -> None:
        """Defer a poll for each feed due now that has no poll queued or running.

        Most overdue first, up to :attr:`queued_polls` (:data:`QUEUED_POLLS`)
        waiting: the rest wait for the next dispatch, a second later.
        """
        busy = await self._in_flight(POLL)
        room = self.queued_polls - sum(status == "todo" for status in busy.values())
        if room <= 0:
            return
        urls = list(self.runtime.specs)
        due = self.store.due_feeds(urls, self.now(), room + len(busy))
        fresh = [f.url for f in due if poll_locks(f.url)[1] not in busy][:room]
        await self._defer(POLL, FEEDS_QUEUE, [({"url": url}, *poll_locks(url)) for url in fresh])

    async def poll(self, url: str) -> None:
        """Poll feed ``url`` if it is (still) due: once per interval, whoever queued it."""
        runtime = self.runtime
        if url not in runtime.specs:
            # Another worker runs a configuration with this feed: they should all match.
            event(log, logging.WARNING, "poll.unknown_feed", feed=url)
            return
        feeds = self.store.feeds([url])
        moment = self.now()
        if not feeds or feeds[0].status == "gone":
            return
        feed = feeds[0]
        if feed.next_due is None or feed.next_due > moment:
            return  # polled since this job was queued
        self._polling[runtime] += 1
        try:
            result = await poll_feed(
                runtime, self.store, self.executor, feed, self.now, self.metrics, self.network
            )
        finally:
            self._polling[runtime] -= 1
            if not self._polling[runtime]:
                del self._polling[runtime]
                self._polls_ended.pop(runtime, asyncio.Event()).set()
            # Story keys claimed by a lookup whose apply never came (a bug in deciding).
            self.store.release_story_keys()
        if result.alerts:
            await self.kick_deliveries()

    # -- delivering ----------------------------------------------------------

    async def kick_deliveries(self) -> None:
        """Dispatch deliveries now rather than at the next second (new alerts are waiting)."""
        assert self.app is not None
        # When one is waiting already, it will see these alerts.
        with contextlib.suppress(queue_errors.AlreadyEnqueued):
            await self.app.configure_task(DISPATCH_DELIVERIES).defer_async(timestamp=0)

    async def dispatch_deliveries(self, timestamp: int) -> None:
        """Queue the health alerts due now; defer a round for each target with deliveries due."""
        runtime = self.runtime
        moment = self.now()
        queue_health_alerts(
            runtime.config,
            self.store,
            list(runtime.specs),
            moment,
            feeds=self.network.settled(),
        )
        busy = await self._in_flight(DELIVER)
        targets = [t for t in self.store.due_targets(moment) if deliver_locks(t)[1] not in busy]
        await self._defer(
            DELIVER, OUTBOX_QUEUE, [({"target": t}, *deliver_locks(t)) for t in targets]
        )

    async def deliver(self, target: str) -> None:
        """One delivery round for ``target``; its lock makes this the only one running."""
        due = self.store.due_deliveries_to(target, self.now(), DELIVERIES_PER_ROUND)
        if not due:
            return
        try:
            await deliver_target(self.runtime, self.store, target, due, self.now, self.metrics)
        except asyncio.CancelledError:
            # The stop grace ran out while sending: Apprise's thread may still be sending.
            self.abandoned = True
            raise

    # -- taking over ----------------------------------------------------------

    async def recover(self, timestamp: int) -> None:
        """Put the running jobs of workers silent for a whole lease back in the queue."""
        assert self.app is not None
        manager = self.app.job_manager
        await manager.prune_stalled_workers(LEASE_SECONDS)
        for job in await manager.get_stalled_jobs(seconds_since_heartbeat=LEASE_SECONDS):
            assert job.id is not None
            try:
                await manager.retry_job_by_id_async(job.id, retry_at=utcnow())
                taken = "requeued"
            except queue_errors.UniqueViolation:
                # The same work is queued again already (a periodic dispatch): drop this copy.
                await manager.finish_job_by_id_async(job.id, Status.FAILED, delete_job=True)
                taken = "dropped, queued again already"
            except queue_errors.ConnectorException:
                continue  # recovered by another worker meanwhile
            event(
                log,
                logging.WARNING,
                "job.taken_over",
                task=job.task_name,
                job=job.id,
                args=",".join(f"{k}={v}" for k, v in sorted(job.task_kwargs.items())),
                outcome=taken,
            )

    # -- the queue -------------------------------------------------------------

    async def _in_flight(self, task: str) -> dict[str, str]:
        """The status (``todo``, ``doing``) of ``task``'s jobs queued or running, by queueing lock.

        A queueing lock may have one job running and one queued (Procrastinate keeps
        only two from waiting at once): it counts as queued.
        """
        assert self.app is not None
        rows = await self.app.connector.execute_query_all_async(_IN_FLIGHT, task=task)
        found: dict[str, str] = {}
        for row in rows:
            if found.get(row["queueing_lock"]) != "todo":
                found[row["queueing_lock"]] = row["status"]
        return found

    async def _defer(
        self, task: str, queue: str, jobs: Iterable[tuple[dict[str, str], str, str]]
    ) -> None:
        """Defer ``task`` once per (kwargs, lock, queueing lock): in one batch when possible."""
        assert self.app is not None
        manager = self.app.job_manager
        batch = [
            Job(
                queue=queue,
                task_name=task,
                lock=lock,
                queueing_lock=queueing,
                task_kwargs=dict(kwargs),
                priority=0,
            )
            for kwargs, lock, queueing in jobs
        ]
        if not batch:
            return
        try:
            await manager.batch_defer_jobs_async(batch)
        except queue_errors.AlreadyEnqueued:
            # One of them was queued meanwhile (a retry): the others one at a time.
            for job in batch:
                try:
                    await manager.defer_job_async(job)
                except queue_errors.AlreadyEnqueued:
                    continue


def build_app(url: str, node: Node, *, pool_size: int) -> App:
    """The Procrastinate app of ``node``: its tasks and periodic tasks, on database ``url``.

    Procrastinate's tables are found through the URL's ``search_path``, as the store's are.
    """
    kwargs: dict[str, object] = {}
    if "connect_timeout" not in parse_qs(urlsplit(url).query):
        kwargs["connect_timeout"] = CONNECT_TIMEOUT
    connector = PsycopgConnector(conninfo=url, min_size=1, max_size=pool_size, kwargs=kwargs)
    app = App(connector=connector)
    app.task(name=POLL, queue=FEEDS_QUEUE, retry=RETRY)(node.poll)
    app.task(name=DELIVER, queue=OUTBOX_QUEUE, retry=RETRY)(node.deliver)
    # Procrastinate's sixth cron field is seconds. However many workers defer them, one
    # of each waits at a time (queueing lock) and the dispatchers run one at a time
    # (lock). Not `recover`: a dead worker holding its lock would block recovery itself.
    for name, cron, body, lock in (
        (DISPATCH_FEEDS, "* * * * * *", node.dispatch_feeds, DISPATCH_FEEDS),
        (DISPATCH_DELIVERIES, "* * * * * *", node.dispatch_deliveries, DISPATCH_DELIVERIES),
        (RECOVER, "* * * * * */2", node.recover, None),
    ):
        task = app.task(name=name, queue=OUTBOX_QUEUE, lock=lock, queueing_lock=name)(body)
        app.periodic(cron=cron, periodic_id=name)(task)
    node.app = app
    return app
