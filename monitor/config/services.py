"""What configuration needs from Apprise: does it understand a URL, and how to show it.

Delivery talks to Apprise in its own module; this one only reads URLs, so
``check`` can reject a misspelt service and print targets without their
secrets (SPEC §3). Apprise logs why it rejects a URL, with parts of the URL in
the message, so its logger is silenced while we ask.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import apprise
from apprise.plugins import N_MGR as _N_MGR
from apprise.utils import cwe312 as _cwe312

# Parts of Apprise without annotations, used through Any.
N_MGR: Any = _N_MGR
cwe312: Any = _cwe312

# Schemes the project registers itself (monitor.notify's console target); they
# are accepted before that module has been imported.
PROJECT_SCHEMES = frozenset({"console"})

_SCHEME = re.compile(r"\s*([A-Za-z][A-Za-z0-9+.-]*)://")


@contextmanager
def _quiet() -> Iterator[None]:
    logger = logging.getLogger("apprise")
    disabled = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = disabled


def _instantiate(url: str) -> Any:
    with _quiet():
        return apprise.Apprise.instantiate(url)


def scheme_of(url: str) -> str | None:
    """The lower-case scheme of ``url``, or None when it has no ``scheme://``."""
    match = _SCHEME.match(url)
    return match.group(1).lower() if match else None


def url_problem(url: str) -> str | None:
    """Why Apprise cannot use ``url`` (None when it can); the message quotes no part of it."""
    scheme = scheme_of(url)
    if scheme in PROJECT_SCHEMES and scheme not in N_MGR:
        return None
    if _instantiate(url) is not None:
        return None
    if scheme is None:
        return "not an Apprise URL: expected service://..., e.g. mailto://, slack://, ntfy://"
    if scheme not in N_MGR:
        known = sorted({*N_MGR.schemas(), *PROJECT_SCHEMES})
        close = difflib.get_close_matches(scheme, known, n=1)
        hint = f"; did you mean '{close[0]}://'?" if close else ""
        return f"unknown notification service '{scheme}://'{hint}"
    return (
        f"Apprise cannot use this {scheme}:// URL (a token or part of it is missing or malformed; "
        f"see https://github.com/caronc/apprise/wiki)"
    )


def privacy_url(url: str) -> str:
    """``url`` as Apprise prints it with secrets hidden (its ``privacy=True`` rendering).

    Apprise appends every option with its default value; those are dropped
    here, keeping the options the URL itself gave, so the line stays readable.
    """
    service = _instantiate(url)
    if service is None:
        return str(cwe312.cwe312_url(url))
    rendered = str(service.url(privacy=True))
    base, _, query = rendered.partition("?")
    given = {part.split("=", 1)[0] for part in url.partition("?")[2].split("&") if part}
    kept = [part for part in query.split("&") if part.split("=", 1)[0] in given]
    return f"{base}?{'&'.join(kept)}" if kept else base
