"""Decide what one poll of one feed changes: the pure core of the pipeline.

Old state, the fetch outcome, what the store already knows and ``now`` go in;
a :class:`~monitor.model.FeedUpdateIntent` comes out (after lemon24/reader's
``Decider``). Nothing here performs I/O or reads the clock; randomness (for
jitter) is a parameter, so tests pin it.

When a new entry stays silent (SPEC §5, "no flood"; issue 4):

- **First fetch.** Entries present the first time a feed is fetched are
  recorded without alerting, unless ``backfill`` is set on the feed or rule.
- **Too old.** An entry published before ``now - max_age`` never alerts.
- **Archive.** An entry published more than ``archive_grace`` (by default a
  third of ``max_age``: one day at the default three days) before the feed's
  *previous successful fetch* is being republished: the feed could have
  shown it then and did not. A feed that suddenly publishes its archive (a
  CMS migration, a "load more" page served as the feed) is recorded without
  alerting. The grace lets through entries that appear late
  with their original date (embargoes, syndication delays, feeds that publish
  with the drafting time). Measuring from the previous fetch rather than
  ``now`` keeps a feed that was down or unpolled for days from losing what it
  published meanwhile; ``max_age`` still bounds that. The grace follows
  ``max_age`` because an operator who widens ``max_age`` (slow sources, or
  none at all with a huge value) has said older entries are still news.
- **Re-issue.** A new entry (unseen id) whose story the store already knows
  adds itself as a source where its rules alerted, and raises no alert of its
  own when it is a re-issue: undated, or published at or before the feed's
  previous successful fetch (so the feed or its sources could have shown it
  then). This is guid churn after a silent first fetch: without it, a feed
  recorded silently that re-issues every entry under new guids would alert
  them all. A known story still alerts a rule that has not alerted on it
  when the entry is newer than the previous fetch (the story reached a feed
  in that rule's scope). The store cannot yet say whether *this* feed
  recorded the story (``StoryRef`` carries no such flag), which would make
  this exact; until then the publication date stands in.
- **Undated entries** get no burst heuristic. Feed order is not reliable
  (some feeds append oldest-first), so any "too many new entries at once"
  cut-off would drop real news, the worse failure for users who must not
  miss a story. A republished archive of undated entries is still caught when
  its entries keep their ids, links or headlines (seen ids, story keys).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.cadence import Cadence, after_change, after_no_change, requested
from monitor.errors import FeedError, FetchError, HTTPStatusError
from monitor.model import (
    AlertIntent,
    Entry,
    FeedForUpdate,
    FeedStatus,
    FeedUpdateIntent,
    Fetched,
    Hit,
    ParsedFeed,
    RuleMatch,
    SeenIntent,
    SourceIntent,
    StoreLookup,
)
from monitor.story import story_keys

Matcher = Callable[[Entry], Sequence[RuleMatch]]

# Retry-After beyond this is treated as this: a server must not silence a feed for weeks.
MAX_RETRY_AFTER = timedelta(days=1)
# While the network is down (monitor.outage), feeds are retried this often (or at their
# interval, when shorter) instead of backing off: recovery is noticed within minutes.
OUTAGE_RETRY = timedelta(minutes=2)


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """A rule as deciding needs it: who to tell, and whether it alerts on first fetch."""

    name: str
    targets: tuple[str, ...]
    backfill: bool = False


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """A configured feed and the policy that applies to it."""

    url: str
    name: str | None  # configured display name; None means the feed's own title
    interval: timedelta
    rules: tuple[RuleSpec, ...]  # the rules whose scope includes this feed
    backfill: bool = False
    jitter: float = 0.1  # fraction of the interval
    max_backoff: timedelta = timedelta(hours=6)
    max_age: timedelta = timedelta(days=3)
    story_window: timedelta = timedelta(hours=24)
    # Entries dated this long before the previous successful fetch are archive (module
    # doc); None means a third of max_age.
    archive_grace: timedelta | None = None
    cadence: Cadence | None = None  # adaptive polling's bounds; None: always ``interval``

    def label(self, feed_title: str | None) -> str:
        """The name alerts show for this feed."""
        return self.name or feed_title or self.url


def jittered(delay: timedelta, jitter: float, rng: random.Random) -> timedelta:
    """``delay`` spread by ±``jitter`` (a fraction) so feeds do not all fire at once."""
    return delay * (1 + rng.uniform(-jitter, jitter))


def backoff_delay(
    spec: FeedSpec, streak: int, retry_after: float | None, rng: random.Random
) -> timedelta:
    """How long to wait after the ``streak``-th failure in a row (streak >= 1).

    Doubles from the feed's interval, capped at ``max_backoff`` so a feed is
    never given up on (SPEC §5); a server's Retry-After is honoured when longer.
    """
    doubling = spec.interval * (2 ** min(streak - 1, 30))
    delay = jittered(min(doubling, spec.max_backoff), spec.jitter, rng)
    if retry_after is not None:
        delay = max(delay, min(timedelta(seconds=retry_after), MAX_RETRY_AFTER))
    return delay


def decide_failure(
    feed: FeedForUpdate,
    spec: FeedSpec,
    error: FeedError,
    now: datetime,
    rng: random.Random,
    *,
    network_down: bool = False,
) -> FeedUpdateIntent:
    """The intent for a poll that failed: record the error and back off.

    410 Gone disables the feed (SPEC §5); it stays visible in ``status``.
    With ``network_down`` (monitor.outage), a failure to reach the host is
    the network's, not the feed's: the streak does not grow past 1 and the
    feed is retried at a fixed pace (:data:`OUTAGE_RETRY`) instead of backing off.
    """
    if network_down and isinstance(error, FetchError) and error.network:
        return FeedUpdateIntent(
            url=feed.url,
            now=now,
            status=FeedStatus.ERROR,
            next_due=now + jittered(min(spec.interval, OUTAGE_RETRY), spec.jitter, rng),
            error_streak=max(feed.error_streak, 1),
            error=f"{error.message} (the network is down: every feed fails to connect)",
        )
    streak = feed.error_streak + 1
    status_code = error.status if isinstance(error, HTTPStatusError) else None
    if status_code == 410:
        return FeedUpdateIntent(
            url=feed.url,
            now=now,
            status=FeedStatus.GONE,
            next_due=now + timedelta(days=3650),
            error_streak=streak,
            http_status=410,
            error=f"{error.message}: the feed is gone; disabled until its URL changes",
        )
    return FeedUpdateIntent(
        url=feed.url,
        now=now,
        status=FeedStatus.ERROR,
        next_due=now + backoff_delay(spec, streak, error.retry_after, rng),
        error_streak=streak,
        http_status=status_code,
        error=error.message,
    )


def decide_unchanged(
    feed: FeedForUpdate, spec: FeedSpec, fetched: Fetched, now: datetime, rng: random.Random
) -> FeedUpdateIntent:
    """The intent for a poll whose body did not change (304, or the same bytes again)."""
    interval = None
    if spec.cadence is not None:
        asked = requested(fetched.headers, None)
        interval = after_no_change(spec.cadence, feed.poll_interval, asked)
    return FeedUpdateIntent(
        url=feed.url,
        now=now,
        status=FeedStatus.NOT_MODIFIED if fetched.not_modified else FeedStatus.UNCHANGED,
        next_due=now + jittered(interval or spec.interval, spec.jitter, rng),
        poll_interval=interval,
        error_streak=0,
        http_status=fetched.status,
        fetch_url=fetched.permanent_redirect,
        etag=fetched.etag or feed.etag,
        last_modified=fetched.last_modified or feed.last_modified,
        body_hash=feed.body_hash,
        title=feed.title,
        success=True,
    )


def too_old(
    published: datetime | None,
    previous_success: datetime | None,
    spec: FeedSpec,
    now: datetime,
) -> bool:
    """Whether a new entry is too old to alert: beyond ``max_age``, or archive (module doc).

    Undated entries are never too old: there is nothing sound to judge them by.
    """
    if published is None:
        return False
    if published < now - spec.max_age:
        return True
    if previous_success is None:
        return False
    grace = spec.archive_grace if spec.archive_grace is not None else spec.max_age / 3
    return published < previous_success - grace


def reissued(published: datetime | None, previous_success: datetime | None) -> bool:
    """Whether a new entry of an already known story is that story re-issued, not news.

    True when it is undated, or dated at or before the feed's previous
    successful fetch (module doc, "Re-issue").
    """
    if published is None:
        return True
    return previous_success is not None and published <= previous_success


def lookup_keys(entries: Sequence[Entry]) -> tuple[list[str], list[str], list[str]]:
    """The entry ids, link keys and title keys to ask the store about."""
    ids: list[str] = []
    links: list[str] = []
    titles: list[str] = []
    for entry in entries:
        ids.append(entry.id)
        link_keys, title_keys = story_keys(entry)
        links.extend(link_keys)
        titles.extend(title_keys)
    return ids, links, titles


def decide_entries(
    feed: FeedForUpdate,
    spec: FeedSpec,
    fetched: Fetched,
    parsed: ParsedFeed,
    body_hash: str,
    lookup: StoreLookup,
    match: Matcher,
    now: datetime,
    rng: random.Random,
) -> FeedUpdateIntent:
    """The intent for a parsed feed: which entries are new, and which alerts they raise.

    An entry is new when this feed has not recorded its id. A new entry whose
    story (by link or title) already alerted for a rule only adds itself as a
    source of that alert. Entries present on a feed's first successful fetch
    are recorded without alerting unless ``backfill`` is set on the feed or
    rule; entries older than ``max_age``, archive entries and re-issues of
    known stories never alert (SPEC §5; the module doc says why each).
    """
    first_fetch = feed.last_success is None
    # A silent first fetch alerts nothing and adds no sources: no rule need look at it.
    silent = first_fetch and not spec.backfill and not any(r.backfill for r in spec.rules)
    label = spec.label(parsed.title)
    stories = {key: ref.story for key, ref in lookup.stories.items()}
    alerted: dict[str, set[str]] = {}
    for ref in lookup.stories.values():
        alerted.setdefault(ref.story, set()).update(ref.alerted_rules)
    rules = {rule.name: rule for rule in spec.rules}
    seen: list[SeenIntent] = []
    alerts: list[AlertIntent] = []
    sources: list[SourceIntent] = []
    seen_ids = set(lookup.seen_ids)
    for entry in parsed.entries:
        if entry.id in seen_ids:
            continue
        seen_ids.add(entry.id)
        link_keys, title_keys = story_keys(entry)
        keys = link_keys + title_keys
        known = next((stories[k] for k in keys if k in stories), None)
        story = known or (keys[0] if keys else f"entry:{feed.url}#{entry.id}")
        # Known to the store (not merely earlier in this batch): a re-issue cannot alert.
        stored = any(k in lookup.stories for k in keys)
        for key in keys:
            stories.setdefault(key, story)
        seen.append(SeenIntent(entry.id, story, keys, entry.title, entry.link, entry.published))
        if silent or too_old(entry.published, feed.last_success, spec, now):
            continue
        for result in match(entry):
            rule = rules.get(result.rule)
            if rule is None:
                continue
            if first_fetch and not (spec.backfill or rule.backfill):
                continue
            done = alerted.setdefault(story, set())
            if rule.name in done:
                sources.append(SourceIntent(rule.name, story, label, feed.url, entry.link))
                continue
            if stored and reissued(entry.published, feed.last_success):
                continue
            done.add(rule.name)
            alerts.append(
                AlertIntent(
                    rule=rule.name,
                    story=story,
                    feed=label,
                    feed_url=feed.url,
                    title=entry.title,
                    link=entry.link,
                    published=entry.published,
                    summary=_alert_text(entry),
                    terms=result.terms,
                    hits=_alert_hits(entry, result.hits),
                    targets=rule.targets,
                )
            )
    interval = None
    if spec.cadence is not None:
        asked = requested(fetched.headers, parsed.ttl)
        interval = after_change(spec.cadence, (e.published for e in parsed.entries), asked, now)
    return FeedUpdateIntent(
        url=feed.url,
        now=now,
        status=FeedStatus.OK,
        next_due=now + jittered(interval or spec.interval, spec.jitter, rng),
        poll_interval=interval,
        error_streak=0,
        http_status=fetched.status,
        fetch_url=fetched.permanent_redirect,
        title=parsed.title,
        etag=fetched.etag,
        last_modified=fetched.last_modified,
        body_hash=body_hash,
        success=True,
        seen=tuple(seen),
        alerts=tuple(alerts),
        sources=tuple(sources),
        error="; ".join(parsed.warnings)[:500] or None,
    )


# An alert keeps this much of its entry's text: enough for any excerpt, not a whole article.
ALERT_TEXT_MAX = 4000


def _alert_text(entry: Entry) -> str:
    """The text an alert's excerpt comes from: the summary, else the start of the content.

    JSON Feed items and some Atom entries carry only content; without it their
    alerts would show the headline twice and none of the story.
    """
    return (entry.summary or entry.content)[:ALERT_TEXT_MAX]


def _alert_hits(entry: Entry, hits: Sequence[Hit]) -> tuple[Hit, ...]:
    """The hits inside the title and the alert text, the latter labelled ``summary``."""
    field = "summary" if entry.summary else "content"
    kept = [h for h in hits if h.field == "title"]
    kept += [
        replace(h, field="summary") for h in hits if h.field == field and h.end <= ALERT_TEXT_MAX
    ]
    return tuple(kept)
