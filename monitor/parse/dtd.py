"""Disarm entity declarations in a feed's DOCTYPE before any XML parser sees them.

A feed may declare entities in its internal DTD subset and reference them
in the body. Nested ones ("billion laughs") and large ones referenced many
times ("quadratic blowup") expand a small body into gigabytes: expat's
amplification guard stops the first only after ~0.6 s and ~90 MB, and lets
a 110 kB quadratic body run for 28 s and 3 GB; feedparser's own DOCTYPE
filter only looks at declarations that start a line. External entities are
never fetched (feedparser turns off external general entities), but a
declaration of one is no use in a feed either.

So: a DOCTYPE whose entity declarations are all tiny literals (``&nbsp;``
as ``&#160;``) is left alone; any other DOCTYPE that declares entities is
removed whole. References to its entities are then undefined: expat stops,
feedparser's loose parser takes over, and the references stay as literal
text such as ``&lol9;``.
"""

from __future__ import annotations

import re

_DOCTYPE = b"<!DOCTYPE"
_ELEMENT = re.compile(rb"<[A-Za-z_:]")
# Tokens of a DOCTYPE, quote- and comment-aware, so "]>" inside a literal does not end it.
_TOKEN = re.compile(
    rb"\"[^\"]*\"|'[^']*'|<!--.*?-->|<\?.*?\?>|<!ENTITY\b|<|\[|\]|>|[^\"'<\[\]>]+", re.DOTALL
)
# A declaration we keep: a general entity whose value is one character reference or a few
# plain characters. Its expansion can never be larger than about three times its references.
_SAFE_ENTITY = re.compile(
    rb"<!ENTITY\s+[A-Za-z_][\w.-]*\s+(?:\"(?:&#\w{1,8};|[^\"&%<]{0,8})\"|'(?:&#\w{1,8};|[^'&%<]{0,8})')\s*>"
)


def defuse(body: bytes) -> tuple[bytes, str | None]:
    """``body`` without a DOCTYPE declaring unsafe entities, and a warning if one was removed.

    Expects an ASCII-compatible body (see :mod:`monitor.parse.encoding`).
    """
    if b"<!ENTITY" not in body:
        return body, None
    start = body.find(_DOCTYPE)
    if start < 0 or _ELEMENT.search(body, 0, start):
        return body, None  # no DOCTYPE in the prolog: the declarations are inert text
    end, unsafe = _scan(body, start)
    if not unsafe:
        return body, None
    return (
        body[:start] + body[end:],
        "removed a DOCTYPE with unsafe entity declarations (entity expansion or external entities)",
    )


def _scan(body: bytes, start: int) -> tuple[int, bool]:
    """End offset of the DOCTYPE at ``start``, and whether it declares an unsafe entity.

    An unterminated DOCTYPE (or literal, comment, processing instruction)
    runs to the end of the body and counts as unsafe.
    """
    pos = start + len(_DOCTYPE)
    in_subset = False
    unsafe = False
    while pos < len(body):
        token = _TOKEN.match(body, pos)
        if token is None:
            return len(body), True
        text = token.group()
        pos = token.end()
        if text == b"<!ENTITY":
            unsafe = unsafe or _SAFE_ENTITY.match(body, token.start()) is None
        elif text == b"[":
            in_subset = True
        elif text == b"]":
            in_subset = False
        elif text == b">" and not in_subset:
            return pos, unsafe
    return len(body), True
