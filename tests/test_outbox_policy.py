"""The outbox's time decisions, table-driven with fixed datetimes (monitor.outbox_policy)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from monitor.model import AlertRecord, PendingDelivery
from monitor.outbox_policy import (
    QUIET_BATCH,
    HealthEvent,
    Hold,
    gives_up,
    health_event,
    plan_target,
    quiet_until,
    rate_limit_wait,
    retry_delay,
)
from monitor.store.base import QueuedDelivery

KYIV = ZoneInfo("Europe/Kyiv")


def utc(text: str) -> datetime:
    """An aware UTC datetime from ``YYYY-MM-DD HH:MM``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# Kyiv is UTC+3 in summer (EEST) and UTC+2 in winter (EET); 2024-10-27 04:00 local
# went back to 03:00 and 2024-03-31 03:00 local jumped to 04:00.
QUIET_CASES = [
    # (now UTC, start, end, zone, expected end UTC or None)
    ("2024-06-01 18:59", "22:00", "07:00", KYIV, None),  # 21:59 local: not yet
    ("2024-06-01 19:00", "22:00", "07:00", KYIV, "2024-06-02 04:00"),  # 22:00 local: starts
    ("2024-06-01 23:30", "22:00", "07:00", KYIV, "2024-06-02 04:00"),  # 02:30 local, next day
    ("2024-06-02 03:59", "22:00", "07:00", KYIV, "2024-06-02 04:00"),  # 06:59 local
    ("2024-06-02 04:00", "22:00", "07:00", KYIV, None),  # 07:00 local: the end is not quiet
    ("2024-06-02 12:00", "22:00", "07:00", KYIV, None),  # midday
    ("2024-06-02 12:00", "09:00", "17:00", KYIV, "2024-06-02 14:00"),  # a daytime span
    ("2024-06-02 05:59", "09:00", "17:00", KYIV, None),  # 08:59 local
    ("2024-06-02 06:00", "09:00", "17:00", ZoneInfo("UTC"), None),
    ("2024-06-02 23:00", "22:00", "07:00", ZoneInfo("UTC"), "2024-06-03 07:00"),
    ("2024-06-03 00:00", "00:00", "06:00", ZoneInfo("UTC"), "2024-06-03 06:00"),  # from midnight
    ("2024-06-03 23:00", "20:00", "00:00", ZoneInfo("UTC"), "2024-06-04 00:00"),  # to midnight
    # Autumn change: the night is an hour longer; 07:00 local is 05:00 UTC after it.
    ("2024-10-26 20:00", "22:00", "07:00", KYIV, "2024-10-27 05:00"),
    # Spring change: the night is an hour shorter; 07:00 local is 04:00 UTC after it.
    ("2024-03-30 21:00", "22:00", "07:00", KYIV, "2024-03-31 04:00"),
    # A span crossing midnight, seen after the zone's date (and year) has changed.
    ("2024-12-31 22:30", "23:00", "02:00", KYIV, "2025-01-01 00:00"),  # 00:30 local
    ("2024-12-31 23:30", "23:00", "02:00", KYIV, "2025-01-01 00:00"),  # 01:30 local
    ("2025-01-01 00:00", "23:00", "02:00", KYIV, None),  # 02:00 local
]


@pytest.mark.parametrize(("now", "start", "end", "zone", "expected"), QUIET_CASES)
def test_quiet_until_reads_spans_in_the_targets_zone(
    now: str, start: str, end: str, zone: ZoneInfo, expected: str | None
) -> None:
    """Quiet hours are [start, end) in local time, may cross midnight, and follow DST."""
    begins, ends = time.fromisoformat(start), time.fromisoformat(end)
    assert quiet_until(utc(now), begins, ends, zone) == (utc(expected) if expected else None)


RATE_CASES = [
    # (sent minutes after T, count, period minutes, now minute, expected minute or None)
    ([], 2, 1, 0, None),
    ([0], 2, 1, 0, None),
    ([0, 0], 2, 1, 0, 1),  # two sent at once fill the minute: next slot when the first ages out
    ([0, 0.5], 2, 1, 0.9, 1),
    ([0, 0.5], 2, 1, 1, None),  # the first has left the window at exactly one period
    ([0, 0.5, 0.75], 2, 1, 1, 1.5),  # the oldest of the last two decides
    ([0, 1, 2, 3], 3, 10, 4, 11),
    ([0, 1, 2, 3], 5, 10, 4, None),
]


