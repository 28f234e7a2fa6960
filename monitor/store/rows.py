"""What the stores do with rows once the database has answered: the same for every backend.

The SQL differs between SQLite and PostgreSQL (``json_each`` against
``ANY(array)``, text timestamps against ``timestamptz``); which story a key
belongs to and how an alert is assembled must not. Each backend fetches the
rows its way, decodes its own timestamps, and hands them here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from monitor.model import AlertRecord, Hit, Source, StoreLookup, StoryRef

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
