"""Entry identity within one feed: what makes two polls' entries the same entry.

The feed's own id (RSS ``guid``, Atom ``id``, JSON Feed ``id``) when it has
one, else the link, else a hash of fields that do not change between polls
(issue 2). Ids longer than :data:`MAX_ID` are hashed, so the store never
indexes a multi-kilobyte "guid".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from monitor.model import Entry
from monitor.text import strip_controls

MAX_ID = 512
_SEP = "\x1f"  # unit separator: cannot occur in the plain text it joins


def entry_id(
    raw_id: object,
    link: str | None,
    title: str,
    summary: str,
    published: datetime | None,
) -> str:
    """The id of an entry: its own id, else its link, else ``sha256:`` of stable fields."""
    for candidate in (raw_id, link):
        if isinstance(candidate, str | int) and not isinstance(candidate, bool):
            text = strip_controls(str(candidate)).strip()
            if text:
                return text if len(text) <= MAX_ID else _hash(text)
    stamp = published.isoformat() if published else ""
    return _hash(_SEP.join((title, summary[:200], stamp)))


def first_of_each_id(entries: Iterable[Entry]) -> tuple[tuple[Entry, ...], tuple[str, ...]]:
    """Entries with duplicate ids removed (the first one is kept), and a warning if any were."""
    seen: set[str] = set()
    kept: list[Entry] = []
    dropped: list[str] = []
    for entry in entries:
        if entry.id in seen:
            dropped.append(entry.id)
        else:
            seen.add(entry.id)
            kept.append(entry)
    if not dropped:
        return tuple(kept), ()
    example = dropped[0] if len(dropped[0]) <= 100 else dropped[0][:99] + "…"
    noun = "entry" if len(dropped) == 1 else "entries"
    return tuple(kept), (f"dropped {len(dropped)} {noun} with a duplicate id, e.g. {example}",)


def _hash(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