@pytest.mark.parametrize(("sent", "count", "period", "now", "expected"), RATE_CASES)
def test_rate_limit_is_a_sliding_window(
    sent: list[float], count: int, period: float, now: float, expected: float | None
) -> None:
    """At most ``count`` messages in any ``period``; over it, wait for the oldest to age out."""
    base = utc("2024-06-01 12:00")

    def at(minutes: float) -> datetime:
        return base + timedelta(minutes=minutes)

    waited = rate_limit_wait([at(m) for m in sent], count, timedelta(minutes=period), at(now))
    assert waited == (at(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("attempts", "low", "high"),
    [
        (1, 24, 36),
        (2, 48, 72),
        (3, 96, 144),
        (7, 1536, 2304),
        (8, 2880, 3600 * 1.2),
        (40, 2880, 4320),
    ],
)
def test_retry_delay_doubles_with_jitter_up_to_the_maximum(
    attempts: int, low: float, high: float
) -> None:
    """Retry n waits initial * 2**(n-1), capped at retry_max, within ±20% jitter."""
    rng = random.Random(attempts)
    for _ in range(20):
        delay = retry_delay(
            attempts, initial=timedelta(seconds=30), maximum=timedelta(hours=1), rng=rng
        ).total_seconds()
        assert low <= delay <= high


def test_gives_up_once_retry_for_has_passed_since_queuing() -> None:
    """A delivery is failed when retry_for has passed since it was queued, not before."""
    queued = utc("2024-06-01 12:00")
    day = timedelta(hours=24)
    assert not gives_up(queued, queued + day - timedelta(seconds=1), day)
    assert gives_up(queued, queued + day, day)


HEALTH_CASES = [
    # (failing since minute, alerted since minute, now minute, expected)
    (None, None, 100, None),  # healthy
    (0, None, 30, None),  # failing, not long enough
    (0, None, 31, HealthEvent.FAILING),  # longer than 30 minutes
    (0, 0, 500, None),  # already alerted for this streak
    (None, 0, 500, HealthEvent.RECOVERED),  # the streak ended
    (400, 0, 401, HealthEvent.RECOVERED),  # ended, and a new one began: recovery first
]


@pytest.mark.parametrize(("failing", "alerted", "now", "expected"), HEALTH_CASES)
def test_one_failing_and_one_recovered_alert_per_streak(
    failing: int | None, alerted: int | None, now: int, expected: HealthEvent | None
) -> None:
    """A streak longer than the threshold alerts once; its end alerts once."""
    base = utc("2024-06-01 12:00")

    def at(minute: int | None) -> datetime | None:
        return None if minute is None else base + timedelta(minutes=minute)

    moment = at(now)
    assert moment is not None
    assert health_event(at(failing), at(alerted), moment, timedelta(minutes=30)) == expected


def queued(
    id: int, rule: str, created: datetime, batch: str | None = None, target: str = "desk"
) -> QueuedDelivery:
    """A pending delivery of an alert of ``rule`` queued at ``created``."""
    alert = AlertRecord(id, rule, f"headline {id}", None, None, "", (), (), (), created)
    return QueuedDelivery(PendingDelivery(id, target, 0, created, alert), batch, created)


def test_plan_sends_plain_alerts_and_holds_digest_rules_from_their_first_alert() -> None:
    """Fresh alerts of a digest rule start its batch, due a period after the first."""
    now = utc("2024-06-01 12:00")
    due = [
        queued(1, "plain", now - timedelta(minutes=5)),
        queued(2, "digest", now - timedelta(minutes=3)),
        queued(3, "digest", now - timedelta(minutes=1)),
    ]
    plan = plan_target(due, now, quiet_end=None, digests={"digest": timedelta(hours=1)})
    assert plan.holds == (Hold((2, 3), "digest:digest", now + timedelta(minutes=57)),)
    assert [(m.first.delivery.id, m.batch) for m in plan.messages] == [(1, None)]


def test_plan_sends_a_due_batch_once_whatever_its_members() -> None:
    """Members of a batch due together become one message, in the order of its oldest."""
    now = utc("2024-06-01 12:00")
    due = [
        queued(1, "digest", now, "digest:digest"),
        queued(2, "plain", now),
        queued(3, "digest", now, "digest:digest"),
        queued(4, "other", now, QUIET_BATCH),
    ]
    plan = plan_target(due, now, quiet_end=None, digests={"digest": timedelta(hours=1)})
    assert plan.holds == ()
    assert [(m.first.delivery.id, m.batch) for m in plan.messages] == [
        (1, "digest:digest"),
        (2, None),
        (4, QUIET_BATCH),
    ]


def test_plan_holds_everything_due_during_quiet_hours() -> None:
    """In quiet hours every due delivery, batched or not, waits in the quiet batch."""
    now = utc("2024-06-01 23:00")
    end = utc("2024-06-02 07:00")
    due = [queued(1, "plain", now), queued(2, "digest", now, "digest:digest")]
    plan = plan_target(due, now, quiet_end=end, digests={"digest": timedelta(hours=1)})
    assert plan == plan_target(due, now, quiet_end=end, digests={})
    assert plan.holds == (Hold((1, 2), QUIET_BATCH, end),)
    assert plan.messages == ()
