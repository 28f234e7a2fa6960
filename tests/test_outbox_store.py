"""The store's outbox mechanics (issue 4): pauses, batches, send log, failing streaks, health.

Part of the store contract, run against every backend. Upgrading a version-1
SQLite file lives with SQLite's own promises in ``test_store_sqlite.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from test_store import BACKENDS, T0, A, B, alert, location, poll

from monitor.model import AlertIntent, DeliveryOutcome, DeliveryState, FeedStatus
from monitor.store import Store, open_store
from monitor.store.base import HealthNotice, HealthSubject, MessageOutcome

MINUTE = timedelta(minutes=1)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store of each backend (SQLite, PostgreSQL), as in ``test_store.py``."""
    opened = open_store(location(request, tmp_path))
    yield opened
    opened.close()


def queue(store: Store, *stories: str, targets: tuple[str, ...] = ("desk", "phone")) -> None:
    """Queue one alert per story (rule ``r``) to ``targets``, at T0."""
    store.apply(poll(A, T0, alerts=tuple(alert("r", s, A, *targets) for s in stories)))


def test_due_deliveries_leave_out_a_paused_target_until_its_pause_ends(store: Store) -> None:
    """A paused target's backlog is not due, so other targets' deliveries come first."""
    queue(store, "s1", "s2")
    store.pause_target("desk", T0 + 5 * MINUTE, "the target asked to slow down (429)")
    assert {q.delivery.target for q in store.due_deliveries(T0, 10)} == {"phone"}
    assert [q.delivery.target for q in store.due_deliveries(T0 + 5 * MINUTE, 10)] == [
        "desk",
        "phone",
        "desk",
        "phone",
    ]
    (state,) = [s for name, s in store.target_states().items() if name == "desk"]
    assert state.paused_until == T0 + 5 * MINUTE
    assert state.pause_reason == "the target asked to slow down (429)"


def test_hold_starts_a_batch_and_later_members_join_its_due_time(store: Store) -> None:
    """The first hold sets the batch's time; later holds take it, whatever they ask."""
    queue(store, "s1", "s2", "s3", targets=("desk",))
    first, second, third = (q.delivery.id for q in store.due_deliveries(T0, 10))
    assert store.hold([first], "digest:r", T0 + 60 * MINUTE) == T0 + 60 * MINUTE
    assert store.hold([second, third], "digest:r", T0 + 90 * MINUTE) == T0 + 60 * MINUTE
    assert store.due_deliveries(T0 + 59 * MINUTE, 10) == []
    members = store.batch_members("desk", "digest:r")
    assert [(q.delivery.id, q.batch, q.due) for q in members] == [
        (first, "digest:r", T0 + 60 * MINUTE),
        (second, "digest:r", T0 + 60 * MINUTE),
        (third, "digest:r", T0 + 60 * MINUTE),
    ]
    assert store.status().pending == 3  # held, not sent nor counted as attempts
    assert all(q.delivery.attempts == 0 for q in members)


def test_hold_refuses_deliveries_of_two_targets(store: Store) -> None:
    """A batch belongs to one target; mixing targets is a bug, not a silent merge."""
    queue(store, "s1")
    ids = [q.delivery.id for q in store.due_deliveries(T0, 10)]
    with pytest.raises(ValueError, match="one target"):
        store.hold(ids, "quiet", T0)


