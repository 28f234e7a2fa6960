"""SPEC §5 "no duplicate alert" and "no flood", through the real ``news-monitor run --once``.

Each poll is one subprocess run (as cron would run it) against a local feed
server, with real receivers: ``json://`` over HTTP and ``mailto://`` to aiosmtpd.
``run --once`` polls every feed before it delivers, so a story carried by five
feeds in one poll is one alert listing five sources.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon_proc import Item, rss, run_cli, status_json
from feedserver import FeedServer
from receivers import HTTPReceiver, SMTPReceiver

NOW = datetime.now(UTC)
STORY = "Drone barrage hits Odesa port as grain ships wait offshore"
FEEDS = ["Alpha Wire", "Bravo News", "Charlie Daily", "Delta Post", "Echo Times"]


def slug(name: str) -> str:
    """The feed's path on the test server."""
    return "/" + name.lower().replace(" ", "-") + ".xml"


def write_config(
    path: Path, feeds: FeedServer, names: list[str], targets: str, notify: str = "[hook, mail]"
) -> None:
    """A configuration polling ``names`` on ``feeds``; both rules alert ``notify``."""
    listed = "".join(f"  - url: {feeds.url(slug(n))}\n    name: {n}\n" for n in names)
    path.write_text(
        f"""
state: {path.parent / "state.db"}
poll: {{interval: 10m, timeout: 5s}}
feeds:
{listed}
targets:
{targets}
rules:
  - name: drones
    query: drone
    notify: {notify}
  - name: ports
    query: port OR harbour
    notify: {notify}
"""
    )


def once(config: Path) -> None:
    """One ``run --once``, which must succeed."""
    done = run_cli(config, "run", "--once")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr


def hook_titles(hook: HTTPReceiver) -> list[str]:
    """The titles of the messages the JSON hook received, sorted."""
    return sorted(json.loads(r.body)["title"] for r in hook.requests)


def sources(state: Path) -> dict[str, list[str]]:
    """Each alert's recorded source feeds, by rule (read straight from the state file)."""
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT a.rule, s.feed FROM alert_sources s JOIN alerts a ON a.id = s.alert_id"
            " ORDER BY s.id"
        ).fetchall()
    out: dict[str, list[str]] = {}
    for rule, feed in rows:
        out.setdefault(rule, []).append(feed)
    return {rule: sorted(feeds) for rule, feeds in out.items()}


def baseline(name: str) -> Item:
    """An unrelated entry each feed carries from the start (its silent first fetch)."""
    return Item(f"{name}-base", f"Local council meets about {name} budget", None, NOW)


def test_story_in_five_feeds_alerts_once_per_rule_and_target_listing_five_sources(
    tmp_path: Path,
) -> None:
    """One story syndicated into five feeds (new guids; the same link with different tracking
    parameters, or the same headline on other sites) is one alert per rule and target naming
    all five feeds; a sixth feed carrying it later is recorded as a source, not re-alerted."""
    links = [
        "https://www.wire.example/2026/odesa-port?utm_source=rss&utm_medium=feed",
        "http://wire.example/2026/odesa-port/?utm_campaign=partner",
        "https://wire.example/2026/odesa-port#top",
        "https://delta.example/world/odesa-drone-barrage",  # same headline, other site
        "https://echo.example/a/83121?ocid=rss",
    ]
    late = "Foxtrot Herald"
    with FeedServer() as feeds, HTTPReceiver() as hook, SMTPReceiver() as smtp:
        for name in [*FEEDS, late]:
            feeds.add(slug(name), rss(name, [baseline(name)]))
        config = tmp_path / "monitor.yaml"
        targets = f'  hook: "{hook.json_url()}"\n  mail: "{smtp.mailto_url()}"\n'
        write_config(config, feeds, [*FEEDS, late], targets)
        once(config)  # first fetch of every feed: recorded, silent
        assert hook.requests == [] and smtp.mails == []

        for n, (name, link) in enumerate(zip(FEEDS, links, strict=True)):
            story = Item(f"{name}-{n}-odesa", STORY, link, NOW - timedelta(minutes=n))
            feeds.add(slug(name), rss(name, [story, baseline(name)]))
        once(config)
        expected = sorted(f"[{rule}] {STORY}" for rule in ("drones", "ports"))
        assert hook_titles(hook) == expected
        assert sorted(m.subject for m in smtp.mails) == expected
        bodies = [json.loads(r.body)["message"] for r in hook.requests]
        bodies += [m.text for m in smtp.mails]
        for body in bodies:
            assert all(name in body for name in FEEDS), body
        assert sources(tmp_path / "state.db") == {"drones": FEEDS, "ports": FEEDS}

        # The story reaches a sixth feed after the alerts went out: a source, not an alert.
        story = Item("foxtrot-odesa", STORY, "https://foxtrot.example/odesa", NOW)
        feeds.add(slug(late), rss(late, [story, baseline(late)]))
        once(config)
        assert hook_titles(hook) == expected
        assert len(smtp.mails) == len(expected)
        both = sorted([*FEEDS, late])
        assert sources(tmp_path / "state.db") == {"drones": both, "ports": both}


