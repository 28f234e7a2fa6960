"""parse_feed on RSS, Atom and JSON Feed: normalised entries, identity, errors, hostile XML."""

from __future__ import annotations

import json
import pickle
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime

import pytest
from feedserver import FeedServer
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.errors import ParseError
from monitor.model import Entry, ParsedFeed
from monitor.parse import body_hash, parse_feed
from monitor.parse.dates import from_text

URL = "https://news.example.org/world/feed.xml"
RSS_TYPE = {"content-type": "application/rss+xml"}


def parse(body: bytes, content_type: str | None = "application/rss+xml") -> ParsedFeed:
    return parse_feed(body, {"content-type": content_type} if content_type else {}, URL)


def only(feed: ParsedFeed) -> Entry:
    assert len(feed.entries) == 1, feed.entries
    return feed.entries[0]


def rss(items: str, *, channel: str = "<title>World</title>", decl: str = "") -> bytes:
    return (
        f'{decl}<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        f'xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>{channel}{items}</channel></rss>'
    ).encode()


def item(title: str = "Title", guid: str | None = "g1", extra: str = "") -> str:
    guid_xml = f"<guid>{guid}</guid>" if guid is not None else ""
    return f"<item><title>{title}</title>{guid_xml}{extra}</item>"


# -- entry fields -------------------------------------------------------------


def test_rss2_entry_becomes_plain_text_with_absolute_link_and_utc_time() -> None:
    """An RSS 2.0 item's HTML is reduced to text, its relative link resolved, its date made UTC."""
    feed = parse(
        rss(
            item(
                title="Drones &lt;b&gt;over&lt;/b&gt;\n   Kyiv &amp;amp; beyond",
                guid="  urn:story:42  ",
                extra=(
                    "<link>/world/drones-42</link>"
                    "<description>&lt;p&gt;135 &lt;i&gt;Shahed&lt;/i&gt; drones&lt;/p&gt;"
                    "</description>"
                    "<content:encoded><![CDATA[<p>Full <b>story</b></p><script>x()</script>]]>"
                    "</content:encoded>"
                    "<pubDate>Fri, 18 Oct 2024 09:30:00 +0300</pubDate>"
                    "<dc:creator>Jane Roe</dc:creator>"
                    "<category>Ukraine</category><category>War</category>"
                ),
            )
        )
    )
    entry = only(feed)
    assert feed.title == "World"
    assert entry.id == "urn:story:42"
    assert entry.title == "Drones over Kyiv & beyond"
    assert entry.summary == "135 Shahed drones"
    assert entry.content == "Full story"
    assert entry.link == "https://news.example.org/world/drones-42"
    assert entry.published == datetime(2024, 10, 18, 6, 30, tzinfo=UTC)
    assert entry.authors == ("Jane Roe",)
    assert entry.tags == ("Ukraine", "War")
    assert feed.warnings == ()


def test_atom_entry_with_html_title_relative_link_and_only_updated() -> None:
    """Atom: type="html" markup removed, xml:base and feed URL resolve links, updated stands in."""
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="text">Releases</title>
  <link href="/releases"/>
  <entry>
    <id>tag:example.org,2024:1</id>
    <title type="html">&lt;b&gt;v3.9.0&lt;/b&gt; released</title>
    <link rel="alternate" href="/releases/tag/v3.9.0"/>
    <updated>2024-10-18T07:00:00Z</updated>
    <author><name>contra</name></author>
    <category term="release"/>
    <summary type="html">&lt;p&gt;Notes&lt;/p&gt;</summary>
    <content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>Body</p></div></content>
  </entry>
  <entry xml:base="https://cdn.example.net/a/">
    <id>tag:example.org,2024:2</id><title>Two</title><link href="two.html"/>
  </entry>
