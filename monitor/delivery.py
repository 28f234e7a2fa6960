"""The delivery half of the pipeline: pending deliveries out of the store, onto targets.

    QueuedDelivery ─► plan (pure) ─► render ─► Notifier (Apprise) ─► MessageOutcome ─► store

One round (:func:`deliver_due`) first queues the health alerts that have come
due (:mod:`monitor.health`), then takes the due deliveries, target by target
(targets in parallel, one target's messages in order):

* **Holds** (:func:`monitor.outbox_policy.plan_target`): during the target's
  quiet hours everything due waits for their end; a digest rule's fresh
  alerts start or join its batch. A batch goes out as one message
  (:func:`monitor.render.render_digest`; a batch of one as the alert itself).
* **Rate limit**: before each message, the target's send log (kept in the
  store, so a restart keeps counting) says whether its ``rate_limit`` allows
  one now; if not, the target is paused until a slot frees. Nothing is dropped.
* **HTTP 429**: the target asked to slow down, so the whole target is paused
  (persisted: a restart honours it) and the attempt is not counted as a
  failure (SPEC §6).
* **Failures** are retried with exponential backoff and jitter until
  ``delivery.retry_for`` has passed since the alert was queued; then the row
  is kept as failed (SPEC §5). A batch retries as one: its members share the
  next attempt time. A failed attempt starts or continues the target's
  failing streak (health alerts); an accepted message ends it.

A paused target's deliveries are left out of the due list altogether, so its
backlog never crowds out other targets.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from monitor.health import is_health, queue_health_alerts
from monitor.logs import event
from monitor.metrics import Metrics
from monitor.model import DeliveryOutcome, DeliveryState, PendingDelivery
from monitor.outbox_policy import (
    Message,
    gives_up,
    plan_target,
    quiet_until,
    rate_limit_wait,
    retry_delay,
)
from monitor.pipeline import Clock, Runtime
from monitor.render import RenderedMessage, render_alert, render_digest, render_health
from monitor.store import Store
from monitor.store.base import MessageOutcome, QueuedDelivery

log = logging.getLogger("monitor")


async def deliver_due(
    runtime: Runtime,
    store: Store,
    now: Clock,
    limit: int = 100,
    exclude: frozenset[int] = frozenset(),
    metrics: Metrics | None = None,
    feed_health: bool = True,
) -> list[int]:
    """One delivery round: queue due health alerts, then send the deliveries due now.

    One target's messages go out in order, targets in parallel (up to
    ``delivery.workers``). ``exclude`` lists delivery ids already tried in this
    round (``run --once`` tries each once). ``feed_health=False`` queues no
    feed health alerts (during a network outage). Returns the ids attempted.
    """
    moment = now()
    queue_health_alerts(runtime.config, store, list(runtime.specs), moment, feeds=feed_health)
    due = [
        q
        for q in store.due_deliveries(moment, limit + len(exclude))
        if q.delivery.id not in exclude
    ]
    by_target: dict[str, list[QueuedDelivery]] = {}
    for item in due[:limit]:
        by_target.setdefault(item.delivery.target, []).append(item)
    workers = asyncio.Semaphore(max(1, runtime.config.delivery.workers))
    attempted: list[int] = []

    async def drain(target: str, items: list[QueuedDelivery]) -> None:
        async with workers:
            attempted.extend(await deliver_target(runtime, store, target, items, now, metrics))

    await asyncio.gather(*(drain(target, items) for target, items in by_target.items()))
    return attempted


async def deliver_target(
    runtime: Runtime,
    store: Store,
    target: str,
    due: Sequence[QueuedDelivery],
    now: Clock,
    metrics: Metrics | None = None,
) -> list[int]:
    """Hold or send one target's due deliveries (oldest first); return the ids attempted."""
    config = runtime.config.targets.get(target)
    moment = now()
    quiet = config.quiet_hours if config else None
    quiet_end = quiet_until(moment, quiet.start, quiet.end, quiet.zone) if quiet else None
    digests = {rule.name: rule.digest for rule in runtime.config.rules if rule.digest}
    plan = plan_target(due, moment, quiet_end=quiet_end, digests=digests)
    messages = list(plan.messages)
    for hold in plan.holds:
        release = store.hold(hold.ids, hold.batch, hold.until)
        event(
            log,
            logging.INFO,
            "alert.held",
            target=target,
            batch=hold.batch,
            deliveries=len(hold.ids),
            until=release.isoformat(timespec="seconds"),
        )
        # A digest whose period has already passed (the service was down) goes now.
        if release <= moment and all(m.batch != hold.batch for m in messages):
            first = next(d for d in due if d.delivery.id == hold.ids[0])
            messages.append(Message(first, hold.batch))
    attempted: list[int] = []
    for message in messages:
        members = (
            [message.first] if message.batch is None else store.batch_members(target, message.batch)
        )
        if not members:
            continue
        if config is not None and config.rate_limit is not None:
            limit = config.rate_limit
            moment = now()
            wait = rate_limit_wait(
                store.sends_since(target, moment - limit.period), limit.count, limit.period, moment
            )
            if wait is not None:
                # Over the limit: the target waits for a free slot; nothing is dropped (SPEC §6).
                store.pause_target(target, wait, f"rate limit {limit}")
                event(
                    log,
                    logging.INFO,
                    "target.rate_limited",
                    target=target,
                    until=wait.isoformat(timespec="seconds"),
                )
                break
        attempted.extend(m.delivery.id for m in members)
        outcome = await send_message(runtime, store, target, members, now, metrics)
        if outcome.paused_until is not None:
            break  # the target asked for a pause: the rest waits with it
    return attempted