def test_guid_churn_produces_no_new_alerts(tmp_path: Path) -> None:
    """A feed re-issuing every entry under new guids (and tracking-tagged links) alerts nothing
    new, whether its entries alerted before or were recorded silently on its first fetch."""
    headlines = [
        "Drone strike damages power station in the north",
        "Harbour cranes idle after overnight drone attack",
        "Drone makers court investors at the capital fair",
    ]

    def items(prefix: str, site: str, utm: str = "") -> list[Item]:
        # Each feed its own stories (headlines differ by site), so the two cases stay apart.
        return [
            Item(
                f"{prefix}-{n}",
                f"{t} ({site.removeprefix('www.')})",
                f"https://{site}/story/{n}{utm}",
                NOW - timedelta(hours=n),
            )
            for n, t in enumerate(headlines)
        ]

    with FeedServer() as feeds, HTTPReceiver() as hook:
        feeds.add(slug("Alpha Wire"), rss("Alpha Wire", [baseline("Alpha Wire")]))
        # Bravo carries its stories from its first fetch, so they are recorded silently.
        feeds.add(slug("Bravo News"), rss("Bravo News", items("b1", "bravo.example")))
        config = tmp_path / "monitor.yaml"
        targets = f'  hook: "{hook.json_url()}"\n'
        write_config(config, feeds, ["Alpha Wire", "Bravo News"], targets, "[hook]")
        once(config)
        assert hook.requests == []

        feeds.add(slug("Alpha Wire"), rss("Alpha Wire", items("a1", "www.alpha.example")))
        once(config)
        first = hook_titles(hook)
        # Four alerts: three drone stories, and the harbour one for the ports rule.
        assert len(first) == 4 and all("(alpha.example)" in t for t in first)

        # Both feeds re-issue everything: new guids, tracking parameters, another scheme.
        feeds.add(
            slug("Alpha Wire"),
            rss("Alpha Wire", items("a2", "alpha.example", "?utm_source=rss&utm_medium=x")),
        )
        feeds.add(slug("Bravo News"), rss("Bravo News", items("b2", "bravo.example", "?ref=rss")))
        once(config)
        assert hook_titles(hook) == first
        seen = {f["title"]: f["entries_seen"] for f in status_json(config)["feeds"]}
        assert seen == {"Alpha Wire": 7, "Bravo News": 6}  # recorded, just not alerted


def test_first_fetch_of_500_entries_is_silent_unless_backfilled_within_the_rate_limit(
    tmp_path: Path,
) -> None:
    """A new 500-entry feed sends nothing; a backfilled one sends its matches, no faster than
    the target's rate_limit allows (the rest stays pending for later)."""

    def entries(feed: str) -> list[Item]:
        return [
            Item(
                f"{feed}-{n}",
                f"Drone report {n} from the {feed} desk",
                f"https://{feed}.example/{n}",
                NOW - timedelta(minutes=n),
            )
            for n in range(500)
        ]

    with FeedServer() as feeds, HTTPReceiver() as hook:
        feeds.add(slug("Quiet"), rss("Quiet", entries("quiet")))
        feeds.add(slug("Backfill"), rss("Backfill", entries("backfill")))
        config = tmp_path / "monitor.yaml"
        targets = f'  hook: {{urls: "{hook.json_url()}", rate_limit: 120/min}}\n'
        config.write_text(
            f"""
state: {tmp_path / "state.db"}
poll: {{interval: 10m, timeout: 5s}}
feeds:
  - url: {feeds.url(slug("Quiet"))}
    name: Quiet
  - url: {feeds.url(slug("Backfill"))}
    name: Backfill
    backfill: true
targets:
{targets}
rules:
  - name: drones
    query: drone
    notify: [hook]
"""
        )
        once(config)
        titles = hook_titles(hook)
        assert len(titles) == 120  # the rate limit's worth, then the target waits
        assert all("from the backfill desk" in t for t in titles)
        report = status_json(config)
        assert report["pending"] == 500 - 120 and report["failed"] == 0
        seen = {f["title"]: f["entries_seen"] for f in report["feeds"]}
        assert seen == {"Quiet": 500, "Backfill": 500}


def test_republished_archive_does_not_flood(tmp_path: Path) -> None:
    """A feed that suddenly republishes 200 dated archive entries alerts only its one new entry,
    including archive entries young enough to pass max_age."""
    recent = [
        Item(f"r{n}", f"Drone update {n} from the front", f"https://a.example/r/{n}", NOW)
        for n in range(10)
    ]
    archive = [
        Item(
            f"archive-{n}",
            f"Drone archive story {n} about the long war",
            f"https://a.example/archive/{n}",
            NOW - timedelta(hours=26) - timedelta(minutes=15 * n),  # 26 h to 76 h old
        )
        for n in range(200)
    ]
    fresh = Item("fresh", "Drone strike reported minutes ago", "https://a.example/fresh", NOW)
    with FeedServer() as feeds, HTTPReceiver() as hook:
        feeds.add(slug("Alpha Wire"), rss("Alpha Wire", recent))
        config = tmp_path / "monitor.yaml"
        write_config(config, feeds, ["Alpha Wire"], f'  hook: "{hook.json_url()}"\n', "[hook]")
        once(config)
        feeds.add(slug("Alpha Wire"), rss("Alpha Wire", [fresh, *recent, *archive]))
        once(config)
        assert hook_titles(hook) == ["[drones] Drone strike reported minutes ago"]
        assert [f["entries_seen"] for f in status_json(config)["feeds"]] == [211]