</feed>"""
    feed = parse(body, "application/atom+xml")
    first, second = feed.entries
    assert (feed.title, feed.link) == ("Releases", "https://news.example.org/releases")
    assert first.title == "v3.9.0 released"
    assert first.link == "https://news.example.org/releases/tag/v3.9.0"
    assert first.published == first.updated == datetime(2024, 10, 18, 7, tzinfo=UTC)
    assert (first.authors, first.tags) == (("contra",), ("release",))
    assert (first.summary, first.content) == ("Notes", "Body")
    assert second.link == "https://cdn.example.net/a/two.html"


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
        b' xmlns="http://purl.org/rss/1.0/"><channel rdf:about="http://e.org/"><title>T</title>'
        b'</channel><item rdf:about="http://e.org/1"><title>One</title><link>http://e.org/1</link>'
        b"</item></rdf:RDF>",
        b'<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"'
        b' "http://my.netscape.com/publish/formats/rss-0.91.dtd"><rss version="0.91"><channel>'
        b"<title>T</title><item><title>One</title><link>http://e.org/1</link></item></channel></rss>",
    ],
    ids=["rss1.0", "rss0.91"],
)
def test_rss_1_0_and_0_91_are_read(body: bytes) -> None:
    """RSS 1.0 (RDF) and RSS 0.91 items come out like RSS 2.0 ones; the link is their id."""
    entry = only(parse(body))
    assert (entry.title, entry.link, entry.id) == ("One", "http://e.org/1", "http://e.org/1")


def test_summary_copied_into_content_is_not_kept_twice() -> None:
    """An Atom entry with only content does not repeat it as both summary and content."""
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>1</id><title>t</title>'
        b'<content type="html">&lt;p&gt;Only text&lt;/p&gt;</content></entry></feed>'
    )
    entry = only(parse(body, "application/atom+xml"))
    assert (entry.summary, entry.content) == ("Only text", "")


def test_unsafe_and_missing_links_become_none() -> None:
    """javascript: links are dropped; an item without a link has link None."""
    no_link = item(guid=None, extra='<guid isPermaLink="false">b</guid>')
    feed = parse(rss(item(guid="a", extra="<link>javascript:alert(1)</link>") + no_link))
    assert [e.link for e in feed.entries] == [None, None]


# -- identity -----------------------------------------------------------------


def test_ids_fall_back_from_guid_to_link_to_a_stable_hash() -> None:
    """guid first, then link, then sha256 of title, summary and date, the same on every parse."""
    body = rss(
        item(guid="https://e.org/g")
        + item(guid=None, extra="<link>https://e.org/l</link>")
        + item(title="No id", guid=None, extra="<description>Text</description>")
        + item(title="Relative guid", guid="1559104147038")
    )
    ids = [e.id for e in parse(body).entries]
    assert ids[:2] == ["https://e.org/g", "https://e.org/l"]
    assert ids[2].startswith("sha256:") and len(ids[2]) == 7 + 64
    assert ids[3] == "1559104147038"  # not resolved against the feed URL
    assert [e.id for e in parse(body).entries] == ids
    edited = body.replace(b"No id", b"Another title")
    assert parse(edited).entries[2].id != ids[2]


def test_overlong_ids_are_hashed() -> None:
    """A multi-kilobyte guid becomes a fixed-length hash."""
    entry = only(parse(rss(item(guid="x" * 5000))))
    assert entry.id.startswith("sha256:") and len(entry.id) == 71


def test_duplicate_ids_keep_the_first_entry_and_warn() -> None:
    """Two items with one guid: the first stays, and a warning says one was dropped."""
    feed = parse(rss(item("First", "dup") + item("Other", "x") + item("Second", "dup")))
    assert [e.title for e in feed.entries] == ["First", "Other"]
    assert feed.warnings == ("dropped 1 entry with a duplicate id, e.g. dup",)


# -- dates --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-10-18T09:30:00+03:00", datetime(2024, 10, 18, 6, 30, tzinfo=UTC)),
        ("2024-10-18T06:30:00Z", datetime(2024, 10, 18, 6, 30, tzinfo=UTC)),
        ("2024-10-18T06:30:00", datetime(2024, 10, 18, 6, 30, tzinfo=UTC)),
        ("Fri, 18 Oct 2024 06:30:00 GMT", datetime(2024, 10, 18, 6, 30, tzinfo=UTC)),
        ("Seg, 24 Set 2018 19:42:40 -0300", datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC)),
        ("Di, 01 Okt 2024 10:00:00 +0200", datetime(2024, 10, 1, 8, tzinfo=UTC)),
        ("mar., 3 déc. 2024 10:00:00 +0100", datetime(2024, 12, 3, 9, tzinfo=UTC)),
        ("2999-01-01T00:00:00Z", datetime(2999, 1, 1, tzinfo=UTC)),  # future: kept
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_dates_are_read_as_aware_utc(text: str | None, expected: datetime | None) -> None:
    """RFC 3339 and RFC 822 dates, localised month names included, become aware UTC."""
    assert from_text(text) == expected


def test_localised_and_broken_dates_in_a_feed() -> None:
    """A Portuguese pubDate is read; an unreadable one leaves published None without failing."""
    feed = parse(
        rss(
            item(guid="a", extra="<pubDate>Seg, 24 Set 2018 19:42:40 -0300</pubDate>")
            + item(guid="b", extra="<pubDate>not a date</pubDate>")
        )
    )
    assert [e.published for e in feed.entries] == [
        datetime(2018, 9, 24, 22, 42, 40, tzinfo=UTC),
        None,
    ]


# -- malformed, empty, and not feeds -----------------------------------------


def test_malformed_xml_with_entries_is_a_warning() -> None:
    """feedparser's bozo flag becomes a warning naming the line when entries could be read."""
    body = (
        b'<rss version="2.0"><channel><title>t</title>\n'
        b"<item><title>Title</title><guid>g1</guid></item>\n"
        b"<item><title>Broken</b></item></channel></rss>"
    )
    feed = parse(body)
    assert [e.title for e in feed.entries] == ["Title"]
    assert feed.warnings == (
        "not well-formed XML (line 3): mismatched tag",
        "skipped 1 item(s) with no title, text or link",  # what was left of the broken one
    )


