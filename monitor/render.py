"""Alerts as messages: the words a target shows (SPEC §6).

Pure: values in, a :class:`RenderedMessage` out; no I/O, no clock, no Apprise.

Every alert carries its rule, headline, source feeds, link, published time,
a short excerpt with the matched words marked, and why it matched. Two
renderings exist, chosen per target by ``monitor.notify.Notifier.wants_markdown``:

* **Markdown**: feed text is escaped (:func:`escape_markdown`) so a headline
  cannot inject links, images or formatting, and ``<``/``>`` become ``‹``/``›``
  so nothing reaches an HTML-rendering target as markup. Matched words are
  **bold**. Links are only ever http(s) URLs, percent-encoded where Markdown
  would otherwise end them.
* **Plain text**: matched words are marked with guillemets, «like this»; they
  survive every target (SMS, email, push) and cannot be confused with
  Markdown that a text target would show literally.

The message title is ``[rule] headline`` in both, plain text, at most
:data:`TITLE_MAX` characters. An operator's per-rule Jinja2 template replaces
the default body; it runs in Jinja2's immutable sandbox and any error falls
back to the default body, reported in ``RenderedMessage.template_error``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from monitor import __version__
from monitor.model import AlertRecord, Hit

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import ImmutableSandboxedEnvironment

TITLE_MAX = 200  # characters in a message title, "…" included
TEMPLATE_OUTPUT_MAX = 20_000  # a runaway template loop cannot build a huge message
MARK_OPEN, MARK_CLOSE = "«", "»"  # plain-text marks around matched words
_HEADLINE_MAX = 300
_SOURCES_MAX = 20  # sources listed by name; the rest are counted
_DIGEST_MAX = 50  # alerts listed in one digest; the rest are counted


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    """A message ready for a target: plain-text title, Markdown or plain-text body."""

    title: str
    body: str
    # Why the rule's template could not be used (the default body was sent instead).
    template_error: str | None = None


# -- escaping -----------------------------------------------------------------

# Characters that start Markdown constructs anywhere in a line: code, emphasis,
# links and images ("[" "]"), strikethrough, tables; and backslash itself.
_MD_INLINE = re.compile(r"([\\`*_\[\]~|])")
# "&copy;" would turn into "©" (and "&lt;" into "<") on HTML targets.
_MD_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]{1,32};)")
# Block constructs that only count at the start of a line: headings, lists,
# setext underlines, ordered lists ("1." / "1)").
_MD_LINE_START = re.compile(r"^(\s*)([#+=-])|^(\s*\d+)([.)])", re.MULTILINE)
_ANGLES = str.maketrans({"<": "‹", ">": "›"})
_SPACE = re.compile(r"\s+")


def escape_markdown(text: str) -> str:
    """Return ``text`` so that Markdown shows it literally and HTML never sees a tag.

    Backslash-escapes the characters that form emphasis, code, links, images,
    tables and line-start blocks; replaces ``<`` and ``>`` by ``‹`` and ``›``
    (an escaped ``\\<`` is not understood by every Markdown dialect, and raw
    ``<`` would pass through Markdown-to-HTML conversion as a tag).
    """
    return _escape_line_starts(_escape_inline(text))


def _escape_inline(text: str) -> str:
    """Escaping for text placed after other text on a line (no line-start rules)."""
    text = _MD_INLINE.sub(r"\\\1", text.translate(_ANGLES))
    return _MD_ENTITY.sub(r"\\&", text)


def _escape_line_starts(text: str) -> str:
    return _MD_LINE_START.sub(_escape_line_start, text)


def _escape_line_start(match: re.Match[str]) -> str:
    if match.group(2) is not None:
        return f"{match.group(1)}\\{match.group(2)}"
    return f"{match.group(3)}\\{match.group(4)}"


def _one_line(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def _shorten(text: str, limit: int) -> str:
    """Cut ``text`` to at most ``limit`` characters, at a word boundary when one is near."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 2 // 3:
        cut = cut[:space]
    return cut.rstrip() + "…"


