"""Polling cost of the real daemon against a local farm of 2,000 feeds (issue 5).

A feed farm runs in its own process (a ``ThreadingHTTPServer``): 2,000 feeds
of 50 realistic news entries each, even feeds RSS 2.0 and odd ones Atom,
half of them (``i % 4 < 2``) with ``ETag`` and ``Last-Modified`` (so 304s
are possible), half without (so only the stored body hash saves a parse).
It counts 200 and 304 answers.

``python -m monitor run --once`` then runs as a subprocess, state in a
temporary directory, three times:

1. **cold**: every feed is new: fetched, parsed and recorded;
2. **unchanged**: nothing changed: 304s, or same-body-hash skips;
3. **5% new**: one feed in twenty gained one entry.

Each line gives wall time, CPU time (user + system of the daemon and its
fork server and parse workers, read from ``/proc`` while they run), the daemon's
peak RSS, and the largest memory of all its processes together at one moment
(the sum of their proportional set sizes, so shared pages count once).

Before the first cycle the package is byte-compiled, as an installed package
is (``pip install`` compiles it; an editable checkout under
``PYTHONDONTWRITEBYTECODE`` would compile every module on every run).

Then a naive baseline on the same farm: sequential ``httpx.get`` +
``feedparser.parse`` (its defaults: sanitising on), no caching, in this
process; printed with the ratio to the cold cycle.

Run: ``.venv/bin/python benchmarks/poll_bench.py`` (about four minutes;
``--feeds 200`` for a smoke run, ``--runs 3`` for medians).
"""

from __future__ import annotations

import argparse
import compileall
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
ENTRIES = 50
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# -- realistic news entries --------------------------------------------------------

_SUBJECTS = (
    "Parliament", "The central bank", "Regulators", "Rescue teams", "Health officials",
    "The prime minister", "Investors", "Farmers", "Scientists", "The court", "Union leaders",
    "Firefighters", "The European Commission", "Voters", "Tech giants", "Oil producers",
)  # fmt: skip
_VERBS = (
    "approves", "rejects", "delays", "warns over", "investigates", "announces", "cuts",
    "expands", "debates", "suspends", "backs", "challenges", "reviews", "unveils",
)  # fmt: skip
_OBJECTS = (
    "new climate targets", "interest rate rise", "flood defences", "vaccine rollout",
    "budget plan", "trade deal", "pension reform", "data privacy rules", "wildfire response",
    "election timetable", "energy price cap", "rail strike talks", "housing bill",
    "chip export controls", "drought relief", "ceasefire proposal",
)  # fmt: skip
_PLACES = (
    "in Berlin", "in Nairobi", "after talks in Geneva", "in São Paulo", "across the region",
    "in Kyiv", "in Jakarta", "in Ottawa", "amid protests in Paris", "in Seoul", "in Lagos",
)  # fmt: skip
_FILLER = (
    "Officials said the decision followed months of negotiations and would take effect "
    "next year. Critics argued the measure does not go far enough, while supporters "
    "pointed to independent estimates of its cost. Further details are expected on Monday."
)


def headline(rng: random.Random) -> str:
    """One news-like headline."""
    return (
        f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_PLACES)}"
    )


@dataclass(frozen=True, slots=True)
class Story:
    """One entry of a farm feed."""

    uid: str
    title: str
    link: str
    published: datetime
    summary: str


def story(feed: int, n: int, when: datetime, rng: random.Random) -> Story:
    """Entry ``n`` of feed ``feed``, published at ``when``."""
    title = headline(rng)
    words = _FILLER.split()
    rng.shuffle(words)
    summary = f"{title}. {' '.join(words[:40])} <b>Read more</b> &amp; share."
    return Story(
        uid=f"urn:farm:{feed}:{n}",
        title=title,
        link=f"https://news{feed % 97}.example/{when:%Y/%m/%d}/story-{feed}-{n}",
        published=when,
        summary=summary,
    )