def test_whitespace_before_the_xml_declaration_is_tolerated() -> None:
    """A blank line before <?xml (TechCrunch) parses strictly, without a warning."""
    feed = parse(b"\n\n" + rss(item(), decl='<?xml version="1.0" encoding="utf-8"?>'))
    assert (len(feed.entries), feed.warnings) == (1, ())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty response body"),
        (b" \r\n\t ", "empty response body"),
        (
            b"<!DOCTYPE html>\n<html><head><title>Not found</title></head><body>x</body></html>",
            "the response is an HTML page, not a feed",
        ),
        (b"<html><body><p>Login</p></body></html>", "the response is an HTML page, not a feed"),
        (
            b'<rss version="2.0"><channel><title>t</ch',
            "not a feed: not well-formed XML (line 1): unclosed token",
        ),
        (
            b'<rss version="2.0"><channel><title>t</title><item><title',
            "not a feed: not well-formed XML (line 1): unclosed token",
        ),
        (b"plain text, no markup", "not a feed: not well-formed XML (line 1): syntax error"),
        (b'<?xml version="1.0"?><config><a/></config>', "not a feed: no RSS or Atom root element"),
        (b"[1, 2]", "not a feed: the JSON is a list, not a JSON Feed object"),
        (b'{"items": ', "not a feed: invalid JSON (line 1, column 11): Expecting value"),
        (b'{"title": "x"}', "not a feed: JSON without a JSON Feed 'items' list"),
        (
            b'{"items":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "not a feed: JSON nested too deeply",
        ),
    ],
    ids=[
        "empty",
        "whitespace",
        "html-doctype",
        "html",
        "truncated",
        "truncated-in-item",
        "text",
        "other-xml",
        "json-list",
        "json-invalid",
        "json-no-items",
        "json-deep",
    ],
)
def test_bodies_without_entries_raise_a_specific_parse_error(body: bytes, message: str) -> None:
    """Each kind of non-feed gets its own message, never a traceback."""
    with pytest.raises(ParseError) as info:
        parse(body)
    assert str(info.value) == message


