"""The configuration schema (SPEC §3): pydantic models, frozen, that forbid unknown keys.

Field names are the user-facing contract. Validation happens once, in
:func:`monitor.config.load_config`; past it, nothing re-checks. Values arrive
as plain data from :mod:`monitor.config.source`; durations, sizes and rates
are read by :mod:`monitor.config.units`. Checks that need more than one value
(a rule naming a target) live in :mod:`monitor.config.crossref`, so that they
run even when some other part of the file is invalid.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Mapping
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from monitor.config.expand import PathKey
from monitor.config.masking import Secrets, masked_target_urls
from monitor.config.units import RateLimit, UnitError, parse_duration, parse_rate, parse_size
from monitor.errors import Location


def invalid(message: str) -> PydanticCustomError:
    """A validation error whose message is shown to the user as written."""
    # The message travels in the context: braces in it must not be formatted.
    return PydanticCustomError("invalid", "{reason}", {"reason": message})


def _unit(parse: Callable[[object], Any]) -> Callable[[object], Any]:
    def validate(value: object) -> Any:
        try:
            return parse(value)
        except UnitError as exc:
            raise invalid(str(exc)) from None

    return validate


def listify(value: object) -> object:
    """A single name where a list is expected stands for a list of one: ``tags: world``."""
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return [value]
    return value


def _text(value: str) -> str:
    value = value.strip()
    if not value:
        raise invalid("must not be empty")
    return value


Duration = Annotated[timedelta, BeforeValidator(_unit(parse_duration))]
Size = Annotated[int, BeforeValidator(_unit(parse_size))]
Rate = Annotated[RateLimit, BeforeValidator(_unit(parse_rate))]
Text = Annotated[str, AfterValidator(_text)]
Names = Annotated[tuple[Text, ...], BeforeValidator(listify)]


class Settings(BaseModel):
    """Base of every section: frozen, unknown keys rejected."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        # "tags: [2024]" or "name: 1984" mean text; YAML made them numbers.
        coerce_numbers_to_str=True,
        hide_input_in_errors=True,
    )


class Poll(Settings):
    """How feeds are fetched; ``interval``, ``timeout`` and ``max_size`` are per-feed defaults."""

    interval: Duration = timedelta(minutes=10)
    timeout: Duration = timedelta(seconds=30)
    concurrency: int = Field(default=32, ge=1, le=1000)
    per_host: int = Field(default=4, ge=1, le=1000)
    max_size: Size = 10_000_000
    jitter: float = Field(default=0.1, ge=0, le=0.5)  # a fraction of each feed's interval
    max_backoff: Duration = timedelta(hours=6)
    user_agent: Text | None = None
    # Adaptive polling (monitor.cadence): busy feeds faster, down to min_interval; slower
    # than the interval only when a feed asks (<ttl>, max-age), up to max_interval.
    adaptive: bool = False
    min_interval: Duration = timedelta(minutes=2)
    max_interval: Duration = timedelta(hours=6)


class Feed(Settings):
    """One feed to poll. ``url`` is its identity in the state store."""

    url: str
    name: Text | None = None  # None: the feed's own title, once fetched
    interval: Duration | None = None
    tags: Names = ()
    backfill: bool = False
    enabled: bool = True
    timeout: Duration | None = None
    max_size: Size | None = None
    adaptive: bool | None = None  # None: poll.adaptive

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise invalid(f"not an http:// or https:// URL: {value!r}")
        try:
            _ = parts.port
        except ValueError:
            raise invalid(f"bad port in URL {value!r}") from None
        return value

    @property
    def label(self) -> str:
        """What to call the feed before its title is known: its name, else its host."""
        return self.name or urlsplit(self.url).hostname or self.url