def test_record_message_logs_sends_and_tracks_the_failing_streak(store: Store) -> None:
    """Failures start a streak at their first time; a 429 pauses; acceptance ends the streak."""
    queue(store, "s1", "s2", targets=("desk",))
    one, two = (q.delivery.id for q in store.due_deliveries(T0, 10))
    retry = DeliveryOutcome(one, T0, DeliveryState.PENDING, "500", next_attempt=T0 + MINUTE)
    store.record_message(MessageOutcome("desk", T0, (retry,), error="HTTP 500"))
    later = T0 + 2 * MINUTE
    retry = DeliveryOutcome(one, later, DeliveryState.PENDING, "500", next_attempt=later)
    store.record_message(MessageOutcome("desk", later, (retry,), error="HTTP 502"))
    state = store.target_states()["desk"]
    assert (state.failing_since, state.last_error) == (T0, "HTTP 502")

    pause = T0 + 10 * MINUTE
    paused = DeliveryOutcome(
        two, later, DeliveryState.PENDING, "429", next_attempt=pause, count_attempt=False
    )
    store.record_message(MessageOutcome("desk", later, (paused,), paused_until=pause))
    state = store.target_states()["desk"]
    assert (state.paused_until, state.failing_since) == (pause, T0)

    sent = T0 + 11 * MINUTE
    both = tuple(DeliveryOutcome(i, sent, DeliveryState.SENT) for i in (one, two))
    store.record_message(MessageOutcome("desk", sent, both, sent=True))
    state = store.target_states()["desk"]
    assert (state.failing_since, state.last_error) == (None, None)
    assert store.status().pending == 0
    assert store.sends_since("desk", T0) == [T0, later, later, sent]
    assert store.sends_since("desk", T0 + MINUTE) == [later, later, sent]
    assert store.sends_since("phone", T0) == []


def test_an_unsent_request_stays_out_of_the_send_log(store: Store) -> None:
    """A message that never went out (unknown target) does not count against the rate limit."""
    queue(store, "s1", targets=("gone",))
    (item,) = store.due_deliveries(T0, 10)
    failed = DeliveryOutcome(item.delivery.id, T0, DeliveryState.FAILED, "no such target")
    store.record_message(
        MessageOutcome("gone", T0, (failed,), requested=False, error="no such target")
    )
    assert store.sends_since("gone", T0) == []
    assert store.status().failed == 1


def test_a_feed_fails_since_the_first_error_of_its_streak(store: Store) -> None:
    """failing_since is set by the first error, kept through the streak, cleared by success."""
    store.sync_feeds([A, B], T0)
    for minutes, streak in ((0, 1), (10, 2), (30, 3)):
        at = T0 + minutes * MINUTE
        store.apply(
            poll(A, at, status=FeedStatus.ERROR, error_streak=streak, success=False, error="503")
        )
    store.apply(poll(B, T0))
    (health,) = store.feed_health([A, B])
    assert (health.url, health.failing_since, health.error_streak, health.error) == (
        A,
        T0,
        3,
        "503",
    )
    store.apply(poll(A, T0 + 40 * MINUTE))
    assert store.feed_health([A, B]) == []


def health_alert(story: str, *targets: str) -> AlertIntent:
    """A health alert intent about feed A."""
    return AlertIntent(
        "news-monitor health", story, "Feed A", A, "Feed A is failing", None, None,
        "No successful fetch.", (), (), targets,
    )  # fmt: skip


def test_queue_health_remembers_the_streak_and_queues_each_story_once(store: Store) -> None:
    """Queuing a health alert and marking its streak are one step; a repeat queues nothing."""
    store.apply(poll(A, T0, status=FeedStatus.ERROR, error_streak=1, success=False))
    notice = HealthNotice(HealthSubject.FEED, A, health_alert("h1", "desk"), T0)
    assert store.queue_health(notice, T0 + MINUTE)
    assert not store.queue_health(notice, T0 + 2 * MINUTE)
    (health,) = store.feed_health([A])
    assert health.health_alert_since == T0
    (item,) = store.due_deliveries(T0 + 2 * MINUTE, 10)
    assert (item.delivery.target, item.delivery.alert.title) == ("desk", "Feed A is failing")

    target = HealthNotice(HealthSubject.TARGET, "phone", health_alert("h2", "desk"), T0)
    assert store.queue_health(target, T0)
    assert store.target_states()["phone"].health_alert_since == T0
    cleared = HealthNotice(HealthSubject.TARGET, "phone", health_alert("h3", "desk"), None)
    assert store.queue_health(cleared, T0)
    assert store.target_states()["phone"].health_alert_since is None