def test_control_characters_never_reach_an_entry() -> None:
    """NUL and other C0 controls (as "&#0;" or raw) are removed from text, ids and links, in
    RSS and JSON Feed alike: no store must refuse an entry for them (PostgreSQL refuses NUL)."""
    body = rss(
        "<item><title>Drone&#0; strike\x01</title><guid>id&#0;1</guid>"
        "<link>https://a.example/1&#1;</link><description>a&#0;b</description></item>"
    )
    [entry] = parse(body).entries
    assert (entry.title, entry.id, entry.link, entry.summary) == (
        "Drone strike",
        "id1",
        "https://a.example/1",
        "ab",
    )
    feed = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [{"id": "j\u00001", "title": "T\u0000x", "url": "https://a.example/2"}],
        }
    ).encode()
    [item] = parse(feed, "application/feed+json").entries
    assert (item.id, item.title) == ("j1", "Tx")


def test_items_with_nothing_to_show_are_skipped_with_a_warning() -> None:
    """An item with no title, text or link is not an entry; the skip is reported."""
    body = rss("<item></item><item><title>Drone strike</title></item>")
    feed = parse(body)
    assert [e.title for e in feed.entries] == ["Drone strike"]
    assert feed.warnings == ("skipped 1 item(s) with no title, text or link",)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (rss(""), "application/rss+xml"),
        (b'<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title></feed>', "text/xml"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": []}', "application/json"),
    ],
    ids=["rss", "atom", "json"],
)
def test_a_valid_feed_with_no_entries_is_not_an_error(body: bytes, content_type: str) -> None:
    """An empty but well-formed feed parses to zero entries."""
    assert parse(body, content_type).entries == ()


# -- JSON Feed ----------------------------------------------------------------


def test_json_feed_1_1_items() -> None:
    """JSON Feed 1.1: ids, HTML content to text, relative URLs, dates, tags, inherited authors."""
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Blog",
        "home_page_url": "https://blog.example.org/",
        "authors": [{"name": "Feed Author"}],
        "items": [
            {
                "id": "1",
                "url": "/posts/1",
                "title": "First &amp; best",
                "content_html": "<p>Hello <b>world</b></p>",
                "summary": "Short",
                "date_published": "2024-10-18T09:30:00+03:00",
                "tags": ["a", "b", "a", 3],
            },
            {
                "id": 2,
                "external_url": "https://elsewhere.example.com/x",
                "content_text": "Plain body",
                "date_modified": "2024-10-19T00:00:00Z",
                "authors": [{"name": "Item Author"}],
            },
            "not an item",
        ],
    }
    feed = parse(json.dumps(document).encode(), "application/feed+json")
    first, second = feed.entries
    assert (feed.title, feed.link) == ("Blog", "https://blog.example.org/")
    assert (first.id, first.title, first.summary, first.content) == (
        "1",
        "First & best",
        "Short",
        "Hello world",
    )
    assert first.link == "https://news.example.org/posts/1"
    assert first.published == datetime(2024, 10, 18, 6, 30, tzinfo=UTC)
    assert (first.authors, first.tags) == (("Feed Author",), ("a", "b"))
    assert (second.id, second.link, second.content) == (
        "2",
        "https://elsewhere.example.com/x",
        "Plain body",
    )
    assert second.published == second.updated == datetime(2024, 10, 19, tzinfo=UTC)
    assert second.authors == ("Item Author",)
    assert feed.warnings == ("skipped 1 items that are not JSON objects",)


def test_json_feed_1_0_with_bom_and_single_author() -> None:
    """JSON Feed 1.0's author object and a UTF-8 byte order mark are accepted."""
    document = {
        "version": "https://jsonfeed.org/version/1",
        "items": [{"id": "x", "title": "Über", "author": {"name": "Brent"}}],
    }
    body = b"\xef\xbb\xbf" + json.dumps(document, ensure_ascii=False).encode()
    entry = only(parse(body, "application/json"))
    assert (entry.title, entry.authors) == ("Über", ("Brent",))


# -- encodings ----------------------------------------------------------------

RUSSIAN = "Россия вернула Украине тела 501 погибшего военнослужащего"


