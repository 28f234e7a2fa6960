"""The one exception tree of news-monitor.

Every error the project raises on purpose derives from :class:`MonitorError`.
Errors carry their subject (file and position, feed, rule, target) and never a
secret: messages are built from masked values only.

    MonitorError
    ├── ConfigError                 the configuration cannot be used
    │   └── ConfigErrors            several ConfigError found in one pass
    ├── QueryError                  a rule query is not valid
    │   ├── QuerySyntaxError        ... at a column of the query text
    │   └── TopicError              unknown or cyclic @topic reference
    ├── FeedError                   one feed could not be fetched or parsed
    │   ├── FetchError              network / HTTP failure
    │   │   ├── HTTPStatusError     the server answered 4xx/5xx
    │   │   ├── TooLargeError       the body exceeded max_size
    │   │   └── DeadlineError       the total fetch deadline passed
    │   └── ParseError              the body is not a usable feed
    ├── StoreError                  the state store failed or is incompatible
    └── DeliveryError               a target could not be set up or reached

Expected failures (a feed that times out, a target that answers 500) are
recorded as data against their subject and logged in one line; only bugs get a
traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class MonitorError(Exception):
    """Root of every error news-monitor raises on purpose."""


@dataclass(frozen=True, slots=True)
class Location:
    """A position in a configuration file, 1-based like editors show it."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ConfigError(MonitorError):
    """One problem in the configuration, at a location when one is known."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.message = message
        self.location = location
        super().__init__(f"{location}: {message}" if location else message)


class ConfigErrors(ConfigError):
    """Every problem found in one validation pass, reported together."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = sorted(
            errors,
            key=lambda e: (
                (e.location.file, e.location.line, e.location.column) if e.location else ("", 0, 0)
            ),
        )
        super().__init__("\n".join(str(e) for e in self.errors))


class QueryError(MonitorError):
    """A rule's query cannot be used."""


class QuerySyntaxError(QueryError):
    """The query text does not parse; ``column`` is 1-based into the query."""

    def __init__(self, message: str, query: str, column: int, rule: str | None = None) -> None:
        self.message = message
        self.query = query
        self.column = column
        self.rule = rule
        where = f"rule {rule!r}, " if rule else ""
        super().__init__(f"{where}column {column}: {message}")

    def for_rule(self, rule: str) -> QuerySyntaxError:
        """The same error, naming the rule it was found in."""
        return QuerySyntaxError(self.message, self.query, self.column, rule)


class TopicError(QueryError):
    """An ``@topic`` reference names no topic, or topics refer to each other in a cycle."""


class FeedError(MonitorError):
    """One feed could not be fetched or parsed; recorded against that feed."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.message = message
        # Seconds the server asked us to wait (Retry-After), if it said.
        self.retry_after = retry_after
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Feed errors cross process boundaries (from the parse pool); the default
        # pickling calls ``type(*args)``, which subclasses with other signatures refuse.
        return (_restore, (type(self), self.args, self.__dict__))


def _restore(cls: type[FeedError], args: tuple[Any, ...], state: dict[str, Any]) -> FeedError:
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class FetchError(FeedError):
    """The network or the server failed us.

    ``network`` marks failures to reach the host at all (DNS, refused or
    unreachable connection, connect timeout): when every feed fails that way
    at once, the network is down rather than the feeds (monitor.outage).
    """

    def __init__(
        self, message: str, *, retry_after: float | None = None, network: bool = False
    ) -> None:
        self.network = network
        super().__init__(message, retry_after=retry_after)


class HTTPStatusError(FetchError):
    """The server answered with an error status."""

    def __init__(self, status: int, message: str, *, retry_after: float | None = None) -> None:
        self.status = status
        super().__init__(message, retry_after=retry_after)


class TooLargeError(FetchError):
    """The response body went past the configured ``max_size``."""


class DeadlineError(FetchError):
    """The whole fetch took longer than the configured timeout."""


class ParseError(FeedError):
    """The body is not a feed we can read (and holds no entries)."""


class StoreError(MonitorError):
    """The state store failed, or was written by an incompatible version."""


class DeliveryError(MonitorError):
    """A notification target could not be set up or reached."""

    def __init__(self, target: str, message: str) -> None:
        self.target = target
        self.message = message
        super().__init__(f"target {target!r}: {message}")
