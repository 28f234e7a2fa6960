"""The delivery half of the pipeline: pending deliveries out of the store, onto targets.

    PendingDelivery ─► render ─► Notifier (Apprise) ─► DeliveryOutcome ─► store.record

Failures are retried with exponential backoff and jitter until
``delivery.retry_for`` has passed since the alert was queued; then the row is
kept as failed (SPEC §5). A target's request to slow down (HTTP 429) pauses it
without counting as a failed attempt (SPEC §6).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from monitor.logs import event
from monitor.metrics import Metrics
from monitor.model import DeliveryOutcome, DeliveryState, PendingDelivery
from monitor.pipeline import Clock, Runtime
from monitor.render import render_alert
from monitor.store import Store

log = logging.getLogger("monitor")

async def deliver(
    runtime: Runtime,
    store: Store,
    delivery: PendingDelivery,
    now: Clock,
    metrics: Metrics | None = None,
) -> DeliveryOutcome:
    """Render and send one pending delivery, and record the outcome."""
    started = time.monotonic()
    target = delivery.target
    attempts = delivery.attempts + 1
    retry_for = runtime.config.delivery.retry_for
    if target not in runtime.config.targets:
        error: str | None = f"target {target!r} is no longer configured"
        retry_after: float | None = None
        ok = False
    else:
        chosen = runtime.config.targets[target].format
        markdown = chosen == "markdown" if chosen else runtime.notifier.wants_markdown(target)
        message = render_alert(
            delivery.alert, markdown=markdown, template=runtime.templates.get(delivery.alert.rule)
        )
        result = await runtime.notifier.asend(target, message, markdown=markdown)
        ok, error, retry_after = result.ok, result.error, result.retry_after
    moment = now()
    if ok:
        outcome = DeliveryOutcome(delivery.id, moment, DeliveryState.SENT)
    elif retry_after is not None:
        # The target asked us to slow down (HTTP 429): a pause, not a failure (SPEC §6).
        outcome = DeliveryOutcome(
            delivery.id,
            moment,
            DeliveryState.PENDING,
            error=error,
            next_attempt=moment + timedelta(seconds=retry_after),
            count_attempt=False,
        )
    elif moment - delivery.created_at >= retry_for:
        outcome = DeliveryOutcome(delivery.id, moment, DeliveryState.FAILED, error=error)
    else:
        policy = runtime.config.delivery
        delay = min(policy.retry_initial * 2 ** min(attempts - 1, 20), policy.retry_max)
        delay = delay * runtime.rng.uniform(0.8, 1.2)
        outcome = DeliveryOutcome(
            delivery.id, moment, DeliveryState.PENDING, error=error, next_attempt=moment + delay
        )
    store.record(outcome)
    if metrics is not None:
        metrics.delivered(target, outcome)
    event(
        log,
        logging.INFO if ok else logging.WARNING,
        "alert.delivered" if ok else "alert.not_delivered",
        rule=delivery.alert.rule,
        target=target,
        alert=delivery.alert.id,
        status=str(outcome.state),
        attempt=attempts,
        error=error,
        retry_at=outcome.next_attempt.isoformat(timespec="seconds")
        if outcome.next_attempt
        else None,
        duration=f"{time.monotonic() - started:.3f}s",
    )
    return outcome


async def deliver_due(
    runtime: Runtime,
    store: Store,
    now: Clock,
    limit: int = 100,
    exclude: frozenset[int] = frozenset(),
    metrics: Metrics | None = None,
) -> list[int]:
    """Send the deliveries due now; one target's go out in order, targets in parallel.

    ``exclude`` lists delivery ids already tried in this round (``run --once``
    tries each once). Returns the ids attempted.
    """
    pending = [
        p for p in store.pending_deliveries(now(), limit + len(exclude)) if p.id not in exclude
    ]
    pending = pending[:limit]
    by_target: dict[str, list[PendingDelivery]] = {}
    for item in pending:
        by_target.setdefault(item.target, []).append(item)
    workers = asyncio.Semaphore(max(1, runtime.config.delivery.workers))
    attempted: list[int] = []

    async def drain(items: list[PendingDelivery]) -> None:
        async with workers:
            for item in items:
                attempted.append(item.id)
                outcome = await deliver(runtime, store, item, now, metrics)
                if outcome.state is DeliveryState.PENDING and not outcome.count_attempt:
                    break  # the target asked for a pause: the rest waits with it

    await asyncio.gather(*(drain(items) for items in by_target.values()))
    return attempted