@pytest.mark.parametrize(
    ("body", "content_type", "warned"),
    [
        # cp1251 bytes declared UTF-8 by the server and by the document
        (
            rss(item(RUSSIAN) * 3).decode().encode("cp1251"),
            "application/rss+xml; charset=utf-8",
            True,
        ),
        # declared correctly
        (
            rss(item(RUSSIAN), decl='<?xml version="1.0" encoding="windows-1251"?>')
            .decode()
            .encode("cp1251"),
            "text/xml",
            False,
        ),
        # UTF-8 with no charset on text/xml (RFC 3023 would say us-ascii)
        (rss(item(RUSSIAN)), "text/xml", False),
        # UTF-8 with no Content-Type at all (feedparser would say iso-8859-1)
        (rss(item(RUSSIAN)), None, False),
        # UTF-16 with a byte order mark
        (
            rss(item(RUSSIAN), decl='<?xml version="1.0" encoding="utf-16"?>')
            .decode()
            .encode("utf-16"),
            "application/xml",
            False,
        ),
    ],
    ids=["cp1251-declared-utf8", "cp1251-declared", "text-xml", "no-content-type", "utf-16"],
)
def test_cyrillic_titles_survive_wrong_or_missing_declarations(
    body: bytes, content_type: str | None, warned: bool
) -> None:
    """The title comes out as written, without mojibake, whatever the declarations say."""
    feed = parse(body, content_type)
    assert feed.entries[0].title == RUSSIAN
    assert bool(feed.warnings) == warned


@pytest.mark.parametrize(
    ("raw", "content_type", "expected"),
    [
        ("Ação é ótima".encode("latin-1"), "application/rss+xml", "Ação é ótima"),
        ("Ação é ótima".encode(), "text/xml; charset=ISO-8859-1", "Ação é ótima"),
        ("Ação – ".encode() + b"caf\xe9", "application/rss+xml; charset=utf-8", "Ação – café"),
        (
            "中文标题：无人机".encode("gb2312"),
            "application/rss+xml; charset=gb2312",
            "中文标题：无人机",
        ),
    ],
    ids=["latin1-undeclared", "utf8-declared-latin1", "utf8-with-stray-latin1", "gb2312"],
)
def test_latin_and_chinese_titles_survive_wrong_declarations(
    raw: bytes, content_type: str, expected: str
) -> None:
    """ISO-8859-1 without declaration, UTF-8 called Latin-1, stray bytes and GB2312 read right."""
    body = rss("").replace(b"</channel>", b"<item><title>" + raw + b"</title></item></channel>")
    title = only(parse(body, content_type)).title
    assert title == expected
    assert "\ufffd" not in title and "Ã" not in title


# -- hostile XML --------------------------------------------------------------


def _laughs(newlines: bool) -> bytes:
    sep = "\n" if newlines else ""
    decls = ['<!ENTITY lol0 "lol">']
    decls += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    dtd = f"<!DOCTYPE lolz [{sep}{sep.join(decls)}{sep}]>"
    return f'<?xml version="1.0"?>{sep}{dtd}{sep}'.encode() + rss(item("a &lol9; b"))


@pytest.mark.parametrize(
    "body",
    [
        _laughs(newlines=True),
        _laughs(newlines=False),  # feedparser's own filter only sees declarations on their own line
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "'
        + b"x" * 50_000
        + b'">]>'
        + rss(item("&a;" * 20_000)),
        # a literal hiding "]>" and a comment hiding a harmless declaration do not fool the scan
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY z "]>"><!-- <!ENTITY s "b"> -->'
        b'<!ENTITY a "' + b"y" * 50_000 + b'">]>' + rss(item("&a;" * 2_000)),
    ],
    ids=["billion-laughs", "billion-laughs-one-line", "quadratic-blowup", "disguised"],
)
def test_entity_expansion_is_never_performed(body: bytes) -> None:
    """Entity bombs parse in bounded time and memory, their references left unexpanded."""
    tracemalloc.start()
    started = time.monotonic()
    try:
        feed = parse(body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.monotonic() - started < 3
    assert peak < 30_000_000
    title = only(feed).title
    assert "lollol" not in title and "xxxxxxxx" not in title and "yyyyyyyy" not in title
    assert feed.warnings[0].startswith("removed a DOCTYPE with unsafe entity declarations")


def test_external_entities_are_neither_read_nor_fetched() -> None:
    """A SYSTEM entity naming /etc/passwd or a URL is never resolved: no file text, no request."""
    with FeedServer() as server:
        server.add("/evil.dtd", b'<!ENTITY leak "LEAKED">', content_type="application/xml-dtd")
        body = (
            f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">'
            f'<!ENTITY % remote SYSTEM "{server.url("/evil.dtd")}"> %remote;]>'
        ).encode() + rss(item("x &xxe; &leak; y"))
        feed = parse(body)
        assert server.requests == []
    text = " ".join(e.title + e.summary for e in feed.entries)
    assert "root:" not in text and "LEAKED" not in text


def test_small_character_entities_in_a_doctype_are_honoured() -> None:
    """A DOCTYPE declaring &nbsp; as &#160; is kept and used, with no warning."""
    body = (
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY nbsp "&#160;"><!ENTITY mdash "&#8212;">]>'
        + rss(item("a&nbsp;b &mdash; c"))
    )
    feed = parse(body)
    assert (only(feed).title, feed.warnings) == ("a b — c", ())


