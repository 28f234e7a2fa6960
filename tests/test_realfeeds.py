"""Every real feed sample, served over HTTP, fetched and parsed: entries or one specific error.

The samples in ../shared/realfeeds are feeds as news sites served them, with
their oddities (sources.tsv describes each). They are read from there, never
copied into the repository; without that folder these tests skip.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest
from feedserver import FeedServer

from monitor.errors import ParseError
from monitor.fetch import Fetcher
from monitor.model import ParsedFeed
from monitor.parse import parse_feed
from monitor.query import compile_rules

REALFEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "realfeeds"
FILES = (
    sorted(p.name for p in REALFEEDS.iterdir() if p.name != "sources.tsv")
    if REALFEEDS.is_dir()
    else []
)
pytestmark = pytest.mark.skipif(
    not FILES, reason=f"real feed samples not found in {REALFEEDS} (../shared is absent)"
)

# What a plausible server sends for each kind of file; 30 is the classic liar:
# ISO-8859-1 bytes, no XML declaration, and a server claiming UTF-8.
CONTENT_TYPES = {".json": "application/feed+json", ".atom": "application/atom+xml"}
OVERRIDES = {
    "30_uol_noticias_ISO-8859-1_NO-DECL.rss": "text/xml; charset=utf-8",
    "36_inessential_jsonfeed_v1.json": "application/json",
    "45_kc0011_GB2312_chinese.rss": "application/rss+xml",
}
MARKUP = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(\s[^<>]*)?/?>")


def content_type(name: str) -> str:
    suffix = Path(name).suffix
    return OVERRIDES.get(name) or CONTENT_TYPES.get(suffix, "application/rss+xml; charset=utf-8")


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    with FeedServer() as s:
        for name in FILES:
            body = (REALFEEDS / name).read_bytes()
            s.add(f"/feeds/{name}", body, content_type=content_type(name), gzip=True)
        yield s


def fetch_and_parse(server: FeedServer, name: str) -> ParsedFeed:
    """Fetch one sample from the local server and parse it, as the daemon does."""

    async def go() -> ParsedFeed:
        async with Fetcher(user_agent="news-monitor-tests", timeout=5, max_size=10_000_000) as f:
            fetched = await f.fetch(server.url(f"/feeds/{name}"))
        return parse_feed(fetched.body, fetched.headers, fetched.url)

    return asyncio.run(go())


@pytest.mark.parametrize("name", FILES)
def test_every_real_feed_yields_clean_entries_or_a_specific_error(
    server: FeedServer, name: str
) -> None:
    """Each sample gives clean entries (plain text, absolute links, UTC) or one empty-body error."""
    if "EMPTY" in name:
        with pytest.raises(ParseError, match=r"^empty response body$"):
            fetch_and_parse(server, name)
        return
    feed = fetch_and_parse(server, name)
    assert feed.entries
    assert len({e.id for e in feed.entries}) == len(feed.entries)
    for entry in feed.entries:
        assert entry.id.strip() == entry.id != ""
        for text in (entry.title, entry.summary, entry.content):
            assert not MARKUP.search(text), text
        assert "\n" not in entry.title and entry.title == entry.title.strip()
        assert "\ufffd" not in entry.title and "Ã" not in entry.title
        assert entry.link is None or entry.link.startswith(("http://", "https://"))
        for moment in (entry.published, entry.updated):
            assert moment is None or moment.tzinfo == UTC
    assert all(isinstance(w, str) and "\n" not in w for w in feed.warnings)


# SPEC §3's three example rules, and how many entries of each sample they match.
RULES = {
    "war-dead-repatriation": (
        '(bodies OR remains) NEAR/8 (soldiers OR troops OR defenders OR "war dead")'
    ),
    "north-korean-troops": '("north korean" OR DPRK) NEAR/5 (troops OR soldiers)',
    "drone-barrage": "@ukraine-war AND ((drone* OR shahed* OR UAV*) NEAR/4 (>=100 OR barrage))",
}
TOPICS = {"ukraine-war": "ukrain* OR kyiv OR russia*"}
MATCHES = {
    "01_npr_news_2024-10-25_nk-troops.xml": {"north-korean-troops": 1},
    "02_npr_news_2024-11-18_kursk.xml": {"north-korean-troops": 1},
    "09_kyivindependent_2024-07-26_reserialized.xml": {
        "war-dead-repatriation": 2,
        "drone-barrage": 2,
    },
    "10_kyivindependent_2024-08-23_reserialized.xml": {
        "war-dead-repatriation": 3,
        "drone-barrage": 3,
    },
    "11_moscowtimes_MISLABELED_2024-08-23.xml": {"war-dead-repatriation": 2, "drone-barrage": 2},
    "12_kyivpost_MISLABELED_2024-08-23.xml": {"war-dead-repatriation": 2, "drone-barrage": 2},
}


@pytest.mark.parametrize("name", [n for n in FILES if "EMPTY" not in n])
def test_the_example_rules_match_what_each_real_feed_says(server: FeedServer, name: str) -> None:
    """Fetched and parsed samples go through the matcher: the known stories match, nothing
    else does (the rest are negatives), and every hit marks text that is really there."""
    matcher = compile_rules(RULES, TOPICS)
    counts: dict[str, int] = {}
    for entry in fetch_and_parse(server, name).entries:
        for match in matcher.match(entry):
            counts[match.rule] = counts.get(match.rule, 0) + 1
            for hit in match.hits:
                marked = getattr(entry, hit.field)[hit.start : hit.end]
                assert marked.strip() == marked != "", (hit, marked)
    assert counts == MATCHES.get(name, {})


def titles(server: FeedServer, name: str) -> list[str]:
    return [e.title for e in fetch_and_parse(server, name).entries]


def test_relative_links_resolve_against_the_feed_url(server: FeedServer) -> None:
    """GitHub's release feed (44) links relatively; links come out absolute on the serving host."""
    feed = fetch_and_parse(server, "44_github_releases_RELATIVE-LINKS.atom")
    assert feed.entries[0].link == server.url("/gulpjs/gulp/releases/tag/v3.9.0")
    assert all(e.link and e.link.startswith(server.url("/gulpjs/gulp/")) for e in feed.entries)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "30_uol_noticias_ISO-8859-1_NO-DECL.rss",
            "Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações de 2º turno",
        ),
        (
            "31_jornal_noticias_ISO-8859-1_CRLF.rss",
            "Mãe de utente é a nova presidente da Raríssimas",
        ),
        ("45_kc0011_GB2312_chinese.rss", "建国35周年纪念，华表，和平鸽"),
        (
            "14_bbc_russian_2025-09-26.xml",
            "Курорт на месте военного полигона: как КНДР пытается привлечь российских туристов",
        ),
    ],
)
def test_encodings_come_out_right(server: FeedServer, name: str, expected: str) -> None:
    """ISO-8859-1 without declaration (served as UTF-8), declared ISO-8859-1, GB2312, Cyrillic."""
    assert titles(server, name)[0] == expected


