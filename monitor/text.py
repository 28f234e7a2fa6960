"""Feed HTML to plain text.

Feeds put HTML (often entity-escaped twice) into titles and summaries. Every
text field of an :class:`~monitor.model.Entry` goes through
:func:`html_to_text` once, at the parsing edge, so nothing downstream ever
sees markup: matching works on words, and alerts cannot carry feed HTML to a
target (SPEC §6).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Characters that are invisible in print but split or glue words for a matcher, and the
# C0 controls but tab and line breaks: no text needs them, some stores refuse NUL
# (PostgreSQL's text type), and feeds do carry them ("&#0;", stray bytes).
_CONTROLS = "".join(chr(c) for c in (*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F))
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff" + _CONTROLS), None)
_CONTROL_TABLE = dict.fromkeys(map(ord, _CONTROLS), None)
_BLOCK_TAGS = frozenset(
    [
        "address",
        "article",
        "aside",
        "blockquote",
        "br",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "td",
        "th",
        "tr",
        "ul",
    ]
)
_SKIP_TAGS = frozenset({"script", "style", "template", "noscript", "iframe", "object"})
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BREAKS = re.compile(r"\s*\n\s*")
_LOOKS_LIKE_MARKUP = re.compile(r"<[A-Za-z/!]|&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _strip_once(value: str) -> str:
    parser = _TextExtractor()
    parser.feed(value)
    parser.close()
    return "".join(parser.parts)


def strip_controls(value: str) -> str:
    """``value`` without C0 control characters (tab and line breaks kept) and DEL."""
    return value.translate(_CONTROL_TABLE)


def html_to_text(value: str | None, *, single_line: bool = False) -> str:
    """Return the readable text of an HTML fragment.

    Tags are dropped (the contents of script and style with them), entities
    decoded, invisible characters (soft hyphens, zero-width spaces) removed and
    whitespace collapsed. Text escaped twice (``&lt;b&gt;``), common in RSS, is
    unwrapped a second time. Block elements become line breaks unless
    ``single_line`` is set, as for titles.
    """
    if not value:
        return ""
    text = value
    # Two passes at most: once for the markup, once more for doubly escaped markup.
    for _ in range(2):
        if not _LOOKS_LIKE_MARKUP.search(text):
            break
        text = _strip_once(text)
    text = text.translate(_INVISIBLE)
    text = _SPACES.sub(" ", text)
    if single_line:
        return " ".join(text.split())
    return _BREAKS.sub("\n", text).strip()
