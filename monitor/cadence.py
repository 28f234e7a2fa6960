"""How often to poll a feed when ``adaptive`` polling is on (issue 5).

Pure: the feed's policy, what the last response said and ``now`` in, an
interval out. :mod:`monitor.decide` jitters it into the next due time.

- **Faster for busy feeds.** From the entries of a changed body: when at
  least :data:`MIN_RECENT` of them were published in the last day, the
  typical gap between them is the publishing rate, and the feed is polled
  twice per gap, never faster than ``min_interval`` and never slower than the
  configured ``interval``.
- **Slower only when the feed asks.** RSS ``<ttl>`` and ``Cache-Control:
  max-age`` say how long a copy stays fresh; the longer of the two is
  honoured when it exceeds the interval above, up to ``max_interval``.
- **Back towards the interval when nothing changes.** Each unchanged poll
  (304, or the same bytes) stretches the previous interval by
  :data:`QUIET_STRETCH`, up to the configured interval: a feed that went
  quiet is not polled at its busiest pace for ever.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

RECENT = timedelta(days=1)  # entries published this recently show the current pace
MIN_RECENT = 3  # fewer recent entries say nothing about a pace
POLLS_PER_GAP = 2
QUIET_STRETCH = 1.25
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-maxage|max-age)\s*=\s*\"?(\d{1,10})\"?\s*(?=,|$)", re.I)


@dataclass(frozen=True, slots=True)
class Cadence:
    """A feed's polling bounds: its configured interval and the adaptive limits."""

    interval: timedelta  # configured; adaptive polling is never slower unless the feed asks
    min_interval: timedelta
    max_interval: timedelta


def requested(headers: Mapping[str, str], ttl: timedelta | None) -> timedelta | None:
    """How long the feed asks to be left alone: the longer of ``max-age`` and ``<ttl>``.

    ``headers`` have lower-case names. ``no-cache``/``no-store`` and a zero
    max-age ask for nothing.
    """
    asked = [ttl] if ttl else []
    control = headers.get("cache-control", "")
    if not re.search(r"no-(?:cache|store)", control, re.I):
        seconds = [int(m) for m in _MAX_AGE.findall(control)]
        if seconds and max(seconds) > 0:
            asked.append(timedelta(seconds=max(seconds)))
    return max(asked) if asked else None


def publishing_gap(published: Iterable[datetime | None], now: datetime) -> timedelta | None:
    """The typical time between the entries published in the last day, if enough were."""
    recent = sorted(p for p in published if p is not None and now - RECENT <= p <= now)
    if len(recent) < MIN_RECENT:
        return None
    return (recent[-1] - recent[0]) / (len(recent) - 1)


def after_change(
    cadence: Cadence, published: Iterable[datetime | None], asked: timedelta | None, now: datetime
) -> timedelta:
    """The interval after a poll that brought a new body."""
    gap = publishing_gap(published, now)
    pace = cadence.interval if gap is None else min(cadence.interval, gap / POLLS_PER_GAP)
    return _bounded(cadence, pace, asked)


def after_no_change(
    cadence: Cadence, previous: timedelta | None, asked: timedelta | None
) -> timedelta:
    """The interval after a poll that found nothing new: the last one, stretched."""
    pace = min(cadence.interval, (previous or cadence.interval) * QUIET_STRETCH)
    return _bounded(cadence, pace, asked)


def _bounded(cadence: Cadence, pace: timedelta, asked: timedelta | None) -> timedelta:
    pace = max(pace, min(cadence.min_interval, cadence.interval))
    if asked is not None and asked > pace:
        pace = min(asked, max(cadence.max_interval, cadence.interval))
    return pace
