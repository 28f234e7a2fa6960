"""Frozen values that flow between the stages of the pipeline.

Names say which way a value travels (after lemon24/reader): ``...ForUpdate``
comes out of the store, ``...Intent`` goes back into it, ``Fetched`` and
``ParsedFeed`` come from the network and the parser. Adapters convert httpx
responses and feedparser dicts into these at the edge; nothing inward sees
a library object.

    tick ─► FeedForUpdate ─► fetch ─► Fetched ─► parse ─► ParsedFeed
         ─► decide(…, StoreLookup, now) ─► FeedUpdateIntent ─► store.apply
    PendingDelivery ─► render ─► notify ─► DeliveryOutcome ─► store.record
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

# -- parsed feeds -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    """One feed entry, normalised: every text field is plain text, times are aware UTC."""

    id: str  # guid/id, else link, else a hash of stable fields
    title: str
    summary: str
    content: str
    link: str | None
    published: datetime | None
    updated: datetime | None = None
    authors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """What a feed body said, with its entries in document order."""

    title: str | None
    link: str | None
    entries: tuple[Entry, ...]
    # Problems that did not stop parsing (feedparser's bozo, dropped items).
    warnings: tuple[str, ...] = ()
    ttl: timedelta | None = None  # RSS <ttl>: how long the feed says a copy stays fresh


# -- fetching -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fetched:
    """A completed HTTP exchange for one feed (errors are raised as FetchError instead)."""

    url: str  # the URL that finally answered, after redirects
    status: int
    not_modified: bool  # 304: validators matched, body is empty
    body: bytes
    headers: Mapping[str, str]  # lower-case names
    etag: str | None
    last_modified: str | None
    # Set when every redirect on the way was permanent (301/308): the feed moved.
    permanent_redirect: str | None
    elapsed: float  # seconds
    # SHA-256 of the body, hex (SPEC §5: an unchanged body is not parsed again). The
    # body itself is left empty when the caller said it already had this digest.
    digest: str | None = None


# -- matching -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hit:
    """One matched term, as character offsets into a plain-text field of an Entry."""

    field: str  # "title", "summary" or "content"
    start: int
    end: int
    term: str  # the query term that matched here, e.g. "drone", '"north korean"', ">=100"


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """A rule that matched an entry, and why."""

    rule: str
    terms: tuple[str, ...]  # distinct query terms that contributed, in query order
    hits: tuple[Hit, ...]  # where they matched, sorted by (field, start)


# -- state: from the store ----------------------------------------------------


class FeedStatus(StrEnum):
    """Outcome of a feed's last poll."""

    NEW = "new"  # never polled
    OK = "ok"  # fetched and parsed
    NOT_MODIFIED = "not-modified"  # 304
    UNCHANGED = "unchanged"  # 200 but the same body as last time
    ERROR = "error"
    GONE = "gone"  # 410: disabled until the configuration changes


@dataclass(frozen=True, slots=True)
class FeedForUpdate:
    """A feed's stored state, as the poller needs it."""

    url: str  # the configured URL: the feed's identity
    fetch_url: str  # where to fetch now (differs after a permanent redirect)
    title: str | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    status: FeedStatus
    error_streak: int
    last_success: (
        datetime | None
    )  # None: never fetched successfully, so the next fetch is the first
    next_due: datetime | None
    poll_interval: timedelta | None = None  # the adaptive interval chosen last (monitor.cadence)


@dataclass(frozen=True, slots=True)
class StoryRef:
    """A story the store already knows under one of the keys asked about."""

    story: str
    alerted_rules: frozenset[str]  # rules that already alerted on this story


@dataclass(frozen=True, slots=True)
class StoreLookup:
    """What the store knows about a batch of freshly parsed entries of one feed."""

    seen_ids: frozenset[str]  # entry ids this feed already recorded
    stories: Mapping[str, StoryRef]  # story key -> story, for keys known in the window


# -- state: into the store ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class SeenIntent:
    """Record an entry of a feed as seen, as part of a story."""

    entry_id: str
    story: str
    keys: tuple[str, ...]  # story keys (canonical link, normalised title)
    title: str
    link: str | None
    published: datetime | None


@dataclass(frozen=True, slots=True)
class AlertIntent:
    """Queue one alert for (rule, story), with one delivery per target."""

    rule: str
    story: str
    feed: str  # the source feed's display name
    feed_url: str
    title: str
    link: str | None
    published: datetime | None
    summary: str  # plain text, the field excerpts are cut from
    terms: tuple[str, ...]
    hits: tuple[Hit, ...]
    targets: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SourceIntent:
    """Another feed carried a story that already alerted for a rule: list it, do not re-alert."""

    rule: str
    story: str
    feed: str
    feed_url: str
    link: str | None


@dataclass(frozen=True, slots=True)
class FeedUpdateIntent:
    """Everything one poll of one feed changes, applied in one transaction."""

    url: str
    now: datetime
    status: FeedStatus
    next_due: datetime
    error_streak: int
    http_status: int | None = None
    error: str | None = None
    fetch_url: str | None = None  # new location after a permanent redirect
    title: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    success: bool = False  # sets last_success = now
    seen: tuple[SeenIntent, ...] = ()
    alerts: tuple[AlertIntent, ...] = ()
    sources: tuple[SourceIntent, ...] = ()
    poll_interval: timedelta | None = None  # adaptive polling's choice; None keeps the stored


# -- delivery -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """One feed that carried an alert's story."""

    feed: str
    link: str | None


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """A stored alert, as the renderer needs it."""

    id: int
    rule: str
    title: str
    link: str | None
    published: datetime | None
    summary: str
    terms: tuple[str, ...]
    hits: tuple[Hit, ...]
    sources: tuple[Source, ...]
    created_at: datetime


class DeliveryState(StrEnum):
    """Where one (alert, target) delivery stands."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # gave up after retry_for; kept for status and metrics


@dataclass(frozen=True, slots=True)
class PendingDelivery:
    """One alert owed to one target."""

    id: int
    target: str
    attempts: int
    created_at: datetime
    alert: AlertRecord


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What happened when a delivery was tried."""

    id: int
    now: datetime
    state: DeliveryState  # SENT, PENDING (retry at next_attempt) or FAILED
    error: str | None = None
    next_attempt: datetime | None = None
    # A pause the target asked for (HTTP 429) is not a failed attempt.
    count_attempt: bool = True


# -- status -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedReport:
    """One line of ``status`` for a feed."""

    url: str
    title: str | None
    status: FeedStatus
    http_status: int | None
    error: str | None
    error_streak: int
    last_fetch: datetime | None
    last_success: datetime | None
    next_due: datetime | None
    entries_seen: int


@dataclass(frozen=True, slots=True)
class AlertReport:
    """One recent alert and how its deliveries stand."""

    id: int
    rule: str
    title: str
    link: str | None
    created_at: datetime
    deliveries: Mapping[str, DeliveryState] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatusReport:
    """Everything ``status`` shows, read from the store."""

    feeds: tuple[FeedReport, ...]
    pending: int
    failed: int
    oldest_pending: datetime | None
    recent_alerts: tuple[AlertReport, ...]
    failed_deliveries: tuple[tuple[int, str, str | None], ...]  # (alert id, target, last error)
