"""``news-monitor match``: dry-run rules against a feed URL, a feed file or text.

Nothing is stored and nothing is sent (SPEC §2).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from monitor.commands.common import config_path, load, on_terminal
from monitor.commands.progress import with_spinner
from monitor.errors import ConfigError, FeedError
from monitor.fetch import Fetcher
from monitor.match import Matcher, compile_matcher
from monitor.model import Entry, ParsedFeed, RuleMatch
from monitor.parse import parse_feed
from monitor.pipeline import USER_AGENT
from monitor.text import html_to_text


def cmd_match(args: argparse.Namespace) -> int:
    """Show which rules (or the ``--query``) match each entry, and the words that did it."""
    matcher = _matcher(args)
    entries = _entries(args)
    matched = 0
    for entry in entries:
        matches = matcher.match(entry)
        matched += bool(matches)
        if args.json:
            print(json.dumps(_as_json(entry, matches), ensure_ascii=False))
        else:
            print(_as_text(entry, matches))
    if not args.json:
        print(f"{matched} of {len(entries)} entries matched")
    return 0


def _matcher(args: argparse.Namespace) -> Matcher:
    from monitor.query import compile_rules

    if args.query is None:
        return compile_matcher(load(args))
    topics: dict[str, str] = {}
    # An ad-hoc query may use @topics when a configuration is at hand; it is not required.
    if args.config or config_path(args).exists():
        try:
            topics = dict(load(args).topics)
        except ConfigError:
            if args.config:
                raise
    return compile_rules({"query": args.query}, topics)


def _entries(args: argparse.Namespace) -> list[Entry]:
    if args.text is not None:
        text = html_to_text(args.text)
        return [Entry(id="text", title="", summary=text, content="", link=None, published=None)]
    parsed = _from_file(Path(args.file)) if args.file else asyncio.run(_fetch_parse(args.url))
    for warning in parsed.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return list(parsed.entries)


def _from_file(path: Path) -> ParsedFeed:
    try:
        body = path.read_bytes()
    except OSError as exc:
        raise FeedError(f"cannot read {path}: {exc.strerror}") from exc
    return parse_feed(body, {}, path.resolve().as_uri())


async def _fetch_parse(url: str) -> ParsedFeed:
    # A slow feed shows a spinner on a terminal, and nothing when piped (SPEC §2).
    if on_terminal():
        return await with_spinner(f"fetching {url}", _from_url(url))
    return await _from_url(url)


async def _from_url(url: str) -> ParsedFeed:
    async with Fetcher(user_agent=USER_AGENT, timeout=30.0, max_size=10 * 1024 * 1024) as fetcher:
        fetched = await fetcher.fetch(url)
    return parse_feed(fetched.body, dict(fetched.headers), fetched.url)


def _matched_words(entry: Entry, match: RuleMatch) -> list[str]:
    words = []
    for hit in match.hits:
        text = getattr(entry, hit.field, "")
        words.append(f"{hit.term}={text[hit.start : hit.end]!r}@{hit.field}")
    return words


def _as_text(entry: Entry, matches: tuple[RuleMatch, ...]) -> str:
    head = entry.title or (entry.summary[:80] + ("…" if len(entry.summary) > 80 else ""))
    lines = [f"{'*' if matches else '-'} {head}"]
    if entry.link:
        lines.append(f"    {entry.link}")
    for match in matches:
        lines.append(f"    matches {match.rule}: {', '.join(_matched_words(entry, match))}")
    return "\n".join(lines)


def _as_json(entry: Entry, matches: tuple[RuleMatch, ...]) -> dict[str, object]:
    return {
        "title": entry.title,
        "link": entry.link,
        "matches": [
            {
                "rule": m.rule,
                "terms": list(m.terms),
                "hits": [
                    {"field": h.field, "start": h.start, "end": h.end, "term": h.term}
                    for h in m.hits
                ],
            }
            for m in matches
        ],
    }
