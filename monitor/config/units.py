"""Durations, sizes and rate limits as operators write them (SPEC §3: "... take units").

Each parser takes what YAML produced (a string, or a bare number) and returns a
value or raises :class:`UnitError` with a message fit to show the user. Each
formatter writes a value back the way the parser reads it, for ``check``.

    durations   "30s", "5m", "1h", "1d", "2w", "1h30m", "1.5h"; a bare number is seconds
    sizes       "512B", "512KB", "10MB", "1GB" (powers of 1000), "1KiB", "1MiB",
                "1GiB" (powers of 1024); a bare integer is bytes
    rates       "20/min", "5/s", "100/h", "1000/day", "10/30s": count per period
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta


class UnitError(ValueError):
    """A value with a unit could not be read; the message says what is accepted."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``count`` messages per ``period``."""

    count: int
    period: timedelta

    def __str__(self) -> str:
        return format_rate(self)


# -- durations ----------------------------------------------------------------

_DURATION_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_NUMBER = r"(\d+(?:\.\d+)?)"
# Units in decreasing order, each at most once: "1h30m" reads, "30m1h" does not.
_DURATION = re.compile("".join(f"(?:{_NUMBER}{unit})?" for unit, _ in _DURATION_UNITS))
_DURATION_HELP = "use a number and a unit s, m, h, d or w (e.g. 30s, 5m, 1h30m)"
# Far beyond any sensible setting, and small enough that now + duration stays a
# valid datetime (timedelta overflows at a billion days, datetime at year 9999).
MAX_DURATION = timedelta(days=365000)


def _is_number(value: object) -> bool:
    # bool is an int subclass, but "interval: true" is a mistake, not one second.
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_duration(value: object) -> timedelta:
    """Read a positive duration: "1h30m", "10m", "45s", or a bare number of seconds."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif _is_number(value):
        seconds = float(value)  # type: ignore[arg-type]  # _is_number checked it
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        else:
            match = _DURATION.fullmatch(text)
            if not text or match is None:
                raise UnitError(f"invalid duration {value!r}: {_DURATION_HELP}")
            seconds = sum(
                float(amount) * factor
                for amount, (_, factor) in zip(match.groups(), _DURATION_UNITS, strict=True)
                if amount is not None
            )
    else:
        raise UnitError(f"expected a duration, got {describe(value)}: {_DURATION_HELP}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise UnitError(f"invalid duration {value!r}: must be more than zero")
    if seconds > MAX_DURATION.total_seconds():
        raise UnitError(f"invalid duration {value!r}: must be at most 1000 years")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Write a duration the way :func:`parse_duration` reads it: ``1h30m``, ``10m``, ``1.5s``."""
    total = value.total_seconds()
    whole = int(total)
    if total != whole:
        return f"{total:g}s"
    if whole == 0:
        return "0s"
    if whole % 86400 == 0 and whole >= 2 * 86400:
        return f"{whole // 86400}d"  # "3d"; weeks read worse than days: "14d"
    parts = []
    for unit, factor in _DURATION_UNITS[2:]:  # "24h", "36h", "26h3m" rather than "1d..."
        amount, whole = divmod(whole, factor)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


# -- sizes --------------------------------------------------------------------

_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")
_SIZE_HELP = "use a number and a unit B, KB, MB, GB, KiB, MiB or GiB (e.g. 512KB, 10MB)"


def parse_size(value: object) -> int:
    """Read a positive size in bytes: "10MB" (10,000,000), "1MiB" (1,048,576), or a bare integer."""
    if _is_number(value):
        number = float(value)  # type: ignore[arg-type]  # _is_number checked it
        if number != int(number):
            raise UnitError(f"invalid size {value!r}: not a whole number of bytes")
        size = int(number)
    elif isinstance(value, str):
        match = _SIZE.fullmatch(value.strip().lower())
        if match is None or (match.group(2) not in _SIZE_UNITS and match.group(2) != ""):
            raise UnitError(f"invalid size {value!r}: {_SIZE_HELP}")
        number = float(match.group(1)) * _SIZE_UNITS.get(match.group(2), 1)
        if number != int(number):
            raise UnitError(f"invalid size {value!r}: not a whole number of bytes")
        size = int(number)
    else:
        raise UnitError(f"expected a size, got {describe(value)}: {_SIZE_HELP}")
    if size <= 0:
        raise UnitError(f"invalid size {value!r}: must be more than zero")
    return size


def format_size(size: int) -> str:
    """Write a size the way :func:`parse_size` reads it, in the largest exact unit."""
    for unit in ("TB", "GB", "MB", "KB", "TiB", "GiB", "MiB", "KiB"):
        factor = _SIZE_UNITS[unit.lower()]
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


# -- rates --------------------------------------------------------------------

_PERIOD_WORDS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
}
_RATE_HELP = "use COUNT/PERIOD (e.g. 20/min, 5/s, 100/h, 10/30s)"


def parse_rate(value: object) -> RateLimit:
    """Read a rate limit "COUNT/PERIOD": "20/min", "5/s", "100/h", "10/30s"."""
    if isinstance(value, RateLimit):
        return value
    if not isinstance(value, str):
        raise UnitError(f"expected a rate limit, got {describe(value)}: {_RATE_HELP}")
    count_text, slash, period_text = value.strip().lower().partition("/")
    count_text, period_text = count_text.strip(), period_text.strip()
    if not slash or not count_text.isdigit() or int(count_text) <= 0:
        raise UnitError(f"invalid rate limit {value!r}: {_RATE_HELP}")
    if period_text in _PERIOD_WORDS:
        period = timedelta(seconds=_PERIOD_WORDS[period_text])
    else:
        try:
            period = parse_duration(period_text)
        except UnitError:
            raise UnitError(f"invalid rate limit {value!r}: {_RATE_HELP}") from None
    return RateLimit(int(count_text), period)


def format_rate(rate: RateLimit) -> str:
    """Write a rate limit the way :func:`parse_rate` reads it: ``20/min``, ``10/30s``."""
    words = {1: "s", 60: "min", 3600: "h", 86400: "day"}
    seconds = rate.period.total_seconds()
    word = words.get(int(seconds)) if seconds == int(seconds) else None
    return f"{rate.count}/{word or format_duration(rate.period)}"


def describe(value: object) -> str:
    """How a YAML value looks, for messages: "null", "a list", "true"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)
