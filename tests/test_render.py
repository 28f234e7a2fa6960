"""Rendering alerts as messages (SPEC §6): content, escaping, excerpts, templates, digests."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from apprise.conversion.format import markdown_to_html

from monitor.model import AlertRecord, Hit, Source
from monitor.render import (
    TITLE_MAX,
    RenderedMessage,
    check_template,
    escape_markdown,
    excerpt,
    render_alert,
    render_digest,
    render_test_message,
    safe_link,
)

STORY = (
    "Russia returned to Ukraine the bodies of 501 soldiers, the biggest repatriation "
    "of war dead since February 2022, most killed around Avdiivka."
)
PUBLISHED = datetime(2024, 10, 18, 9, 30, tzinfo=UTC)


def hits_for(text: str, *words: str, field: str = "summary") -> tuple[Hit, ...]:
    """Hits at the first occurrence of each word in ``text``."""
    found = []
    for word in words:
        start = text.index(word)
        found.append(Hit(field, start, start + len(word), word))
    return tuple(found)


def make_alert(
    *,
    title: str = "Russia returns bodies of 501 soldiers to Ukraine",
    summary: str = STORY,
    hits: tuple[Hit, ...] | None = None,
    terms: tuple[str, ...] = ("bodies", "soldiers", "NEAR/8"),
    sources: tuple[Source, ...] = (Source("AP", "https://apnews.com/article/1"),),
    link: str | None = "https://apnews.com/article/1",
    published: datetime | None = PUBLISHED,
    rule: str = "war-dead-repatriation",
) -> AlertRecord:
    """An alert like the store hands to the renderer."""
    return AlertRecord(
        id=1,
        rule=rule,
        title=title,
        link=link,
        published=published,
        summary=summary,
        terms=terms,
        hits=hits_for(summary, "bodies", "soldiers") if hits is None else hits,
        sources=sources,
        created_at=PUBLISHED + timedelta(minutes=2),
    )


def as_html(body: str) -> str:
    """What an HTML target (email) shows: Markdown converted the way Apprise does."""
    return str(markdown_to_html(body))


# -- content ------------------------------------------------------------------


@pytest.mark.parametrize("markdown", [True, False])
def test_alert_carries_every_part(markdown: bool) -> None:
    """An alert names rule, headline, sources, link, time, excerpt and why it matched."""
    message = render_alert(make_alert(), markdown=markdown)
    headline = "Russia returns bodies of 501 soldiers to Ukraine"
    assert message.title == f"[war-dead-repatriation] {headline}"
    assert message.template_error is None
    body = message.body
    assert "Russia returns bodies of 501 soldiers to Ukraine" in body
    assert "Published: 2024-10-18 09:30 UTC" in body
    assert "apnews.com" in body
    assert "Matched: bodies, soldiers, NEAR/8 (rule war-dead-repatriation)" in body.splitlines()
    if markdown:
        assert "the **bodies** of 501 **soldiers**" in body
        assert "Link: [https://apnews.com/article/1](https://apnews.com/article/1)" in body
    else:
        assert "the «bodies» of 501 «soldiers»" in body
        assert "Link: https://apnews.com/article/1" in body


@pytest.mark.parametrize(
    ("sources", "markdown", "expected"),
    [
        (
            (Source("AP", None), Source("Reuters", None), Source("BBC", None)),
            False,
            "Sources: AP, Reuters, BBC",
        ),
        ((Source("AP", None),), False, "Source: AP"),
        (
            (Source("AP", "https://a.example/1"), Source("AP", None), Source("BBC", None)),
            False,
            "Sources: AP, BBC",
        ),
        (
            (Source("AP", "https://a.example/1"), Source("BBC", "javascript:alert(1)")),
            True,
            "Sources: [AP](https://a.example/1), BBC",
        ),
        ((Source("A_P [wire]", None), Source("B", None)), True, "Sources: A\\_P \\[wire\\], B"),
    ],
)
def test_sources_are_all_listed(sources: tuple[Source, ...], markdown: bool, expected: str) -> None:
    """Every feed that carried the story is listed once, linked only by safe links."""
    body = render_alert(make_alert(sources=sources), markdown=markdown).body
    assert expected in body.splitlines()


@pytest.mark.parametrize(
    ("published", "expected"),
    [
        (datetime(2024, 10, 18, 9, 30, tzinfo=UTC), "Published: 2024-10-18 09:30 UTC"),
        (
            datetime(2024, 10, 18, 12, 30, tzinfo=timezone(timedelta(hours=3))),
            "Published: 2024-10-18 09:30 UTC",
        ),
        (None, "Published: not given (seen 2024-10-18 09:32 UTC)"),
    ],
)
def test_published_time_is_utc(published: datetime | None, expected: str) -> None:
    """The published time is shown in UTC; without one, when the entry was seen."""
    assert expected in render_alert(make_alert(published=published), markdown=False).body


def test_long_headline_title_is_cut() -> None:
    """The message title is "[rule] headline" cut to at most TITLE_MAX characters."""
    title = render_alert(make_alert(title="word " * 100), markdown=False).title
    assert len(title) <= TITLE_MAX
    assert title.startswith("[war-dead-repatriation] word word")
    assert title.endswith("…")


@pytest.mark.parametrize(
    ("link", "markdown", "expected"),
    [
        ("javascript:alert(1)", True, None),
        ("data:text/html,<script>alert(1)</script>", False, None),
        ("/relative/path", False, None),
        ("https://ex.org/a (b)", True, None),
        (
            "https://ex.org/wiki/A_(b)",
            True,
            r"Link: [https://ex.org/wiki/A\_%28b%29](https://ex.org/wiki/A_%28b%29)",
        ),
        ("https://ex.org/wiki/A_(b)", False, "Link: https://ex.org/wiki/A_(b)"),
    ],
)
def test_only_safe_links_are_shown(link: str, markdown: bool, expected: str | None) -> None:
    """Links other than absolute http(s) are dropped; Markdown links cannot be broken out of."""
    body = render_alert(make_alert(link=link), markdown=markdown).body
    link_lines = [line for line in body.splitlines() if line.startswith("Link:")]
    assert link_lines == ([expected] if expected else [])


# -- escaping -----------------------------------------------------------------

HOSTILE = [
    ("[click](javascript:alert(1))", 'href="javascript'),
    ("<script>alert(1)</script>", "<script"),
    ("**not bold** and more", "<strong>not bold"),
    ("__not either__ and more", "<strong>not either"),
    ("![pixel](https://evil.example/p.png)", "<img"),
    ("`rm -rf`", "<code"),
    ("<https://evil.example>", 'href="https://evil'),
    ("<img src=x onerror=alert(1)>", "<img"),
    ("&lt;b&gt;bold&lt;/b&gt;", "<b>"),
    ("# Breaking", "<h1"),
]


@pytest.mark.parametrize(("hostile", "forbidden"), HOSTILE)
def test_feed_text_cannot_inject_markup(hostile: str, forbidden: str) -> None:
    """Hostile headline, summary and feed-name text stays text once Markdown becomes HTML."""
    summary = f"{hostile} the bodies of soldiers {hostile}"
    alert = make_alert(title=hostile, summary=summary, sources=(Source(hostile, None),))
    html = as_html(render_alert(alert, markdown=True).body)
    assert forbidden not in html
    assert "<strong>bodies</strong>" in html  # our own marks still work


@pytest.mark.parametrize(("hostile", "forbidden"), HOSTILE)
def test_feed_text_survives_escaping_legibly(hostile: str, forbidden: str) -> None:
    """Escaped feed text reads as the feed wrote it once rendered (angle brackets as ‹ ›)."""
    html = as_html(escape_markdown(hostile))
    text = re.sub(r"<[^>]+>", "", html)
    shown = text.replace("&amp;", "&").replace("&quot;", '"')
    assert shown == hostile.replace("<", "‹").replace(">", "›")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain words", "plain words"),
        ("a_b*c", "a\\_b\\*c"),
        ("[x](y)", "\\[x\\](y)"),
        ("<b>", "‹b›"),
        ("# not a heading", "\\# not a heading"),
        ("- not a list", "\\- not a list"),
        ("1. not a list", "1\\. not a list"),
        ("AT&T &amp; co", "AT&T \\&amp; co"),
        ("back\\slash", "back\\\\slash"),
    ],
)
def test_escape_markdown(text: str, expected: str) -> None:
    """Markdown escaping backslash-escapes what would format and defuses angle brackets."""
    assert escape_markdown(text) == expected


def test_markdown_title_cannot_form_a_link() -> None:
    """A Markdown title (merged into bodies by some services) holds no link or tag syntax."""
    title = render_alert(make_alert(title="[x](javascript:alert(1)) <b>"), markdown=True).title
    assert "](" not in title
    assert "<" not in title
    assert ">" not in title


# -- excerpts -----------------------------------------------------------------

LONG = ("Filler words about other things entirely. " * 12) + STORY + (" More filler text." * 12)


@pytest.mark.parametrize(
    ("summary", "title", "hits", "max_chars", "expected"),
    [
        # one hit, short text: the whole summary, the word marked
        ("the bodies of 501", "t", (Hit("summary", 4, 10, "bodies"),), 300, "the «bodies» of 501"),
        # overlapping and touching hits merge into one mark
        (
            "north korean troops",
            "t",
            (Hit("summary", 0, 5, "n"), Hit("summary", 0, 12, "nk"), Hit("summary", 6, 12, "k")),
            300,
            "«north korean» troops",
        ),
        # hits out of range, on content, or empty are ignored
        (
            "the bodies of 501",
            "t",
            (
                Hit("summary", 4, 10, "bodies"),
                Hit("summary", 15, 99, "x"),
                Hit("content", 0, 3, "y"),
                Hit("summary", 5, 5, "z"),
            ),
            300,
            "the «bodies» of 501",
        ),
        # no hit in the summary: cut from the title
        ("no hit", "Drones hit Kyiv", (Hit("title", 0, 6, "drone"),), 300, "«Drones» hit Kyiv"),
        # no hits at all: the start of the summary, unmarked
        ("just a summary", "t", (), 300, "just a summary"),
        # whitespace (newlines, tabs) collapses without shifting marks
        ("the\n\n  bodies\tof", "t", (Hit("summary", 7, 13, "bodies"),), 300, "the «bodies» of"),
        # nothing to show
        ("", "t", (), 300, ""),
    ],
)
def test_excerpt_marks_hits(
    summary: str, title: str, hits: tuple[Hit, ...], max_chars: int, expected: str
) -> None:
    """The excerpt marks exactly the characters the hits point at."""
    alert = make_alert(summary=summary, title=title, hits=hits)
    assert excerpt(alert, markdown=False, max_chars=max_chars) == expected


def test_excerpt_is_cut_around_the_hits() -> None:
    """A long summary is cut to a window around the hits, between words, with ellipses."""
    alert = make_alert(summary=LONG, hits=hits_for(LONG, "bodies", "soldiers"))
    cut = excerpt(alert, markdown=False, max_chars=120)
    assert cut.startswith("…")
    assert cut.endswith("…")
    assert len(cut) <= 120 + 2 + 4  # window, two ellipses, four marks
    assert "«bodies» of 501 «soldiers»" in cut
    inner = cut.strip("…").replace("«", "").replace("»", "")
    assert inner in " ".join(LONG.split())  # cut between words, nothing invented
    assert not inner.startswith(" ")


def test_excerpt_marks_the_right_offsets_in_markdown() -> None:
    """Markdown marks are bold around the hit, feed text around them escaped."""
    summary = "a_b said: the *bodies* of [soldiers]"
    hits = hits_for(summary, "bodies", "soldiers")
    alert = make_alert(summary=summary, hits=hits)
    assert excerpt(alert, markdown=True) == "a\\_b said: the \\***bodies**\\* of \\[**soldiers**\\]"


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        ("bodies - 501. Returned", "**bodies** - 501. Returned"),
        ("- 501 bodies", "\\- 501 **bodies**"),
        ("1. bodies", "1\\. **bodies**"),
        ("# bodies", "\\# **bodies**"),
    ],
)
def test_excerpt_escapes_line_starts_only_at_the_start(summary: str, expected: str) -> None:
    """List and heading markers are escaped where they would act: at the start of the line."""
    alert = make_alert(summary=summary, hits=hits_for(summary, "bodies"))
    assert excerpt(alert, markdown=True) == expected


def test_excerpt_hit_at_window_edge_is_not_cut() -> None:
    """A hit near the end of a long text stays whole and marked inside the window."""
    text = ("x " * 200) + "shahed drones overnight"
    alert = make_alert(summary=text, hits=hits_for(text, "shahed", "drones"))
    cut = excerpt(alert, markdown=False, max_chars=60)
    assert cut.endswith("«shahed» «drones» overnight")
    assert cut.startswith("…")


# -- templates ----------------------------------------------------------------


def test_template_renders_the_alert() -> None:
    """A rule template sees rule, title, link, time, sources, excerpt and terms."""
    template = (
        "{{ rule }}|{{ title }}|{{ link }}|{{ published }}|"
        "{% for s in sources %}{{ s.feed }}={{ s.link }};{% endfor %}|"
        "{{ excerpt }}|{{ terms | join(',') }}"
    )
    alert = make_alert(
        summary="the bodies of 501", hits=(Hit("summary", 4, 10, "bodies"),), terms=("bodies",)
    )
    message = render_alert(alert, markdown=False, template=template)
    assert message.template_error is None
    assert message.body == (
        "war-dead-repatriation|Russia returns bodies of 501 soldiers to Ukraine|"
        "https://apnews.com/article/1|2024-10-18 09:30 UTC|"
        "AP=https://apnews.com/article/1;|the «bodies» of 501|bodies"
    )
    assert message.title.startswith("[war-dead-repatriation] ")


def test_template_values_are_escaped_for_markdown() -> None:
    """In Markdown bodies, template variables carry escaped feed text."""
    alert = make_alert(title="[x](javascript:y) **z**")
    message = render_alert(alert, markdown=True, template="{{ title }}")
    assert message.body == "\\[x\\](javascript:y) \\*\\*z\\*\\*"


@pytest.mark.parametrize(
    ("template", "error_says"),
    [
        ("{{ ''.__class__.__mro__ }}", "unsafe"),
        ("{{ sources.append(1) }}", "unsafe"),
        ("{{ title.__init__.__globals__ }}", "unsafe"),
        ("{{ no_such_variable }}", "undefined"),
        ("{% if %}", "TemplateSyntaxError"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("   {# nothing #}  ", "empty"),
    ],
)
def test_bad_template_falls_back(template: str, error_says: str) -> None:
    """A failing or escaping template yields the default body and says why."""
    alert = make_alert()
    message = render_alert(alert, markdown=True, template=template)
    assert message.body == render_alert(alert, markdown=True).body
    assert message.template_error is not None
    assert error_says in message.template_error


@pytest.mark.parametrize(
    ("template", "ok"), [("{{ title }}", True), ("{% for %}", False), ("{{ x", False)]
)
def test_check_template(template: str, ok: bool) -> None:
    """Template syntax is checkable up front, for configuration validation."""
    assert (check_template(template) is None) is ok


# -- digests and test messages ------------------------------------------------


def test_digest_lists_every_alert() -> None:
    """A digest is one message listing each alert with its sources, time and excerpt."""
    alerts = [
        make_alert(title="First story"),
        make_alert(title="Second story", sources=(Source("AP", None), Source("BBC", None))),
    ]
    message = render_digest(alerts, markdown=False, rule="war-dead-repatriation")
    assert message.title == "[war-dead-repatriation] 2 new alerts"
    blocks = message.body.split("\n\n")
    assert blocks[0].splitlines()[0] == "First story"
    assert blocks[1].splitlines()[:2] == ["Second story", "Sources: AP, BBC · 2024-10-18 09:30 UTC"]
    assert "«bodies»" in blocks[0]


def test_digest_across_rules_names_each_rule_and_caps_length() -> None:
    """Without one rule each entry names its rule; past max_items the rest are counted."""
    alerts = [make_alert(rule=f"rule-{i}", title=f"Story {i}") for i in range(5)]
    message = render_digest(alerts, markdown=True, rule=None, max_items=3)
    assert message.title == "5 new alerts"
    assert "rule rule-2" in message.body
    assert "Story 3" not in message.body
    assert message.body.endswith("… and 2 more")


def test_empty_digest_is_refused() -> None:
    """A digest of nothing is a caller bug, not a message."""
    with pytest.raises(ValueError, match="at least one alert"):
        render_digest([], markdown=False, rule=None)


def test_test_message() -> None:
    """notify-test sends a fixed, harmless message."""
    message = render_test_message()
    assert isinstance(message, RenderedMessage)
    assert message.title == "news-monitor test message"
    assert "news-monitor" in message.body
    assert escape_markdown(message.body) == message.body  # reads the same in both renderings


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://ex.org/a?b=1&c=2#d", "https://ex.org/a?b=1&c=2#d"),
        ("http://ex.org/a<b>", "http://ex.org/a%3Cb%3E"),
        ("HTTPS://ex.org/x", "HTTPS://ex.org/x"),
        ("javascript:alert(1)", None),
        ("https:///nohost", None),
        ("https://ex.org/\x00", None),
        ("", None),
        (None, None),
    ],
)
def test_safe_link(url: str | None, expected: str | None) -> None:
    """Only absolute http(s) links pass, encoded so they cannot end a Markdown link early."""
    assert safe_link(url) == expected