def _render(
    runtime: Runtime, members: Sequence[PendingDelivery], markdown: bool
) -> RenderedMessage:
    if len(members) == 1:
        alert = members[0].alert
        if is_health(alert):
            return render_health(alert, markdown=markdown)
        return render_alert(alert, markdown=markdown, template=runtime.templates.get(alert.rule))
    alerts = [m.alert for m in members]
    rules = {alert.rule for alert in alerts}
    return render_digest(alerts, markdown=markdown, rule=rules.pop() if len(rules) == 1 else None)


async def send_message(
    runtime: Runtime,
    store: Store,
    target: str,
    queued: Sequence[QueuedDelivery],
    now: Clock,
    metrics: Metrics | None = None,
) -> MessageOutcome:
    """Render ``queued`` as one message (a digest when several), send it, record the outcome."""
    started = time.monotonic()
    members = [q.delivery for q in queued]
    requested = target in runtime.config.targets
    retry_after: float | None = None
    error: str | None
    if not requested:
        ok, error = False, f"target {target!r} is no longer configured"
    else:
        chosen = runtime.config.targets[target].format
        markdown = chosen == "markdown" if chosen else runtime.notifier.wants_markdown(target)
        result = await runtime.notifier.asend(
            target, _render(runtime, members, markdown), markdown=markdown
        )
        ok, error, retry_after = result.ok, result.error, result.retry_after
    moment = now()
    outcome = _outcome(runtime, target, members, moment, ok, error, retry_after, requested)
    store.record_message(outcome)
    for delivery in outcome.deliveries:
        if metrics is not None:
            metrics.delivered(target, delivery)
    state = outcome.deliveries[0]
    event(
        log,
        logging.INFO if ok else logging.WARNING,
        "alert.delivered" if ok else "alert.not_delivered",
        rule=members[0].alert.rule if len(members) == 1 else None,
        target=target,
        alert=members[0].alert.id if len(members) == 1 else None,
        alerts=len(members) if len(members) > 1 else None,
        status=str(state.state),
        attempt=max(m.attempts for m in members) + 1,
        error=error,
        retry_at=state.next_attempt.isoformat(timespec="seconds") if state.next_attempt else None,
        duration=f"{time.monotonic() - started:.3f}s",
    )
    return outcome


def _outcome(
    runtime: Runtime,
    target: str,
    members: Sequence[PendingDelivery],
    moment: datetime,
    ok: bool,
    error: str | None,
    retry_after: float | None,
    requested: bool,
) -> MessageOutcome:
    """What one send came to, for every delivery it carried."""
    if ok:
        sent = tuple(DeliveryOutcome(m.id, moment, DeliveryState.SENT) for m in members)
        return MessageOutcome(target, moment, sent, requested=requested, sent=True)
    if retry_after is not None:
        # The target asked us to slow down (HTTP 429): a pause, not a failure (SPEC §6).
        until = moment + timedelta(seconds=retry_after)
        paused = tuple(
            DeliveryOutcome(
                m.id, moment, DeliveryState.PENDING, error, next_attempt=until, count_attempt=False
            )
            for m in members
        )
        return MessageOutcome(target, moment, paused, requested=requested, paused_until=until)
    policy = runtime.config.delivery
    # One next attempt for the whole message, so a batch stays together.
    attempts = max(m.attempts for m in members) + 1
    delay = retry_delay(
        attempts, initial=policy.retry_initial, maximum=policy.retry_max, rng=runtime.rng
    )
    outcomes = tuple(
        DeliveryOutcome(m.id, moment, DeliveryState.FAILED, error)
        if gives_up(m.created_at, moment, policy.retry_for)
        else DeliveryOutcome(
            m.id, moment, DeliveryState.PENDING, error, next_attempt=moment + delay
        )
        for m in members
    )
    return MessageOutcome(target, moment, outcomes, requested=requested, error=error)
