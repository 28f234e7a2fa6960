"""JSON Feed 1.0 and 1.1 (https://jsonfeed.org/version/1.1), which feedparser 6 does not read.

Lenient where feeds in the wild are: numeric ids, a missing ``version``
when there is an ``items`` list, 1.0's single ``author`` object next to
1.1's ``authors`` list (an item without authors inherits the feed's, as
1.1 says), RFC 3339 dates with or without a time zone (UTC assumed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from monitor.errors import ParseError
from monitor.model import Entry, ParsedFeed
from monitor.parse import dates
from monitor.parse.fields import absolute_link, unique
from monitor.parse.identity import entry_id, first_of_each_id
from monitor.text import html_to_text

_VERSION_PREFIX = "https://jsonfeed.org/version/"


def parse_json(body: bytes, url: str) -> ParsedFeed:
    """Parse a JSON Feed body; raise :class:`ParseError` if it is not one."""
    warnings: list[str] = []
    # RFC 8259 §8.1: JSON is UTF-8 (json.loads also detects UTF-16/32); tolerate a BOM.
    text: str | bytes = body.removeprefix(b"\xef\xbb\xbf")
    try:
        try:
            document = json.loads(text)
        except UnicodeDecodeError:
            text = body.decode("utf-8-sig", "replace")
            warnings.append("encoding: the JSON is not valid UTF-8; invalid bytes replaced")
            document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"not a feed: invalid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"
        ) from None
    except RecursionError:
        raise ParseError("not a feed: JSON nested too deeply") from None
    if not isinstance(document, dict):
        raise ParseError(f"not a feed: the JSON is {_kind(document)}, not a JSON Feed object")
    items = document.get("items")
    version = document.get("version")
    if not isinstance(items, list):
        raise ParseError("not a feed: JSON without a JSON Feed 'items' list")
    if not (isinstance(version, str) and version.startswith(_VERSION_PREFIX)):
        warnings.append(f"unknown JSON Feed version {str(version)[:60]!r}")
    feed_link = absolute_link(document.get("home_page_url"), url)
    feed_authors = _authors(document)
    entries: list[Entry] = []
    skipped = 0
    for item in items:
        if isinstance(item, dict):
            entries.append(_entry(item, url, feed_authors))
        else:
            skipped += 1
    if skipped:
        warnings.append(f"skipped {skipped} items that are not JSON objects")
    kept, duplicates = first_of_each_id(entries)
    return ParsedFeed(
        title=html_to_text(_str(document.get("title")), single_line=True) or None,
        link=feed_link,
        entries=kept,
        warnings=(*warnings, *duplicates),
    )


def _entry(item: Mapping[str, Any], base: str, feed_authors: tuple[str, ...]) -> Entry:
    title = html_to_text(_str(item.get("title")), single_line=True)
    summary = html_to_text(_str(item.get("summary")))
    content = html_to_text(_str(item.get("content_html"))) or html_to_text(
        _str(item.get("content_text"))
    )
    if content == summary:
        content = ""  # the same text twice would match twice
    link = absolute_link(item.get("url"), base) or absolute_link(item.get("external_url"), base)
    updated = dates.from_text(item.get("date_modified"))
    published = dates.from_text(item.get("date_published")) or updated
    raw_id = item.get("id")
    return Entry(
        id=entry_id(
            raw_id if isinstance(raw_id, str | int) else None, link, title, summary, published
        ),
        title=title,
        summary=summary,
        content=content,
        link=link,
        published=published,
        updated=updated,
        authors=_authors(item) or feed_authors,
        tags=unique(
            html_to_text(tag, single_line=True)
            for tag in _list(item.get("tags"))
            if isinstance(tag, str)
        ),
    )


def _authors(obj: Mapping[str, Any]) -> tuple[str, ...]:
    people = _list(obj.get("authors")) or _list(obj.get("author"))
    return unique(
        html_to_text(_str(p.get("name")), single_line=True) for p in people if isinstance(p, dict)
    )


def _list(value: object) -> list[Any]:
    if isinstance(value, list):
        return value
    return [value] if isinstance(value, dict) else []


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _kind(value: object) -> str:
    return {list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )
