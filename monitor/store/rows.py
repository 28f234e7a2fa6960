"""What the stores do with rows once the database has answered: the same for every backend.

The SQL differs between SQLite and PostgreSQL (``json_each`` against
``ANY(array)``, text timestamps against ``timestamptz``); which story a key
belongs to and how an alert is assembled must not. Each backend fetches the
rows its way, decodes its own timestamps, and hands them here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.model import (
    AlertRecord,
    AlertReport,
    DeliveryState,
    FeedReport,
    FeedStatus,
    FeedUpdateIntent,
    Hit,
    Source,
    StoreLookup,
    StoryRef,
)
from monitor.store.base import FeedHealth

# How long the per-target send log (for rate limits) is kept.
SENDS_KEPT = timedelta(days=31)


@dataclass(frozen=True, slots=True)
class Pruned:
    """How many rows a store's ``prune`` deleted."""

    seen: int
    story_keys: int


def winning_stories(rows: Iterable[Any], feed_url: str) -> dict[str, str]:
    """For each story key in ``rows`` of (key, feed_url, story, seen_at), the story it means.

    When several stories qualify for one key, the one this feed recorded wins,
    then the most recently recorded (a story continues), then the greatest
    story id. ``seen_at`` only needs to compare in time order.
    """
    best: dict[str, tuple[bool, Any, str]] = {}
    for key, source, story, seen_at in rows:
        rank = (source == feed_url, seen_at, story)
        if key not in best or rank > best[key]:
            best[key] = rank
    return {key: rank[2] for key, rank in best.items()}


def lookup_result(
    seen_ids: frozenset[str], stories: Mapping[str, str], alerted: Iterable[tuple[str, str]]
) -> StoreLookup:
    """The answer to ``Store.lookup``: ``alerted`` holds (story, rule) for those stories."""
    rules: dict[str, set[str]] = {story: set() for story in stories.values()}
    for story, rule in alerted:
        rules[story].add(rule)
    refs = {story: StoryRef(story, frozenset(names)) for story, names in rules.items()}
    return StoreLookup(seen_ids, {key: refs[story] for key, story in stories.items()})


def alert_records(
    alert_rows: Iterable[Any],
    source_rows: Iterable[Any],
    when: Callable[[Any], datetime],
    terms: Callable[[str], tuple[str, ...]],
    hits: Callable[[str], Any],
) -> dict[int, AlertRecord]:
    """Alerts from rows of (id, rule, title, link, published, summary, terms, hits,
    created_at) and their sources from rows of (alert_id, feed, link) in recorded order.

    ``when`` decodes the backend's timestamps; ``terms`` and ``hits`` its JSON columns.
    """
    sources: dict[int, list[Source]] = {}
    for alert_id, feed, link in source_rows:
        sources.setdefault(alert_id, []).append(Source(feed, link))
    return {
        row[0]: AlertRecord(
            id=row[0],
            rule=row[1],
            title=row[2],
            link=row[3],
            published=when(row[4]) if row[4] is not None else None,
            summary=row[5],
            terms=terms(row[6]),
            hits=hits(row[7]),
            sources=tuple(sources.get(row[0], ())),
            created_at=when(row[8]),
        )
        for row in alert_rows
    }


# -- JSON columns, the same shape in every backend --------------------------------


def json_list(values: Iterable[object]) -> str:
    """Values as a JSON array: for ``IN (SELECT value FROM json_each(?))`` and list columns."""
    return json.dumps(list(values), ensure_ascii=False)


def hits_json(hits: Iterable[Hit]) -> str:
    """Hits as a JSON array of objects (readable, and the same shape in any backend)."""
    return json_list(
        {"field": hit.field, "start": hit.start, "end": hit.end, "term": hit.term} for hit in hits
    )


def hits_from_json(text: str) -> tuple[Hit, ...]:
    """The inverse of :func:`hits_json`."""
    return tuple(Hit(h["field"], h["start"], h["end"], h["term"]) for h in json.loads(text))


def terms_from_json(text: str) -> tuple[str, ...]:
    """A stored JSON array of query terms."""
    return tuple(str(term) for term in json.loads(text))


# -- feeds --------------------------------------------------------------------------


def feed_params(
    intent: FeedUpdateIntent, now: Any, encode: Callable[[datetime], Any]
) -> dict[str, Any]:
    """The named parameters of a backend's feed UPDATE for one poll's intent.

    ``now`` is already encoded; ``encode`` turns the other datetimes into the
    backend's column type.
    """
    return {
        "url": intent.url,
        "fetch_url": intent.fetch_url,
        "ok": intent.status is FeedStatus.OK,
        "title": intent.title,
        "etag": intent.etag,
        "last_modified": intent.last_modified,
        "body_hash": intent.body_hash,
        "status": intent.status.value,
        "http_status": intent.http_status,
        "error": intent.error,
        "error_streak": intent.error_streak,
        "now": now,
        "success": intent.success,
        "next_due": encode(intent.next_due),
        "poll_interval": (
            intent.poll_interval.total_seconds() if intent.poll_interval is not None else None
        ),
    }


def feed_reports(
    rows: Iterable[Any], when: Callable[[Any], datetime | None]
) -> tuple[FeedReport, ...]:
    """Status lines from rows of (url, title, status, http_status, error, error_streak,
    last_fetch, last_success, next_due, entries seen)."""
    return tuple(
        FeedReport(
            url=row[0],
            title=row[1],
            status=FeedStatus(row[2]),
            http_status=row[3],
            error=row[4],
            error_streak=row[5],
            last_fetch=when(row[6]),
            last_success=when(row[7]),
            next_due=when(row[8]),
            entries_seen=row[9],
        )
        for row in rows
    )


def feed_health(rows: Iterable[Any], when: Callable[[Any], datetime | None]) -> list[FeedHealth]:
    """Feed health from rows of (url, title, status, error, error_streak, failing_since,
    health_alert_since)."""
    return [
        FeedHealth(
            url=row[0],
            title=row[1],
            status=FeedStatus(row[2]),
            error=row[3],
            error_streak=row[4],
            failing_since=when(row[5]),
            health_alert_since=when(row[6]),
        )
        for row in rows
    ]


def recent_alerts(
    alert_rows: Sequence[Any], delivery_rows: Iterable[Any], when: Callable[[Any], datetime]
) -> tuple[AlertReport, ...]:
    """The last alerts from rows of (id, rule, title, link, created_at), newest first, with
    each target's delivery state from rows of (alert_id, target, state) in id order."""
    states: dict[int, dict[str, DeliveryState]] = {row[0]: {} for row in alert_rows}
    for alert_id, target, state in delivery_rows:
        states[alert_id][target] = DeliveryState(state)
    return tuple(
        AlertReport(
            id=row[0],
            rule=row[1],
            title=row[2],
            link=row[3],
            created_at=when(row[4]),
            deliveries=states[row[0]],
        )
        for row in alert_rows
    )