def render(feed: int, stories: list[Story]) -> bytes:
    """Feed ``feed`` as RSS 2.0 (even) or Atom (odd), newest first."""
    if feed % 2 == 0:
        items = "".join(
            f"<item><title>{escape(s.title)}</title><link>{s.link}</link>"
            f'<guid isPermaLink="false">{s.uid}</guid>'
            f"<pubDate>{format_datetime(s.published, usegmt=True)}</pubDate>"
            f"<description>{escape(s.summary)}</description>"
            f"<category>World</category></item>"
            for s in stories
        )
        return (
            '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel>'
            f"<title>Farm feed {feed}</title><link>https://news{feed % 97}.example/</link>"
            f"<description>News from feed {feed}</description>{items}</channel></rss>"
        ).encode()
    entries = "".join(
        f'<entry><title>{escape(s.title)}</title><link href="{s.link}"/>'
        f"<id>{s.uid}</id><updated>{s.published.isoformat()}</updated>"
        f'<summary type="html">{escape(s.summary)}</summary>'
        f"<author><name>Desk {feed % 7}</name></author></entry>"
        for s in stories
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        f"<title>Farm feed {feed}</title><id>urn:farm:{feed}</id>"
        f"<updated>{stories[0].published.isoformat()}</updated>{entries}</feed>"
    ).encode()


# -- the farm ------------------------------------------------------------------------


class Farm:
    """Every feed's entries, body and validators; thread-safe enough for one writer."""

    def __init__(self, feeds: int) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)
        self.rng = random.Random(5)
        self.stories: list[list[Story]] = []
        self.bodies: list[tuple[bytes, str | None, str | None]] = []
        self.counts = {"200": 0, "304": 0, "other": 0}
        self.lock = threading.Lock()
        for feed in range(feeds):
            stories = [
                story(feed, n, self.now - timedelta(minutes=30 * (ENTRIES - n)), self.rng)
                for n in range(ENTRIES)
            ][::-1]
            self.stories.append(stories)
            self.bodies.append(self._body(feed, 0))

    def _body(self, feed: int, version: int) -> tuple[bytes, str | None, str | None]:
        body = render(feed, self.stories[feed])
        if feed % 4 >= 2:
            return body, None, None
        modified = format_datetime(self.stories[feed][0].published, usegmt=True)
        return body, f'"f{feed}v{version}"', modified

    def bump(self, every: int) -> int:
        """Give every ``every``-th feed one new entry (dropping its oldest); return how many."""
        bumped = 0
        for feed in range(0, len(self.stories), every):
            stories = self.stories[feed]
            when = datetime.now(UTC).replace(microsecond=0)
            fresh = story(feed, 1000 + len(stories), when, self.rng)
            self.stories[feed] = [fresh, *stories[:-1]]
            self.bodies[feed] = self._body(feed, int(time.time() * 1000))
            bumped += 1
        return bumped


def _handler(farm: Farm) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without this, Nagle's algorithm and
        # delayed ACKs add 40 ms to every answer.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, code: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(code)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            if self.path.startswith("/bump/"):
                bumped = farm.bump(int(self.path.rsplit("/", 1)[1]))
                self._send(200, str(bumped).encode(), {})
            elif self.path == "/reset":
                with farm.lock:
                    farm.counts = dict.fromkeys(farm.counts, 0)
                self._send(200, b"0", {})
            else:  # the alert target
                self._send(200, b"ok", {})

        def do_GET(self) -> None:
            if self.path == "/stats":
                self._send(200, json.dumps(farm.counts).encode(), {})
                return
            try:
                feed = int(self.path.removeprefix("/feed/").removesuffix(".xml"))
                body, etag, modified = farm.bodies[feed]
            except (ValueError, IndexError):
                self._send(404, b"", {})
                return
            headers = {
                "Content-Type": "application/rss+xml" if feed % 2 == 0 else "application/atom+xml"
            }
            if etag and modified:
                headers |= {"ETag": etag, "Last-Modified": modified}
                match = self.headers.get("If-None-Match")
                if match == etag or (
                    match is None and self.headers.get("If-Modified-Since") == modified
                ):
                    with farm.lock:
                        farm.counts["304"] += 1
                    self._send(304, b"", headers)
                    return
            with farm.lock:
                farm.counts["200"] += 1
            self._send(200, body, headers)

    return Handler