def test_surrogate_pair_character_references_become_the_character() -> None:
    """An emoji written as two UTF-16 surrogate references reads as 😀; a lone one as U+FFFD."""
    feed = parse(rss(item("smile &#55357;&#56832; &#xD83D;&#xDE00; lone &#56832;")))
    assert only(feed).title == "smile 😀 😀 lone \ufffd"


def test_a_crash_inside_feedparser_is_a_parse_error() -> None:
    """Garbage that makes feedparser's fallback parser raise becomes a ParseError."""
    with pytest.raises(ParseError, match=r"^not a feed: the parser gave up \("):
        parse(b"<rss><channel><item><title>x<width></title></width>&#;</item>")


SAMPLE = rss(
    item(
        "Drones &amp; <![CDATA[troops]]>", extra="<pubDate>Fri, 18 Oct 2024 06:30:00 GMT</pubDate>"
    )
    + item("Second", "g2", "<description>&lt;p&gt;Text&lt;/p&gt;</description>"),
    decl='<?xml version="1.0" encoding="utf-8"?>',
)
NASTY = [b"<", b">", b"&", b"]]>", b"<![CDATA[", b"<!DOCTYPE x [", b'<!ENTITY a "b">', b"&#0;"]
NASTY += [b"&#xD800;", b"\x00", b"\xff\xfe", b"\xe9", b"{", b"</item>", b"<item>", b"&a;"]


@settings(max_examples=150, deadline=None)
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, len(SAMPLE)),
            st.integers(0, 40),
            st.sampled_from(NASTY) | st.binary(max_size=6),
        ),
        max_size=6,
    ),
    content_type=st.sampled_from(["application/rss+xml", "text/html", "application/json", ""]),
)
def test_mangled_feeds_give_entries_or_a_parse_error(
    edits: list[tuple[int, int, bytes]], content_type: str
) -> None:
    """Whatever bytes arrive, parse_feed returns normalised entries or raises ParseError."""
    body = SAMPLE
    for position, cut, insert in edits:
        body = body[:position] + insert + body[position + cut :]
    try:
        feed = parse(body, content_type)
    except ParseError as error:
        assert str(error) and "\n" not in str(error)
        return
    for entry in feed.entries:
        assert entry.id and isinstance(entry.title, str) and "\n" not in entry.title


# -- running in a process pool ------------------------------------------------


def test_results_and_errors_pickle_for_the_process_pool() -> None:
    """parse_feed runs in a real worker process; its result and its ParseError cross back intact."""
    body = rss(item("Pickled", extra="<pubDate>Fri, 18 Oct 2024 06:30:00 GMT</pubDate>"))
    with ProcessPoolExecutor(max_workers=1) as pool:
        feed = pool.submit(parse_feed, body, RSS_TYPE, URL).result(timeout=30)
        error = pool.submit(parse_feed, b"", RSS_TYPE, URL).exception(timeout=30)
    assert feed == parse(body)
    assert isinstance(error, ParseError) and str(error) == "empty response body"
    assert pickle.loads(pickle.dumps(feed)) == feed  # noqa: S301 - our own bytes


def test_body_hash_is_sha256_hex() -> None:
    """body_hash is the SHA-256 of the bytes, so equal bodies compare equal."""
    assert body_hash(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert body_hash(b"a") != body_hash(b"b")