class QuietHours(Settings):
    """Hold a target's alerts from ``start`` to ``end`` (local times), then send a digest."""

    start: time
    end: time
    timezone: Text = "UTC"

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: object) -> time:
        match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", str(value).strip())
        if match is None or not isinstance(value, str):
            raise invalid(f"invalid time {value!r}: use HH:MM, e.g. 22:00")
        return time(int(match.group(1)), int(match.group(2)))

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise invalid(f"unknown time zone {value!r} (use a name like Europe/Kyiv)") from None
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise invalid("start and end are the same time")
        return self

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        """The time zone ``start`` and ``end`` are read in."""
        return zoneinfo.ZoneInfo(self.timezone)


class Target(Settings):
    """One named destination: an Apprise URL, or several, sent together.

    Written as one URL, a list of URLs, or a mapping with ``urls`` and options.
    """

    urls: Annotated[tuple[Text, ...], BeforeValidator(listify)] = Field(min_length=1, repr=False)
    rate_limit: Rate | None = None
    quiet_hours: QuietHours | None = None
    format: Literal["markdown", "text"] | None = None
    _name: str = PrivateAttr(default="")

    @model_validator(mode="before")
    @classmethod
    def _shape(cls, data: object) -> object:
        if isinstance(data, str | list):
            return {"urls": data}
        if not isinstance(data, dict):
            raise invalid("expected an Apprise URL, a list of them, or a mapping with urls:")
        return data

    @property
    def name(self) -> str:
        """The target's key under ``targets:``."""
        return self._name


class RuleScope(Settings):
    """The feeds a rule watches: those with one of ``names``, or one of ``tags``."""

    names: Names = ()
    tags: Names = ()

    @model_validator(mode="after")
    def _not_empty(self) -> RuleScope:
        if not self.names and not self.tags:
            raise invalid("list feed names: or tags: (leave feeds: out to watch every feed)")
        return self

    def includes(self, feed: Feed) -> bool:
        """Whether ``feed`` is named, or carries one of the tags."""
        return (feed.name is not None and feed.name in self.names) or any(
            tag in self.tags for tag in feed.tags
        )


class Rule(Settings):
    """A watch rule: entries matching ``query`` alert the ``notify`` targets."""

    name: Text
    query: Text
    notify: Annotated[tuple[Text, ...], BeforeValidator(listify)] = Field(min_length=1)
    feeds: RuleScope | None = None  # None: every feed
    digest: Duration | None = None
    backfill: bool = False
    template: str | None = None  # Jinja2, rendered in a sandbox
    enabled: bool = True

    def applies_to(self, feed: Feed) -> bool:
        """Whether this rule watches ``feed`` (enabled or not)."""
        return self.feeds is None or self.feeds.includes(feed)


class Delivery(Settings):
    """The outbox (SPEC §5)."""

    retry_for: Duration = timedelta(hours=24)
    # The first retry waits retry_initial; each further one doubles, up to retry_max.
    retry_initial: Duration = timedelta(seconds=30)
    retry_max: Duration = timedelta(hours=1)
    max_age: Duration = timedelta(days=3)
    story_window: Duration = timedelta(hours=24)
    workers: int = Field(default=4, ge=1, le=256)


class Health(Settings):
    """Alerts about the service itself (SPEC §5)."""

    feed_failing_after: Duration = timedelta(hours=6)
    target_failing_after: Duration = timedelta(minutes=30)
    notify: Names = ()
    # /healthz answers 503 when a delivery round has made no progress for this long (issue 6).
    stall_after: Duration = timedelta(minutes=2)


def _state(value: str) -> str:
    value = value.strip()
    if not value:
        raise invalid("must not be empty")
    if "://" in value:
        return value  # a database URL
    # Relative to the working directory the service starts in, like any CLI path.
    return str(Path(value).expanduser().resolve())


def _http(value: object) -> str:
    """Read ``HOST:PORT``, ``:PORT`` or ``PORT``; the host defaults to 127.0.0.1."""
    number = isinstance(value, int) and not isinstance(value, bool)
    text = str(value).strip() if isinstance(value, str) or number else ""
    host, _, port = text.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    if not port.isdigit() or not 0 <= int(port) <= 65535 or any(c in host for c in "/@ "):
        raise invalid(f"invalid address {value!r}: use HOST:PORT, e.g. 127.0.0.1:9108")
    return f"[{host}]:{int(port)}" if ":" in host else f"{host}:{int(port)}"


