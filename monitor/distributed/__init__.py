"""Many workers on one PostgreSQL, orchestrated by Procrastinate (SPEC §8, issue 7).

With ``state: postgresql://...``, ``news-monitor run --workers N`` runs N
poll workers and one outbox worker in one process; more processes, on more
machines, join by running the same command against the same database. They
share no memory: everything is in the store (feeds, outbox) and in
Procrastinate's job table beside it. The pipeline is the one SQLite mode
runs (:func:`monitor.pipeline.poll_feed`, :func:`monitor.delivery.deliver_target`);
only *when* it runs differs.

Jobs (:mod:`monitor.distributed.jobs`), each a row of ``procrastinate_jobs``:

``dispatch-feeds`` (periodic, every second; queue ``outbox``)
    Reads the feeds due now from the store and defers a ``poll`` job for each
    one that has no poll job queued or running, most overdue first, until
    :data:`~monitor.distributed.jobs.QUEUED_POLLS` wait: every fetch of a job
    reads the waiting ones, so the queue is kept short and topped up.
``poll(url)`` (queue ``feeds``; lock ``feed:URL``, queueing lock ``poll:URL``)
    Reads the feed again and, if it is still due, polls it: fetch, parse,
    decide, ``store.apply``. The lock keeps two polls of one feed from running
    at once, the queueing lock two from waiting at once; the re-check makes a
    poll queued while another ran a no-op. So each feed is fetched once per
    interval however many workers there are.
``dispatch-deliveries`` (periodic, every second; queue ``outbox``)
    Queues the health alerts due now, then defers a ``deliver`` job for each
    target with deliveries due and none queued or running.
``deliver(target)`` (queue ``outbox``; lock ``target:NAME``, queueing lock ``deliver:NAME``)
    One delivery round for one target (holds, digests, rate limit, 429
    pauses, retries with backoff: :mod:`monitor.delivery`). One job per
    target round rather than per outbox row: one target's messages go out
    one at a time, in order, from one worker, so its rate limit and batches
    hold across the cluster, and a crash leaves at most one message in
    flight per target (SPEC §5's one-delivery window).
``recover`` (periodic, every two seconds; queue ``outbox``)
    Takes over the jobs of dead workers (below).

Leases. Every worker writes a heartbeat every :data:`~monitor.distributed.jobs.HEARTBEAT_SECONDS`;
a worker silent for :data:`~monitor.distributed.jobs.LEASE_SECONDS` is dead. ``recover``
puts its running jobs back in the queue (``doing`` -> ``todo``, which also frees
their locks) for a live worker to run again. A poll run again fetches again;
a delivery round run again resends at most the one message per target that the
dead worker had sent without recording it.

Periodic jobs are deferred by every worker and deduplicated by the database
(one row per task and second); each carries a queueing lock and a lock, so one
waits and one runs at a time.
"""

from monitor.distributed.runner import WorkerProcess

__all__ = ["WorkerProcess"]
