"""Entry dates as aware UTC datetimes, including the localised ones feedparser gives up on.

Feeds write RFC 822 dates with day and month names in their own language
("Seg, 24 Set 2018 19:42:40 -0300", UOL, Brazil). feedparser reads only
English names; for a date it could not read, the names are translated and
the date is read again. Dates in the future are kept as given: deciding
what a wrong clock means is not the parser's business.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Month abbreviations that differ from English, in Portuguese, Spanish, French, German,
# Italian and Dutch (first three or four letters, lower-case, accents kept).
_MONTHS = {
    "fev": "Feb", "abr": "Apr", "mai": "May", "ago": "Aug", "set": "Sep", "out": "Oct",
    "dez": "Dec", "ene": "Jan", "dic": "Dec", "janv": "Jan", "févr": "Feb", "fevr": "Feb",
    "mars": "Mar", "avr": "Apr", "juin": "Jun", "juil": "Jul", "août": "Aug", "aout": "Aug",
    "déc": "Dec", "mär": "Mar", "mrz": "Mar", "okt": "Oct", "gen": "Jan", "mag": "May",
    "giu": "Jun", "lug": "Jul", "ott": "Oct", "mei": "May", "maa": "Mar", "sept": "Sep",
}  # fmt: skip
_LOCAL_DATE = re.compile(r"^\s*(?:[^\W\d]+\.?,?\s+)?(\d{1,2})\.?\s+([^\W\d]+)\.?\s+(\d{2,4}\b.*)$")


def from_struct(parsed: time.struct_time | None) -> datetime | None:
    """feedparser's UTC ``struct_time`` as an aware datetime; None if absent or impossible."""
    if not parsed:
        return None
    try:
        # tm_sec may be 60 or 61 (leap seconds); datetime refuses them.
        return datetime(*parsed[:5], min(parsed[5], 59), tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def from_text(value: object) -> datetime | None:
    """An RFC 3339 or RFC 822 date, month names in several languages, as aware UTC."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    when: datetime | None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        when = _rfc822(text)
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # RFC 3339 requires an offset; UTC is the usual intent
    return when.astimezone(UTC)


def _rfc822(text: str) -> datetime | None:
    match = _LOCAL_DATE.match(text)
    if match:
        day, month, rest = match.groups()
        month = _MONTHS.get(month.lower(), _MONTHS.get(month.lower()[:3], month))
        text = f"{day} {month} {rest}"
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