class Config(Settings):
    """The whole configuration, validated. Built by :func:`monitor.config.load_config`.

    ``state`` is absolute once loaded: a relative path is resolved against the
    working directory the process started in (a ``postgresql://`` URL is kept
    as written). ``path`` is the file it came from and ``secrets`` the values
    that must never be shown (see :class:`~monitor.config.masking.Secrets`).
    """

    state: Annotated[str, AfterValidator(_state)] = Field(
        default="./monitor.db", validate_default=True
    )
    poll: Poll = Poll()
    feeds: tuple[Feed, ...] = Field(min_length=1)
    targets: dict[Text, Target] = Field(min_length=1)
    topics: dict[Text, Text] = Field(default_factory=dict)
    rules: tuple[Rule, ...] = Field(min_length=1)
    delivery: Delivery = Delivery()
    health: Health = Health()
    http: Annotated[str, BeforeValidator(_http)] | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    _path: Path = PrivateAttr(default_factory=Path)
    _secrets: Secrets = PrivateAttr(default_factory=Secrets)
    _locations: Mapping[PathKey, Location] | None = PrivateAttr(default=None)
    _text: str = PrivateAttr(default="")
    _by_url: dict[str, Feed] | None = PrivateAttr(default=None)

    @field_validator("poll", "delivery", "health", "topics", mode="before")
    @classmethod
    def _empty_section(cls, value: object) -> object:
        # "poll:" with every line commented out means "the defaults".
        return {} if value is None else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _name_targets(self) -> Config:
        for name, target in self.targets.items():
            target._name = name
        return self

    # -- what the rest of the service asks -----------------------------------

    @property
    def path(self) -> Path:
        """The file this configuration was read from."""
        return self._path

    @property
    def secrets(self) -> Secrets:
        """The values substituted from the environment that must be masked."""
        return self._secrets

    def feed_by_url(self, url: str) -> Feed | None:
        """The feed configured with exactly this URL."""
        # Built on first use: the model is frozen, and a poll asks once per feed.
        if self._by_url is None:
            self._by_url = {feed.url: feed for feed in reversed(self.feeds)}
        return self._by_url.get(url)

    def feed_by_name(self, name: str) -> Feed | None:
        """The feed configured with this ``name:``."""
        return next((feed for feed in self.feeds if feed.name == name), None)

    def rules_for_feed(self, feed: Feed) -> tuple[Rule, ...]:
        """The rules whose scope includes ``feed`` (no scope: every feed), enabled or not."""
        return tuple(rule for rule in self.rules if rule.applies_to(feed))

    def interval_for(self, feed: Feed) -> timedelta:
        """How often ``feed`` is polled: its own ``interval``, else ``poll.interval``."""
        return feed.interval or self.poll.interval

    def timeout_for(self, feed: Feed) -> timedelta:
        """The total fetch deadline for ``feed``."""
        return feed.timeout or self.poll.timeout

    def max_size_for(self, feed: Feed) -> int:
        """The largest body accepted from ``feed``, in bytes."""
        return feed.max_size or self.poll.max_size

    @property
    def http_address(self) -> tuple[str, int] | None:
        """``http:`` as (host, port), or None when the HTTP endpoint is off."""
        if self.http is None:
            return None
        host, _, port = self.http.rpartition(":")
        return host.strip("[]"), int(port)

    def masked_target_urls(self, target: Target | str) -> tuple[str, ...]:
        """A target's URLs fit to show: Apprise's privacy rendering, then masked."""
        if isinstance(target, str):
            target = self.targets[target]
        return masked_target_urls(target, self._secrets)

    def location(self, *path: str | int) -> Location | None:
        """Where the value at ``path`` was written, e.g. ``location("rules", 0, "query")``."""
        if self._locations is None:
            # Loading skips positions when the file is correct; read them from its text.
            from monitor.config.source import read_positions

            self._locations = read_positions(str(self._path), self._text)
        return self._locations.get(path)