class _FarmServer(ThreadingHTTPServer):
    daemon_threads = True
    # Set before listen(): with the default backlog of 5, connections past it are
    # dropped after the handshake and the client sees a read timeout.
    request_queue_size = 1024

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up early are not news


def serve_farm(feeds: int, ready: Any) -> None:
    """The farm process: build every feed, then serve until killed."""
    farm = Farm(feeds)
    server = _FarmServer(("127.0.0.1", 0), _handler(farm))
    ready.send(server.server_address[1])
    server.serve_forever()


# -- measuring the daemon ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cycle:
    """One measured run of a command."""

    wall: float
    cpu: float
    rss_daemon: float  # MB
    rss_group: float  # MB, the largest sum of PSS over the daemon and its workers at one sample
    code: int


def _cpu(pid: int) -> float | None:
    """CPU seconds (user + system) of a live process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state ppid pgrp ... utime(12) stime(13).
    return (int(fields[11]) + int(fields[12])) / TICKS


def _pss(pid: int) -> float:
    """Proportional set size of a live process, MB (0 once it is gone).

    PSS rather than RSS: the workers are forks of one server that imported
    their modules, and summing RSS would count those shared pages once per
    process.
    """
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_bytes()
    except OSError:
        return 0.0
    _, found, rest = rollup.partition(b"\nPss:")
    return int(rest.split(None, 1)[0]) / 1024 if found else 0.0


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (parse workers sit under a fork server).

    Read from each process's ``children`` lists rather than by scanning all of
    /proc: on two cores a full scan every 20 ms took a tenth of a core from
    the daemon being measured.
    """
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            tasks = list(Path(f"/proc/{current}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                todo.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                continue
    return found


def measure(command: list[str]) -> tuple[Cycle, str]:
    """Run ``command``, sampling it and its descendants every 20 ms."""
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        child = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=log, start_new_session=True)
        cpu: dict[int, float] = {}
        peak_group = 0.0
        samples = 0
        while child.poll() is None:
            members = _descendants(child.pid)
            for pid in members:
                seconds = _cpu(pid)
                if seconds is not None:
                    cpu[pid] = seconds
            # smaps_rollup makes the kernel walk every mapping: read it at 5 Hz, not 50.
            if samples % 10 == 0:
                peak_group = max(peak_group, sum(_pss(pid) for pid in members))
            samples += 1
            time.sleep(0.02)
        wall = time.perf_counter() - started
        # CPU is the last sample of each process (workers included), so up to 20 ms
        # per process is missed: noise next to whole seconds.
        log.seek(0)
        output = log.read().decode("utf-8", "replace")
    rss_daemon = _peak_rss_of(output)
    return Cycle(wall, sum(cpu.values()), rss_daemon, peak_group, child.returncode), output


def _peak_rss_of(output: str) -> float:
    for line in output.splitlines():
        if line.startswith("BENCH-MAXRSS "):
            return int(line.split()[1]) / 1024
    return float("nan")


def write_config(state: Path, port: int, feeds: int) -> Path:
    """A configuration polling every farm feed, with two rules and a target on the farm."""
    base = f"http://127.0.0.1:{port}"
    lines = [
        f"state: {state / 'state.db'}",
        "log_level: warning",
        "poll: {interval: 10m, timeout: 20s, concurrency: 64, per_host: 64}",
        "targets:",
        f'  hook: "json://127.0.0.1:{port}/hook"',
        "rules:",
        "  - name: rates",
        '    query: \'"interest rate" OR "central bank"\'',
        "    notify: [hook]",
        "  - name: fires",
        "    query: wildfire* OR drought",
        "    notify: [hook]",
        "feeds:",
    ]
    lines += [f"  - url: {base}/feed/{i}.xml" for i in range(feeds)]
    path = state / "monitor.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


_WRAPPER = (
    "import resource, runpy, sys\n"
    "sys.argv = ['monitor', *sys.argv[1:]]\n"
    "try:\n"
    "    runpy.run_module('monitor', run_name='__main__')\n"
    "finally:\n"
    "    print('BENCH-MAXRSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,"
    " file=sys.stderr)\n"
)


def run_once(config: Path) -> tuple[Cycle, str]:
    """``python -m monitor run --once``, reporting its own peak RSS at exit."""
    return measure([sys.executable, "-c", _WRAPPER, "run", "--once", "--config", str(config)])


def farm_call(port: int, method: str, path: str) -> Any:
    """Ask the farm something (stats, bump, reset)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", method=method, data=b"" if method == "POST" else None
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def baseline(port: int, feeds: int) -> tuple[float, float, int]:
    """Sequential httpx GET + feedparser.parse of every feed: wall, CPU, entries."""
    import feedparser
    import httpx

    started, cpu = time.perf_counter(), time.process_time()
    entries = 0
    with httpx.Client() as client:
        for i in range(feeds):
            answer = client.get(f"http://127.0.0.1:{port}/feed/{i}.xml")
            entries += len(feedparser.parse(answer.content).entries)
    return time.perf_counter() - started, time.process_time() - cpu, entries


def main() -> None:
    """Start the farm, run the three cycles (``--runs`` times), the baseline, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=1, help="repeat the three cycles; medians")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="instead: the cold cycle on PostgreSQL with 1..N workers (benchmarks/poll_workers.py)",
    )
    parser.add_argument(
        "--pg-stats",
        type=int,
        default=0,
        metavar="N",
        help="with --workers: print the N statements of largest total time (pg_stat_statements)",
    )
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "monitor", quiet=1)

    receive, send = multiprocessing.Pipe(duplex=False)
    farm = multiprocessing.get_context("spawn").Process(
        target=serve_farm, args=(args.feeds, send), daemon=True
    )
    farm.start()
    port = receive.recv()
    if args.workers:
        from poll_workers import main_workers

        try:
            main_workers(args, port)
        finally:
            farm.kill()
        return
    names = ("cold", "unchanged", "5% new")
    results: dict[str, list[Cycle]] = {name: [] for name in names}
    not_modified: dict[str, list[int]] = {name: [] for name in names}
    try:
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as tmp:
                config = write_config(Path(tmp), port, args.feeds)
                for name in names:
                    if name == "5% new":
                        farm_call(port, "POST", "/bump/20")
                    farm_call(port, "POST", "/reset")
                    cycle, output = run_once(config)
                    if cycle.code != 0:
                        sys.exit(f"{name}: run --once exited {cycle.code}:\n{output[-3000:]}")
                    results[name].append(cycle)
                    not_modified[name].append(farm_call(port, "GET", "/stats")["304"])
                    print(f"  {name}: {cycle}", file=sys.stderr)
                    if os.environ.get("BENCH_LOG"):
                        print(output[-4000:], file=sys.stderr)
        base = None if args.no_baseline else baseline(port, args.feeds)
    finally:
        farm.kill()

    def med(values: list[float]) -> float:
        return statistics.median(values)

    print(f"{args.feeds} feeds x {ENTRIES} entries, {os.cpu_count()} cores, median of {args.runs}")
    print()
    print("| cycle | wall s | CPU s | peak RSS daemon MB | peak PSS all processes MB | 304s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        rows = results[name]
        print(
            f"| {name} | {med([c.wall for c in rows]):.1f} | {med([c.cpu for c in rows]):.1f} "
            f"| {med([c.rss_daemon for c in rows]):.0f} | {med([c.rss_group for c in rows]):.0f} "
            f"| {med([float(n) for n in not_modified[name]]):.0f} |"
        )
    if base is not None:
        wall, cpu, entries = base
        cold = med([c.wall for c in results["cold"]])
        unchanged = med([c.wall for c in results["unchanged"]])
        print(
            f"| naive baseline (sequential httpx + feedparser, {entries} entries) "
            f"| {wall:.1f} | {cpu:.1f} | | | 0 |"
        )
        print()
        print(
            f"baseline / cold cycle: {wall / cold:.1f}x; "
            f"baseline / unchanged cycle: {wall / unchanged:.1f}x"
        )


if __name__ == "__main__":
    main()
