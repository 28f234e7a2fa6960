"""When the outbox may send: quiet hours, digests, rate limits, retries, health (issue 4).

Pure: every function takes ``now`` (and a ``random.Random`` where there is
chance) and returns a time or a plan; no clock, no store, no network. The
delivery worker (:mod:`monitor.delivery`) reads the store, asks these
functions, and writes back what they say.

Batches. A delivery waits in a *batch* when it is to be sent together with
others to the same target, as one digest message (SPEC §6):

* ``digest:RULE``: the rule has ``digest: DURATION``. The first alert of a
  batch starts the period; the batch is sent when the period has passed, and
  every alert of the rule that reached the target meanwhile joins it.
* ``quiet``: the delivery came due during the target's quiet hours. It is held
  until they end, then everything held is sent as one digest. A digest batch
  that comes due during quiet hours joins the quiet batch.

Quiet hours are read in the target's time zone, a span ``[start, end)`` that
crosses midnight when ``end <= start``. On days when the clocks change, a
wall-clock time that does not exist (spring forward) is read as the instant
the zone maps it to, and an ambiguous one (fall back) as its first occurrence.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from monitor.store.base import QueuedDelivery

QUIET_BATCH = "quiet"
DIGEST_PREFIX = "digest:"
# Exponent cap for the retry doubling, so 2**n stays a small number.
_MAX_DOUBLINGS = 20


def digest_batch(rule: str) -> str:
    """The batch a digest rule's alerts wait in, per target."""
    return f"{DIGEST_PREFIX}{rule}"


# -- quiet hours ----------------------------------------------------------------


def quiet_until(now: datetime, start: time, end: time, zone: ZoneInfo) -> datetime | None:
    """When the quiet hours around ``now`` end (aware UTC); None when ``now`` is not quiet.

    The span is ``[start, end)`` in ``zone``'s wall-clock time, crossing
    midnight when ``end <= start`` (``22:00``-``07:00``).
    """
    local = now.astimezone(zone)
    for days_back in (1, 0):  # the span that started yesterday may still be running
        day = local.date() - timedelta(days=days_back)
        begins = datetime.combine(day, start, tzinfo=zone)
        ends_on = day + timedelta(days=1) if end <= start else day
        ends = datetime.combine(ends_on, end, tzinfo=zone)
        if begins.astimezone(UTC) <= now.astimezone(UTC) < ends.astimezone(UTC):
            return ends.astimezone(UTC)
    return None


# -- rate limits ----------------------------------------------------------------


def rate_limit_wait(
    sent: Iterable[datetime], count: int, period: timedelta, now: datetime
) -> datetime | None:
    """When the next message may go to a target limited to ``count`` per ``period``.

    ``sent`` holds when the target accepted messages. A sliding window: None
    when fewer than ``count`` were sent in the ``period`` before ``now`` (send
    now), else the moment the oldest of the last ``count`` leaves the window.
    """
    recent = sorted(moment for moment in sent if moment > now - period)
    if len(recent) < count:
        return None
    return recent[-count] + period


# -- retries --------------------------------------------------------------------


def gives_up(created_at: datetime, now: datetime, retry_for: timedelta) -> bool:
    """Whether a failing delivery queued at ``created_at`` is kept as failed now (SPEC §5)."""
    return now - created_at >= retry_for


def retry_delay(
    attempts: int, *, initial: timedelta, maximum: timedelta, rng: random.Random
) -> timedelta:
    """How long to wait after failed attempt number ``attempts`` before the next.

    The n-th retry waits ``initial * 2**(n-1)``, at most ``maximum``, with ±20%
    jitter so a target's backlog does not retry in lockstep.
    """
    delay = min(initial * (1 << min(max(attempts, 1) - 1, _MAX_DOUBLINGS)), maximum)
    return delay * rng.uniform(0.8, 1.2)


# -- what to do with a target's due deliveries ----------------------------------


@dataclass(frozen=True, slots=True)
class Hold:
    """Put these deliveries in ``batch``, due at ``until`` unless the batch is due sooner."""

    ids: tuple[int, ...]
    batch: str
    until: datetime


@dataclass(frozen=True, slots=True)
class Message:
    """Send one message: ``first`` on its own, or (with ``batch``) its whole batch."""

    first: QueuedDelivery
    batch: str | None


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """What to do now with one target's due deliveries: holds first, then messages in order."""

    holds: tuple[Hold, ...] = ()
    messages: tuple[Message, ...] = ()


def plan_target(
    due: Sequence[QueuedDelivery],
    now: datetime,
    *,
    quiet_end: datetime | None,
    digests: Mapping[str, timedelta],
) -> TargetPlan:
    """Decide for one target's due deliveries (oldest first): hold them, or which messages go.

    ``quiet_end``: when the target's quiet hours end, if ``now`` is in them —
    then everything due is held in the quiet batch. ``digests``: the rules
    with ``digest:``, by name; their fresh deliveries start or join the
    rule's batch, due a period after the first one was queued. Deliveries
    already in a batch go out with their whole batch, as one message.
    """
    if not due:
        return TargetPlan()
    if quiet_end is not None and quiet_end > now:
        return TargetPlan(holds=(Hold(tuple(d.delivery.id for d in due), QUIET_BATCH, quiet_end),))
    held: dict[str, tuple[list[int], datetime]] = {}
    messages: list[Message] = []
    batches: set[str] = set()
    for item in due:
        period = digests.get(item.delivery.alert.rule)
        if item.batch is None and period is not None:
            batch = digest_batch(item.delivery.alert.rule)
            ids, until = held.get(batch, ([], item.delivery.created_at + period))
            ids.append(item.delivery.id)
            held[batch] = (ids, min(until, item.delivery.created_at + period))
        elif item.batch is None:
            messages.append(Message(item, None))
        elif item.batch not in batches:
            batches.add(item.batch)
            messages.append(Message(item, item.batch))
    holds = tuple(Hold(tuple(ids), batch, until) for batch, (ids, until) in held.items())
    return TargetPlan(holds=holds, messages=tuple(messages))


# -- health (SPEC §5) -----------------------------------------------------------


class HealthEvent(StrEnum):
    """A health alert to send."""

    FAILING = "failing"
    RECOVERED = "recovered"


def health_event(
    failing_since: datetime | None,
    alerted_since: datetime | None,
    now: datetime,
    after: timedelta,
) -> HealthEvent | None:
    """Whether a feed or target now needs its health alert, and which.

    ``failing_since``: the first failure of its current streak (None: healthy).
    ``alerted_since``: the streak a "failing" alert was sent for (None: none).
    One "failing" alert per streak once it has lasted longer than ``after``; one
    "recovered" alert when that streak ends (even if a new one has begun).
    """
    if alerted_since is not None and failing_since != alerted_since:
        return HealthEvent.RECOVERED
    if failing_since is not None and alerted_since is None and now - failing_since > after:
        return HealthEvent.FAILING
    return None
