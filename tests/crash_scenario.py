"""The crash scenario behind ``tests/test_guarantees_crash_*.py`` (SPEC §5 under SIGKILL).

:func:`run_crash_scenario` starts ``news-monitor run`` against feeds that keep
gaining entries, kills its whole process group (daemon and parse pool) after
a seeded random delay, and starts it again, ``profile.kills`` times; the last
run stops cleanly once the outbox is empty. The alerts received must then be
exactly the expected set, and every repeated message must be explained by
one kill: SPEC §5's only repeat window is a crash between a target accepting
a message and the store recording it.

A repeat is attributed to the kill that ended the run in which its previous
copy arrived. One target's messages go out one at a time, so a kill leaves at
most one in flight per target; with ``delivery.workers: 1`` at most one in
all. Each kill is classified by what the daemon was doing: a feed response
being served ("fetching"), messages arriving with deliveries still pending
after the kill ("delivering"), else "matching or idle".
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from daemon_proc import DaemonProcess, Item, rss, wait_until
from feedserver import FeedServer
from receivers import HTTPReceiver

from monitor.store.sqlite import SQLiteStore


@dataclass(frozen=True, slots=True)
class Profile:
    """Where the kills should land, and how many."""

    name: str
    seed: int
    kills: int
    feeds: int
    feed_delay: tuple[float, float]  # seconds each feed response is held
    reply_delay: float  # seconds each receiver reply is held
    new_entries: tuple[int, int]  # entries added before each run
    kill_after: tuple[float, float]  # seconds after daemon.started
    workers: int  # delivery.workers: parallel targets


@dataclass
class LiveFeeds:
    """Feeds whose items the test appends to while the daemon polls them."""

    server: FeedServer
    rng: random.Random
    delay: tuple[float, float]
    items: dict[str, list[Item]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    in_flight: int = 0
    serial: int = 0

    def add_feed(self, path: str) -> None:
        """Serve ``path`` (empty at first), holding each response for a fixed seeded delay."""
        hold = self.rng.uniform(*self.delay)
        self.items[path] = []

        def handle(request: BaseHTTPRequestHandler) -> None:
            with self.lock:
                self.in_flight += 1
                body = rss(path, list(reversed(self.items[path])))
            try:
                time.sleep(hold)
                request.send_response(200)
                request.send_header("Content-Type", "application/rss+xml")
                request.send_header("Content-Length", str(len(body)))
                request.end_headers()
                request.wfile.write(body)
            finally:
                with self.lock:
                    self.in_flight -= 1

        self.server.add_handler(path, handle)

    def add_entry(self, path: str, matching: bool) -> str:
        """Append a new entry to ``path``; return its headline."""
        with self.lock:
            self.serial += 1
            n = self.serial
            feed = path.strip("/").removesuffix(".xml")
            title = (
                f"Drone sighting number {n} reported near {feed}"
                if matching
                else f"Weather outlook number {n} for {feed}"
            )
            self.items[path].append(
                Item(f"{feed}-{n}", title, f"https://news.example/{feed}/{n}", datetime.now(UTC))
            )
        return title

    def busy(self) -> bool:
        """Whether a fetch is being answered right now."""
        with self.lock:
            return self.in_flight > 0


def titles_by_target(receivers: dict[str, HTTPReceiver]) -> list[tuple[str, str]]:
    """Every complete message received, as (target, title), in arrival order per target."""
    out = []
    for target, receiver in receivers.items():
        for request in receiver.requests:
            try:
                out.append((target, json.loads(request.body)["title"]))
            except (ValueError, KeyError, TypeError):
                continue  # a request cut off by the kill: nothing was delivered
    return out


def run_crash_scenario(tmp_path: Path, daemon: DaemonProcess, profile: Profile) -> int:
    """Kill and restart the daemon ``profile.kills`` times, then check SPEC §5; return repeats.

    Fails (AssertionError) when an expected alert is missing or unexpected, when a
    message arrives twice within one run, when one kill explains more than one repeat
    per target (or in all, with ``workers: 1``), or when too few kills landed in the
    stage the profile aims at.
    """
    rng = random.Random(profile.seed)
    with FeedServer() as server, HTTPReceiver() as hook, HTTPReceiver() as desk:
        for receiver in (hook, desk):
            receiver.respond_with(200, body=b"ok", delay=profile.reply_delay)
        live = LiveFeeds(server, random.Random(profile.seed + 1), profile.feed_delay)
        paths = [f"/feed{n}.xml" for n in range(profile.feeds)]
        for path in paths:
            live.add_feed(path)
        feeds_yaml = "".join(f"  - url: {server.url(path)}\n    backfill: true\n" for path in paths)
        daemon.config.write_text(
            f"""
