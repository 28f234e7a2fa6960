"""The real `run --once`, `status`, `check` and `migrate` with `state: postgresql://...`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from daemon_proc import Item, rss, run_cli, status_json
from feedserver import FeedServer
from receivers import HTTPReceiver

from monitor.store.postgres_schema import SCHEMA_VERSION


def test_run_once_on_postgresql_alerts_once_and_status_reads_it(
    tmp_path: Path, postgres_url: str
) -> None:
    """New entries alert once through the PostgreSQL store; a second pass sends nothing;
    `status`, `check` and `migrate` use the same database and never print its password."""
    now = datetime.now(UTC)
    items = [Item("1", "Drone strike on Odesa port", "https://news.example/1", now)]
    with FeedServer() as feeds, HTTPReceiver() as hook:
        feeds.add("/news.xml", rss("News", items))
        config = tmp_path / "monitor.yaml"
        config.write_text(
            f"state: '{postgres_url}'\n"
            f"feeds:\n  - {{url: '{feeds.url('/news.xml')}', backfill: true}}\n"
            f"targets:\n  hook: '{hook.json_url()}'\n"
            "rules:\n  - {name: drones, query: drone, notify: [hook]}\n"
        )
        for _ in range(2):
            done = run_cli(config, "run", "--once")
            assert done.returncode == 0, done.stderr
        items.append(Item("2", "Second drone wave", "https://news.example/2", now))
        feeds.add("/news.xml", rss("News", items))
        done = run_cli(config, "run", "--once")
        assert done.returncode == 0, done.stderr
        titles = [json.loads(r.body)["title"] for r in hook.requests]
    assert titles == ["[drones] Drone strike on Odesa port", "[drones] Second drone wave"]
    status = status_json(config)
    [feed] = status["feeds"]
    assert feed["entries_seen"] == 2 and feed["error_streak"] == 0
    assert datetime.fromisoformat(feed["next_due"]) > now + timedelta(minutes=5)
    assert status["pending"] == 0
    password = postgres_url.split(":")[2].split("@")[0]
    assert len(password) >= 8, "the test server has a real password"
    checked = run_cli(config, "check")
    assert checked.returncode == 0, checked.stderr
    assert password not in checked.stdout + checked.stderr
    migrated = run_cli(config, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.startswith("postgresql://monitor@127.0.0.1:")
    assert f": schema version {SCHEMA_VERSION}, up to date; job queue: " in migrated.stdout
    assert password not in migrated.stdout + migrated.stderr
