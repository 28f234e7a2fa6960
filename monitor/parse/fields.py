"""Small normalisers both feed formats share: absolute links and de-duplicated names."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urljoin, urlsplit

from monitor.text import strip_controls


def absolute_link(link: object, base: str) -> str | None:
    """An absolute http(s) URL, resolved against ``base``; None for anything else.

    Relative links are common (GitHub's release feeds use them throughout);
    ``javascript:`` and ``data:`` links are never passed on to an alert.
    """
    if not isinstance(link, str) or not strip_controls(link).strip():
        return None
    try:
        absolute = urljoin(base, strip_controls(link).strip())
        scheme = urlsplit(absolute).scheme
    except ValueError:
        return None
    return absolute if scheme in ("http", "https") else None


def unique(values: Iterable[str]) -> tuple[str, ...]:
    """The non-empty values, first occurrence of each, in order."""
    return tuple(dict.fromkeys(v for v in values if v))