state: {tmp_path / "state.db"}
poll: {{interval: 1s, timeout: 5s, jitter: 0}}
delivery: {{retry_initial: 1s, retry_max: 2s, workers: {profile.workers}}}
feeds:
{feeds_yaml}
targets:
  hook: "{hook.json_url("/hook")}"
  desk: "{desk.json_url("/desk")}"
rules:
  - name: drones
    query: drone
    notify: [hook, desk]
"""
        )
        receivers = {"hook": hook, "desk": desk}
        expected: set[str] = set()
        epochs: list[Counter[str]] = []  # messages per target received by the end of each run
        phases: Counter[str] = Counter()
        store_path = str(tmp_path / "state.db")
        for _ in range(profile.kills):
            for _ in range(rng.randint(*profile.new_entries)):
                matching = rng.random() < 0.7
                title = live.add_entry(rng.choice(paths), matching)
                if matching:
                    expected.add(f"[drones] {title}")
            before = len(titles_by_target(receivers))
            daemon.start()
            daemon.wait_started()
            time.sleep(rng.uniform(*profile.kill_after))
            fetching = live.busy()
            daemon.kill()
            time.sleep(0.05)  # let the receivers finish reading what was sent before the kill
            received = titles_by_target(receivers)
            epochs.append(Counter(target for target, _ in received))
            with SQLiteStore(store_path) as store:
                pending = store.status(recent=0).pending
            if fetching:
                phases["fetching"] += 1
            elif len(received) > before and pending:
                phases["delivering"] += 1
            else:
                phases["matching or idle"] += 1

        # The last run is allowed to finish: everything owed must arrive, then it stops cleanly.
        daemon.start()
        daemon.wait_started()  # SIGTERM before the handlers are installed would just kill it
        wanted = {(target, title) for target in receivers for title in expected}

        def settled() -> bool:
            if not wanted <= set(titles_by_target(receivers)):
                return False
            with SQLiteStore(store_path) as store:
                return store.status(recent=0).pending == 0

        wait_until(settled, 30, "every expected alert and an empty outbox")
        assert daemon.stop() == 0, daemon.run_log()
        received = titles_by_target(receivers)

    # Nothing missing, nothing unexpected.
    assert set(received) == wanted
    # Every repeat is explained by one kill: at most one per target per kill, and with a
    # single delivery worker at most one per kill.
    last_epoch: dict[tuple[str, str], int] = {}
    blamed: Counter[tuple[int, str]] = Counter()
    index: Counter[str] = Counter()  # position of each message among its target's messages
    for message in received:
        target = message[0]
        epoch = next(
            (e for e, counts in enumerate(epochs) if index[target] < counts[target]), len(epochs)
        )
        index[target] += 1
        previous = last_epoch.get(message)
        if previous is not None:
            assert epoch > previous, f"{message} arrived twice in one run (no crash between)"
            blamed[(previous, target)] += 1
        last_epoch[message] = epoch
    repeats = sum(blamed.values())
    print(
        f"\n[{profile.name}] kills={profile.kills} alerts={len(wanted)} repeats={repeats} "
        f"kill phases={dict(phases)}"
    )
    assert all(count == 1 for count in blamed.values()), blamed
    if profile.workers == 1:
        per_kill = Counter(kill for kill, _ in blamed.elements())
        assert all(count == 1 for count in per_kill.values()), per_kill
    assert repeats <= profile.kills * len(receivers)
    # The kills landed where this profile aims them (otherwise the test proves little).
    assert phases[profile.name] >= profile.kills // 5, phases
    return repeats