def safe_link(url: str | None) -> str | None:
    """Return ``url`` if it is an absolute http(s) URL, made safe inside a Markdown link.

    Anything else (``javascript:``, ``data:``, relative or malformed links) is
    dropped: a feed must not be able to put a dangerous link in an alert.
    """
    if not url:
        return None
    url = url.strip()
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    # Percent-encode what could end the Markdown link target or open markup.
    return quote(url, safe="/:?#@!$&'*+,;=%-._~[]")


def utc_text(moment: datetime) -> str:
    """Format a time as operators read it in alerts: ``2024-10-18 09:30 UTC``."""
    if moment.tzinfo is None:  # the model promises aware UTC; be lenient with naive values
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# -- excerpt ------------------------------------------------------------------


def _spans(hits: Sequence[Hit], field: str, length: int) -> list[tuple[int, int]]:
    """Valid hit spans of one field, sorted, overlapping ones merged."""
    raw = sorted(
        (h.start, h.end) for h in hits if h.field == field and 0 <= h.start < h.end <= length
    )
    merged: list[tuple[int, int]] = []
    for start, end in raw:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _inside_span(pos: int, spans: Sequence[tuple[int, int]]) -> bool:
    return any(start < pos < end for start, end in spans)


def _window(text: str, spans: Sequence[tuple[int, int]], size: int) -> tuple[int, int]:
    """A window of at most ``size`` characters around the first hit, cut between words."""
    n = len(text)
    if n <= size:
        return 0, n
    first = spans[0][0] if spans else 0
    lo = max(0, first - size // 4)  # some context before the first hit
    hi = min(n, lo + size)
    lo = max(0, hi - size)
    if lo > 0:  # start after a space, without cutting into the first hit
        space = text.find(" ", lo, min(first, lo + 40) if spans else lo + 40)
        if space != -1 and not _inside_span(space, spans):
            lo = space + 1
    if hi < n:  # end before a space, without cutting into a hit
        space = text.rfind(" ", max(lo + size // 2, hi - 40), hi)
        while space != -1 and _inside_span(space, spans):
            space = text.rfind(" ", max(lo + size // 2, hi - 40), space)
        if space != -1:
            hi = space
    return lo, hi


def excerpt(alert: AlertRecord, *, markdown: bool, max_chars: int = 300) -> str:
    """A one-line excerpt of the alert's text around its hits, matched words marked.

    Cut from the summary when the summary has hits, else from the title when it
    has; otherwise the start of the summary, unmarked. Hits are character
    offsets into their field (content hits cannot be shown: content is not
    stored with the alert).
    """
    text, spans = alert.summary, _spans(alert.hits, "summary", len(alert.summary))
    if not spans:
        title_spans = _spans(alert.hits, "title", len(alert.title))
        if title_spans:
            text, spans = alert.title, title_spans
    if not text.strip():
        return ""
    # Same-length whitespace normalisation keeps the hit offsets valid.
    text = _SPACE.sub(lambda m: " " * len(m.group()), text)
    lo, hi = _window(text, spans, max(20, max_chars))
    plain = _escape_inline if markdown else _identity
    pieces = ["…"] if lo > 0 else []
    pos = lo
    for start, end in spans:
        if start < lo or end > hi:
            continue
        pieces.append(plain(text[pos:start]))
        word = text[start:end].strip()
        pieces.append(f"**{plain(word)}**" if markdown else f"{MARK_OPEN}{word}{MARK_CLOSE}")
        pos = end
    pieces.append(plain(text[pos:hi]))
    if hi < len(text):
        pieces.append("…")
    cut = _one_line("".join(pieces))
    return _escape_line_starts(cut) if markdown else cut


def _identity(text: str) -> str:
    return text


# -- the parts of an alert ----------------------------------------------------


def _headline(alert: AlertRecord) -> str:
    return _shorten(_one_line(alert.title), _HEADLINE_MAX) or "(no title)"


def message_title(rule: str, headline: str, *, markdown: bool) -> str:
    """``[rule] headline``, one line, at most :data:`TITLE_MAX` characters.

    The title stays plain text (services show it in a separate field), but a
    service without a title field merges it into a Markdown body, so for
    Markdown messages anything that could form a tag or a link is defused.
    """
    title = _shorten(_one_line(f"[{rule}] {headline}"), TITLE_MAX)
    if markdown:
        title = title.translate(_ANGLES).replace("](", "] (")
    return title


def _sources(alert: AlertRecord, *, markdown: bool) -> str:
    seen: dict[str, str | None] = {}
    for source in alert.sources:
        name = _one_line(source.feed) or "unnamed feed"
        if name not in seen or seen[name] is None:
            seen[name] = safe_link(source.link)
    names = []
    for name, link in list(seen.items())[:_SOURCES_MAX]:
        if markdown:
            shown = _escape_inline(name)
            names.append(f"[{shown}]({link})" if link else shown)
        else:
            names.append(name)
    if len(seen) > _SOURCES_MAX:
        names.append(f"and {len(seen) - _SOURCES_MAX} more")
    if not names:
        return ""
    return ("Sources: " if len(seen) > 1 else "Source: ") + ", ".join(names)


def _published(alert: AlertRecord) -> str:
    if alert.published is not None:
        return f"Published: {utc_text(alert.published)}"
    return f"Published: not given (seen {utc_text(alert.created_at)})"


def _link_line(alert: AlertRecord, *, markdown: bool) -> str:
    link = safe_link(alert.link)
    if link is None:
        return ""
    if markdown:
        # The full address as the text too: plain-text renderings of the Markdown keep it.
        return f"Link: [{_escape_inline(link)}]({link})"
    # Plain text shows the URL as the feed gave it (validated above, not re-encoded).
    return f"Link: {(alert.link or link).strip()}"


def _why(alert: AlertRecord, *, markdown: bool) -> str:
    terms = ", ".join(_one_line(term) for term in alert.terms) or "the rule's query"
    line = f"Matched: {terms} (rule {alert.rule})"
    return _escape_inline(line) if markdown else line


def _default_body(alert: AlertRecord, *, markdown: bool, max_excerpt: int) -> str:
    headline = _headline(alert)
    lines = [f"**{_escape_inline(headline)}**" if markdown else headline]
    cut = excerpt(alert, markdown=markdown, max_chars=max_excerpt)
    if cut:
        lines.append(cut)
    lines.append("")
    lines.append(_why(alert, markdown=markdown))
    lines.extend(
        line
        for line in (
            _sources(alert, markdown=markdown),
            _published(alert),
            _link_line(alert, markdown=markdown),
        )
        if line
    )
    return "\n".join(lines)


# -- templates ----------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> ImmutableSandboxedEnvironment:
    # Imported on first use: only rules with a template need Jinja2, which is slow to load.
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    # Immutable sandbox: templates cannot reach Python internals (``__class__``,
    # ``__mro__``...) nor mutate the values they are given. StrictUndefined turns a
    # misspelt variable into an error (and so a fallback) instead of an empty string.
    return ImmutableSandboxedEnvironment(
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@lru_cache(maxsize=256)
def _compile(source: str) -> Template:
    return _environment().from_string(source)


def check_template(source: str) -> str | None:
    """Return why ``source`` is not a usable Jinja2 template, or None when it compiles.

    For configuration validation; errors at render time are still possible and
    fall back to the default body.
    """
    try:
        _compile(source)
    except Exception as exc:  # any compile failure of operator-written text is data
        return _template_error(exc)
    return None


def _template_error(exc: Exception) -> str:
    line = getattr(exc, "lineno", None)
    where = f" (line {line})" if isinstance(line, int) else ""
    return _shorten(f"{type(exc).__name__}{where}: {exc}", 300)


def template_context(alert: AlertRecord, *, markdown: bool, max_excerpt: int) -> dict[str, Any]:
    """The variables a rule template sees; text values are pre-escaped for Markdown bodies."""
    text = escape_markdown if markdown else _identity
    sources = []
    seen = set()
    for source in alert.sources:
        name = _one_line(source.feed)
        if name in seen:
            continue
        seen.add(name)
        sources.append({"feed": text(name), "link": safe_link(source.link)})
    return {
        "rule": text(alert.rule),
        "title": text(_headline(alert)),
        "link": safe_link(alert.link),
        "published": utc_text(alert.published) if alert.published else None,
        "sources": sources,
        "excerpt": excerpt(alert, markdown=markdown, max_chars=max_excerpt),
        "terms": [text(_one_line(term)) for term in alert.terms],
        "markdown": markdown,
    }


def _render_template(source: str, context: dict[str, Any]) -> tuple[str | None, str | None]:
    try:
        body = _compile(source).render(context)
    # Templates are operator code: whatever they raise (SecurityError,
    # UndefinedError, ZeroDivisionError...) means "use the default body".
    except Exception as exc:
        return None, _template_error(exc)
    body = body.strip()
    if not body:
        return None, "template rendered an empty body"
    if len(body) > TEMPLATE_OUTPUT_MAX:
        body = body[: TEMPLATE_OUTPUT_MAX - 1] + "…"
    return body, None


# -- public -------------------------------------------------------------------


def render_alert(
    alert: AlertRecord,
    *,
    markdown: bool,
    template: str | None = None,
    max_excerpt: int = 300,
) -> RenderedMessage:
    """Render one alert for a target (SPEC §6).

    ``template`` is the rule's Jinja2 template for the body, if it has one;
    the title is always ``[rule] headline``. When the template fails, the
    default body is used and the failure is returned in ``template_error``.
    """
    title = message_title(alert.rule, _headline(alert), markdown=markdown)
    error = None
    if template is not None:
        context = template_context(alert, markdown=markdown, max_excerpt=max_excerpt)
        body, error = _render_template(template, context)
        if body is not None:
            return RenderedMessage(title, body)
    body = _default_body(alert, markdown=markdown, max_excerpt=max_excerpt)
    return RenderedMessage(title, body, error)


def render_digest(
    alerts: Sequence[AlertRecord],
    *,
    markdown: bool,
    rule: str | None,
    max_items: int = _DIGEST_MAX,
    max_excerpt: int = 160,
) -> RenderedMessage:
    """Render several alerts as one message, for ``digest:`` and quiet hours (SPEC §6).

    ``rule`` names the rule when every alert is from it (it goes in the title);
    with None each entry names its own rule. At most ``max_items`` alerts are
    listed, the rest counted.
    """
    if not alerts:
        raise ValueError("a digest needs at least one alert")
    count = len(alerts)
    noun = "alert" if count == 1 else "alerts"
    summary = f"{count} new {noun}"
    title = message_title(rule, summary, markdown=markdown) if rule else summary
    blocks = []
    for alert in alerts[:max_items]:
        headline = _headline(alert)
        lines = [f"**{_escape_inline(headline)}**" if markdown else headline]
        facts = [
            _sources(alert, markdown=markdown),
            utc_text(alert.published) if alert.published else "",
        ]
        if rule is None:
            named = f"rule {alert.rule}"
            facts.append(_escape_inline(named) if markdown else named)
        lines.append(" · ".join(fact for fact in facts if fact))
        cut = excerpt(alert, markdown=markdown, max_chars=max_excerpt)
        if cut:
            lines.append(cut)
        link = _link_line(alert, markdown=markdown)
        if link:
            lines.append(link)
        blocks.append("\n".join(line for line in lines if line))
    if count > max_items:
        blocks.append(f"… and {count - max_items} more")
    return RenderedMessage(title, "\n\n".join(blocks))


def render_health(alert: AlertRecord, *, markdown: bool) -> RenderedMessage:
    """Render a health alert about a feed or target (SPEC §5).

    Health alerts are stored like rule alerts (so they share the durable
    outbox); their headline says what happened and their summary the details.
    The title is ``[news-monitor] headline``; no excerpt, no "why it matched".
    """
    title = message_title("news-monitor", _headline(alert), markdown=markdown)
    headline = _headline(alert)
    lines = [f"**{_escape_inline(headline)}**" if markdown else headline]
    details = _one_line(alert.summary)
    if details:
        lines.append(_escape_line_starts(_escape_inline(details)) if markdown else details)
    noted = f"Noted: {utc_text(alert.created_at)}"
    lines.append(_escape_inline(noted) if markdown else noted)
    return RenderedMessage(title, "\n".join(lines))


def render_test_message() -> RenderedMessage:
    """The message ``notify-test`` sends: proves a target accepts what we send.

    Plain words only, so it reads the same whether a target takes Markdown or text.
    """
    return RenderedMessage(
        title="news-monitor test message",
        body=(
            f"This is a test message from news-monitor {__version__}. "
            "If you can read it, alerts will reach this target."
        ),
    )
