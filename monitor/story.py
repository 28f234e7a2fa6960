"""Story identity: when two entries are the same news story (SPEC §5).

Feeds re-issue entries under new guids, and wire stories appear on many sites
with the same headline. Each entry gets *story keys*: its canonical link and
its normalised title. Entries sharing a key are one story, so one alert per
rule lists every source instead of alerting again.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from monitor.model import Entry

# Query parameters that identify a campaign or a click, not a document.
_TRACKING_PREFIXES = ("utm_", "at_", "mc_", "pk_", "mtm_", "hsa_", "ga_")
_TRACKING_NAMES = frozenset(
    {
        "fbclid", "gclid", "dclid", "msclkid", "yclid", "igshid", "ocid", "cmpid", "ref",
        "ref_src", "src", "smid", "smtyp", "cid", "ito", "mbid", "rss", "ns_mchannel",
        "ns_source", "ns_campaign", "ns_linkname", "ns_fee", "cmp", "__twitter_impression",
    }
)  # fmt: skip
_WORD = re.compile(r"\w+")
# Titles shorter than this are too generic ("Live updates") to identify a story.
MIN_TITLE_WORDS = 4


def canonical_link(url: str | None) -> str | None:
    """The link with scheme, ``www.``, fragment and tracking parameters removed.

    ``https://www.example.org/a/?utm_source=rss&id=3#top`` and
    ``http://example.org/a?id=3`` have the same canonical form.
    """
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    host = (parts.hostname or "").lower().removeprefix("www.")
    if not host:
        return None
    port = parts.port if parts.port not in (None, 80, 443) else None
    netloc = f"{host}:{port}" if port else host
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith(_TRACKING_PREFIXES) and k.lower() not in _TRACKING_NAMES
    )
    path = parts.path.rstrip("/") or "/"
    return urlunsplit(("", netloc, path, urlencode(query), "")).removeprefix("//")


# A trailing " - Reuters", " | AP News", " — The Kyiv Independent": the site, not the story.
_SITE_SUFFIX = re.compile(r"\s+[-|–—]\s+(?P<site>[^-|–—]{1,40})$")
MAX_SITE_WORDS = 4


def title_key(title: str) -> str | None:
    """The title folded to lower-case words without accents or punctuation.

    A trailing site name after a dash or bar (``... - Reuters``) is left out,
    so the same wire headline on several sites is one story. None for titles
    too short to tell stories apart.
    """
    suffix = _SITE_SUFFIX.search(title)
    if suffix and len(suffix.group("site").split()) <= MAX_SITE_WORDS:
        shorter = title[: suffix.start()]
        if len(_WORD.findall(shorter)) >= MIN_TITLE_WORDS:
            title = shorter
    folded = unicodedata.normalize("NFKD", title.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    words = _WORD.findall(folded)
    if len(words) < MIN_TITLE_WORDS:
        return None
    return " ".join(words)


def story_keys(entry: Entry) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The entry's (link keys, title keys), each prefixed with its kind."""
    return _keys(entry.link, entry.title)


# A poll asks twice per entry (the store lookup, then deciding): remember one poll's worth.
@lru_cache(maxsize=4096)
def _keys(link: str | None, title: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    canonical = canonical_link(link)
    folded = title_key(title)
    return ((f"link:{canonical}",) if canonical else ()), ((f"title:{folded}",) if folded else ())
