"""Feed bodies to :class:`~monitor.model.ParsedFeed`: RSS, Atom (feedparser) and JSON Feed.

:func:`parse_feed` runs in a process pool (SPEC §5: parsing must not block
fetching), so it is a plain top-level function, and everything it returns or
raises pickles: frozen dataclasses, or :class:`~monitor.errors.ParseError`
carrying a one-line message.

    body ─► JSON Feed? ─► jsonfeed.parse_json
         └► otherwise  ─► feed.parse_xml: encoding.to_utf8 ─► dtd.defuse
                          ─► encoding.fix_charrefs ─► feedparser ─► Entry values

Problems that leave entries readable (malformed XML that feedparser's loose
parser recovered, a wrong declared encoding, duplicate ids) are warnings on
the result; a body with no entries and no valid feed structure is a
ParseError with a specific message.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from monitor.errors import ParseError
from monitor.model import ParsedFeed
from monitor.parse.jsonfeed import parse_json

__all__ = ["body_hash", "parse_feed"]

_JSON_TYPES = re.compile(
    r"^\s*application/(?:feed\+)?json\b|^\s*application/[\w.+-]*\+json\b", re.I
)
_LEADING = b" \t\r\n\x00\xef\xbb\xbf"  # whitespace and a UTF-8 byte order mark


def parse_feed(body: bytes, headers: Mapping[str, str], url: str) -> ParsedFeed:
    """Parse a fetched body: headers are the response's (lower-case names), url where it came from.

    Raises :class:`ParseError` with a specific message when there are no
    entries to be had: ``empty response body``, ``the response is an HTML
    page, not a feed``, ``not a feed: <reason>``. A well-formed feed with no
    entries is not an error.
    """
    start = body[:1024].lstrip(_LEADING)[:1] or body.lstrip(_LEADING)[:1]
    if not start:
        raise ParseError("empty response body")
    if start in (b"{", b"[") or (
        start != b"<" and _JSON_TYPES.match(headers.get("content-type", ""))
    ):
        return parse_json(body, url)
    # Imported here: the daemon's main process only hashes bodies, parsing happens in
    # the pool, and feedparser is slow to import (the pool's fork server preloads it).
    from monitor.parse.feed import parse_xml

    return parse_xml(body, headers, url)


def body_hash(body: bytes) -> str:
    """The SHA-256 of a body, hex: an unchanged body is not parsed again (SPEC §5)."""
    return hashlib.sha256(body).hexdigest()
