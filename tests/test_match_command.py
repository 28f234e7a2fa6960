"""`news-monitor match` (SPEC §2): rules or an ad-hoc query over text, a feed file or a URL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from feedserver import FeedServer

ROOT = Path(__file__).resolve().parent.parent
REALFEEDS = ROOT.parent / "shared" / "realfeeds"
needs_realfeeds = pytest.mark.skipif(
    not REALFEEDS.is_dir(), reason="../shared/realfeeds is absent (the captured real feeds)"
)

CONFIG = """\
state: {state}
feeds:
  - url: http://127.0.0.1:9/unused.xml
targets:
  terminal: "console://"
topics:
  ukraine-war: 'ukrain* OR kyiv OR russia*'
rules:
  - name: war-dead-repatriation
    query: '(bodies OR remains) NEAR/8 (soldiers OR troops OR defenders OR "war dead")'
    notify: [terminal]
  - name: north-korean-troops
    query: '("north korean" OR DPRK) NEAR/5 (troops OR soldiers)'
    notify: [terminal]
  - name: drone-barrage
    query: '@ukraine-war AND ((drone* OR shahed* OR UAV*) NEAR/4 (>=100 OR barrage))'
    notify: [terminal]
"""


def news_monitor(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "NEWS_MONITOR_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-m", "monitor", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env=env,
    )


def write_config(tmp_path: Path, text: str = CONFIG) -> Path:
    path = tmp_path / "monitor.yaml"
    path.write_text(text.format(state=tmp_path / "state.db"))
    return path


def test_query_over_text_as_json_names_terms_and_offsets(tmp_path: Path) -> None:
    """`--query --text --json` prints one object per entry with the rule, terms and hit offsets."""
    text = "Russia launched 135 Shahed drones overnight"
    done = news_monitor(
        "match", "--query", "(drone* OR shahed*) NEAR/4 >=100", "--text", text, "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    got = json.loads(lines[0])
    assert got["title"] == "" and got["link"] is None
    [match] = got["matches"]
    assert match["rule"] == "query"
    assert match["terms"] == ["drone*", "shahed*", ">=100"]
    marked = [(h["term"], text[h["start"] : h["end"]]) for h in match["hits"]]
    assert sorted(marked) == [(">=100", "135"), ("drone*", "drones"), ("shahed*", "Shahed")]
    # Nothing was written: match stores no state.
    assert list(tmp_path.iterdir()) == []


def test_text_that_does_not_match_prints_no_match(tmp_path: Path) -> None:
    """A non-matching entry is listed with '-' and counted; exit status stays 0."""
    done = news_monitor("match", "-q", '"north korean troops"', "--text", "troops, North Korean",
                        cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "- troops, North Korean\n0 of 1 entries matched\n"


@needs_realfeeds
def test_configured_rules_over_a_feed_file_show_the_matching_words(tmp_path: Path) -> None:
    """Without --query, every configured rule runs; text output marks the words per field."""
    config = write_config(tmp_path)
    feed = REALFEEDS / "01_npr_news_2024-10-25_nk-troops.xml"
    done = news_monitor("match", "--file", str(feed), "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.endswith("1 of 10 entries matched\n")
    block = out[out.index("* South Korea warns") :]
    assert "https://www.npr.org/2024/10/24/nx-s1-5163246/" in block
    assert "matches north-korean-troops: \"north korean\"='North Korean'@content" in block
    assert not (tmp_path / "state.db").exists()


@needs_realfeeds
def test_url_and_file_give_the_same_json(tmp_path: Path) -> None:
    """`--url` fetches from a server and matches exactly as the same bytes read by `--file`."""
    config = write_config(tmp_path)
    feed = REALFEEDS / "02_npr_news_2024-11-18_kursk.xml"
    with FeedServer() as server:
        server.add("/npr.xml", feed.read_bytes(), content_type="application/rss+xml")
        by_url = news_monitor("match", "--url", server.url("/npr.xml"), "--json",
                              "--config", str(config), cwd=tmp_path)  # fmt: skip
    by_file = news_monitor("match", "--file", str(feed), "--json", "--config", str(config),
                           cwd=tmp_path)  # fmt: skip
    assert by_url.returncode == 0, by_url.stderr
    assert by_url.stdout == by_file.stdout
    rows = [json.loads(line) for line in by_url.stdout.splitlines()]
    assert len(rows) == 10
    matched = {m["rule"] for row in rows for m in row["matches"]}
    assert "north-korean-troops" in matched


def test_ad_hoc_query_may_use_the_configured_topics(tmp_path: Path) -> None:
    """`@topic` in an ad-hoc query resolves against the configuration's topics."""
    config = write_config(tmp_path)
    done = news_monitor("match", "-q", "@ukraine-war AND drone", "--text", "Drones over Kyiv",
                        "--config", str(config), "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["matches"][0]["terms"] == ["kyiv", "drone"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("(drones", "error: rule 'query', column 8: expected ')' to close '(' at column 1"),
        ("drones or missiles", "error: rule 'query', column 8: 'or' is not an operator"),
        ("@nowhere", "error: rule 'query'"),
    ],
)
def test_an_invalid_ad_hoc_query_is_bad_usage(tmp_path: Path, query: str, message: str) -> None:
    """A broken --query exits 2 with the rule, the column and what was expected; no traceback."""
    done = news_monitor("match", "-q", query, "--text", "x", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_a_broken_rule_in_the_configuration_stops_match_with_its_position(tmp_path: Path) -> None:
    """An invalid configured rule is a configuration error at its file position, exit 2."""
    config = write_config(tmp_path, CONFIG.replace("NEAR/5 (troops", "NEAR/5 ((troops"))
    done = news_monitor("match", "--text", "x", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert f"{config}:13:66: rule 'north-korean-troops': expected ')'" in done.stderr
    assert "Traceback" not in done.stderr