def test_a_wrong_declared_encoding_is_a_warning(server: FeedServer) -> None:
    """Feed 30's server says UTF-8; the override is reported, not hidden."""
    feed = fetch_and_parse(server, "30_uol_noticias_ISO-8859-1_NO-DECL.rss")
    assert feed.warnings == ("encoding: the body is not in its declared utf-8; decoded as cp1252",)


def test_cdata_titles_wrapped_in_whitespace_are_trimmed(server: FeedServer) -> None:
    """HuffPost's (39) titles sit inside newlines and indentation in CDATA."""
    assert titles(server, "39_huffpost_canada_CDATA-whitespace.xml") == [
        "Winnipeg High School Orders Custom Hijabs For Muslim Athletes",
        "The Once-In-A-Lifetime Thrill Of Opening For Tom Petty",
    ]


def test_duplicate_guids_keep_the_first_and_warn(server: FeedServer) -> None:
    """Scripting News (43) repeats two guids among 50 items: 48 entries and a warning."""
    feed = fetch_and_parse(server, "43_scriptingnews_DUP-GUIDS.rss")
    assert len(feed.entries) == 48
    assert feed.warnings[0].startswith("dropped 2 entries with a duplicate id")


def test_items_without_guid_are_identified_by_link_across_snapshots(server: FeedServer) -> None:
    """Kyiv Independent snapshots (09, 10) have no guid; shared articles get the same id."""
    first = {
        e.id
        for e in fetch_and_parse(server, "09_kyivindependent_2024-07-26_reserialized.xml").entries
    }
    later = {
        e.id
        for e in fetch_and_parse(server, "10_kyivindependent_2024-08-23_reserialized.xml").entries
    }
    assert all(i.startswith("https://") for i in first | later)  # the links, not hashes
    assert len(first & later) == 20


@pytest.mark.parametrize(
    ("name", "count", "first_title"),
    [
        (
            "36_inessential_jsonfeed_v1.json",
            20,
            "James Dempsey and the Breakpoints Benefit App Camp for Girls",
        ),
        ("37_3960_jsonfeed_v1.1_de.json", 20, "Lecker, lecker"),
        ("38_daringfireball_jsonfeed.json", 48, "The Talk Show: ‘I Do Like Throwing a Baby’"),
    ],
)
def test_json_feeds_are_parsed(server: FeedServer, name: str, count: int, first_title: str) -> None:
    """JSON Feed 1.0 and 1.1 samples give all their items."""
    names = titles(server, name)
    assert (len(names), names[0]) == (count, first_title)


def test_html_in_atom_titles_is_removed(server: FeedServer) -> None:
    """Google Alerts (41) marks the matched word with <b> in type="html" titles."""
    first = titles(server, "41_google_alerts_atom_single-line.xml")[0]
    assert first.startswith("Report offers Prediction of Automotive Slack Market")


def test_techcrunch_blank_line_before_declaration_is_not_even_a_warning(server: FeedServer) -> None:
    """A blank line before <?xml (42) would make strict XML fail; it parses cleanly."""
    feed = fetch_and_parse(server, "42_techcrunch_2012.xml")
    assert (len(feed.entries), feed.warnings) == (20, ())
