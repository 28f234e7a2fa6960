"""RSS 0.9x/1.0/2.0 and Atom through feedparser, converted to :class:`ParsedFeed` at the edge.

feedparser gets bytes in a ``BytesIO`` and the response headers, never a URL
or a bare string (a string may be taken for a file name or a URL to fetch).

Relative links (GitHub's release feeds use nothing else) are resolved here,
against the feed's URL, rather than by feedparser through a
``content-location`` header: feedparser would resolve ``<guid>1</guid>`` into
``https://host/path/1`` as well, making entry ids depend on the URL the feed
happened to be fetched from (a redirect would turn every entry into a new
one). ``xml:base`` is still applied by feedparser, as the document asks.

HTML sanitising and resolving URIs inside HTML are off: every text field
becomes plain text through :func:`monitor.text.html_to_text`, so neither
would survive, and together they double feedparser's throughput.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import feedparser

from monitor.errors import ParseError
from monitor.model import Entry, ParsedFeed
from monitor.parse import dates, dtd, encoding
from monitor.parse.fields import absolute_link, unique
from monitor.parse.identity import entry_id, first_of_each_id
from monitor.text import html_to_text

_HTML_PAGE = re.compile(rb"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]", re.IGNORECASE)
# Problems feedparser reports that leave the document itself readable.
_SOFT_BOZO = (
    feedparser.CharacterEncodingOverride,
    feedparser.NonXMLContentType,
)


def parse_xml(body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
    """Parse an RSS or Atom body; raise :class:`ParseError` when it holds no feed entries."""
    body, fixed_headers, warnings, line_shift = _prepare(body, headers)
    try:
        result = feedparser.parse(
            io.BytesIO(body),
            response_headers=fixed_headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser's fallback parser crashes on some garbage
        raise ParseError(f"not a feed: the parser gave up ({_describe(exc)})") from exc
    bozo = result.get("bozo_exception") if result.get("bozo") else None
    if bozo is not None:
        warnings.append(_describe(bozo, line_shift))
    converted = [_entry(raw, url) for raw in result.get("entries") or ()]
    # An item with no title, text or link (what a body cut off inside "<item><title" leaves)
    # is nothing a person could read or follow: not an entry.
    usable = [e for e in converted if e.title or e.summary or e.content or e.link]
    if len(usable) < len(converted):
        warnings.append(
            f"skipped {len(converted) - len(usable)} item(s) with no title, text or link"
        )
    if not usable:
        _raise_if_not_a_feed(body, result, bozo, line_shift)
    entries, duplicates = first_of_each_id(usable)
    feed = result.get("feed") or {}
    return ParsedFeed(
        title=html_to_text(feed.get("title"), single_line=True) or None,
        link=absolute_link(feed.get("link"), url),
        entries=entries,
        warnings=(*warnings, *duplicates),
        ttl=_ttl(feed.get("ttl")),
    )


def _prepare(
    body: bytes, headers: Mapping[str, str]
) -> tuple[bytes, dict[str, str], list[str], int]:
    """UTF-8, defused, repaired bytes for feedparser, its headers, warnings, and line shift.

    The shift maps feedparser's line numbers back to the body as received.
    """
    warnings: list[str] = []
    body, fixed_headers, warning = encoding.to_utf8(body, headers)
    if warning:
        warnings.append(f"encoding: {warning}")
    body, warning = dtd.defuse(body)
    if warning:
        warnings.append(warning)
    body = encoding.fix_charrefs(body)
    # Strict XML refuses anything before the declaration, and servers send blank lines.
    stripped = body.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    shift = body[: len(body) - len(stripped)].count(b"\n")
    if not stripped.startswith(b"<?xml"):
        shift -= 1  # feedparser puts a declaration line in front
    fixed_headers.pop("content-location", None)  # links are resolved here (module doc)
    return stripped, fixed_headers, warnings, shift


def _raise_if_not_a_feed(
    body: bytes, result: Any, bozo: BaseException | None, line_shift: int
) -> None:
    """No entries: fine for a well-formed RSS or Atom document, an error otherwise."""
    if not result.get("version"):
        if _HTML_PAGE.search(body[:4096]):
            raise ParseError("the response is an HTML page, not a feed")
        if bozo is None or isinstance(bozo, _SOFT_BOZO):
            raise ParseError("not a feed: no RSS or Atom root element")
    if bozo is not None and not isinstance(bozo, _SOFT_BOZO):
        raise ParseError(f"not a feed: {_describe(bozo, line_shift)}")


def _ttl(value: object) -> timedelta | None:
    """RSS ``<ttl>``, in minutes (RSS 2.0 spec); anything but a positive number is ignored."""
    text = str(value or "").strip()
    if not text.isdigit() or not 0 < int(text) <= 60 * 24 * 365:
        return None
    return timedelta(minutes=int(text))


def _describe(exc: BaseException, line_shift: int = 0) -> str:
    """A one-line description of a feedparser bozo exception."""
    get_message = getattr(exc, "getMessage", None)
    get_line = getattr(exc, "getLineNumber", None)
    if callable(get_message) and callable(get_line):  # xml.sax.SAXParseException
        line = max(1, get_line() + line_shift)
        return f"not well-formed XML (line {line}): {get_message()}"
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


def _entry(raw: dict[str, Any], base: str) -> Entry:
    title = html_to_text(raw.get("title"), single_line=True)
    summary = html_to_text(raw.get("summary"))
    content = _content(raw.get("content") or ())
    if content == summary:
        content = ""  # feedparser copies content into a missing summary; keep the text once
    link = absolute_link(raw.get("link"), base)
    # dict.get: FeedParserDict maps a missing "updated" to "published" with a warning.
    updated = dates.from_struct(dict.get(raw, "updated_parsed")) or dates.from_text(
        dict.get(raw, "updated")
    )
    published = (
        dates.from_struct(raw.get("published_parsed"))
        or dates.from_text(raw.get("published"))
        or updated
    )
    return Entry(
        id=entry_id(raw.get("id"), link, title, summary, published),
        title=title,
        summary=summary,
        content=content,
        link=link,
        published=published,
        updated=updated,
        authors=_authors(raw),
        tags=unique(
            html_to_text(t.get("term") or t.get("label"), single_line=True)
            for t in raw.get("tags") or ()
        ),
    )


def _content(parts: Iterable[Mapping[str, Any]]) -> str:
    return "\n\n".join(unique(html_to_text(part.get("value")) for part in parts))


def _authors(raw: Mapping[str, Any]) -> tuple[str, ...]:
    names = [a.get("name") or a.get("email") for a in raw.get("authors") or () if a]
    if not any(names):
        names = [raw.get("author")]
    return unique(html_to_text(n, single_line=True) for n in names if isinstance(n, str))
