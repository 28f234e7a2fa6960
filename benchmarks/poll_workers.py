"""``poll_bench.py --workers N``: the cold cycle on PostgreSQL with 1..N workers (issue 7).

The same farm as ``poll_bench.py`` (2,000 feeds of 50 entries); a throwaway
PostgreSQL started the way the tests start one (``tests/pgserver.py``). For
each layout, a fresh database, then the workers are started and timed until
every feed has been polled once (its ``last_fetch`` set), then stopped:

- ``P processes``: P ``news-monitor run`` processes of one poll worker each
  (how a deployment scales out, one per machine or core);
- ``1 process, --workers W``: W poll workers in one process.

Each line gives the wall time from the start of the processes (their start-up,
about a second, included), their CPU (with their fetch and parse workers) and
the database server's CPU over the same time.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
from poll_bench import ROOT, _cpu, _descendants, farm_call, write_config

sys.path.insert(0, str(ROOT / "tests"))

from pgserver import PostgresServer, start


def _cpu_of(pids: list[int]) -> float:
    return sum(seconds for pid in pids if (seconds := _cpu(pid)) is not None)


def _server_pids(server: PostgresServer) -> list[int]:
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    return _descendants(postmaster)


def _polled(conn: Any) -> int:
    row = conn.execute("SELECT count(*) FROM feeds WHERE last_fetch IS NOT NULL").fetchone()
    return int(row[0]) if row else 0


def cold_cycle(
    server: PostgresServer, port: int, feeds: int, processes: int, workers: int, tag: str
) -> tuple[float, float, float]:
    """(wall s, workers' CPU s, database CPU s) of one cold cycle in a new database."""
    server.create_database(tag)
    url = server.url(tag)
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp), port, feeds)
        text = config.read_text().replace(f"state: {Path(tmp) / 'state.db'}", f"state: '{url}'")
        if os.environ.get("BENCH_LOG"):  # a directory: each layout's log there, at info level
            text = text.replace("log_level: warning", "log_level: info")
        config.write_text(text)
        # Schemas first, so that the timing is polling, not one-off DDL.
        subprocess.run(
            [sys.executable, "-m", "monitor", "migrate", "--config", str(config)],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        farm_call(port, "POST", "/reset")
        db_before = _cpu_of(_server_pids(server))
        started = time.perf_counter()
        command = [sys.executable, "-m", "monitor", "run", "--config", str(config)]
        if workers > 1:
            command += ["--workers", str(workers)]
        log = (
            (Path(os.environ["BENCH_LOG"]) / f"{tag}.log").open("ab")
            if os.environ.get("BENCH_LOG")
            else subprocess.DEVNULL
        )
        children = [
            subprocess.Popen(
                command,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
            for _ in range(processes)
        ]
        cpu: dict[int, float] = {}
        # One connection for the whole cycle: a login costs the server milliseconds of CPU.
        watch = psycopg.connect(url, autocommit=True)
        try:
            while _polled(watch) < feeds:
                for child in children:
                    if child.poll() is not None:
                        sys.exit(f"{tag}: a worker exited {child.returncode}")
                    for pid in _descendants(child.pid):
                        if (seconds := _cpu(pid)) is not None:
                            cpu[pid] = seconds
                time.sleep(0.1)
            wall = time.perf_counter() - started
            db = _cpu_of(_server_pids(server)) - db_before
        finally:
            watch.close()
            for child in children:
                child.send_signal(signal.SIGTERM)
            for child in children:
                child.wait(timeout=30)
    server.drop_database(tag)
    return wall, sum(cpu.values()), db


def main_workers(args: argparse.Namespace, port: int) -> None:
    """Print the cold cycle for 1..``args.workers`` processes and for W workers in one."""
    server = start()
    try:
        layouts = [
            (p, 1, f"{p} process{'es' if p > 1 else ''}") for p in range(1, args.workers + 1)
        ]
        layouts += [(1, w, f"1 process, --workers {w}") for w in range(2, args.workers + 1)]
        rows = []
        for processes, workers, label in layouts:
            runs = [
                cold_cycle(
                    server, port, args.feeds, processes, workers, f"bench{processes}x{workers}r{r}"
                )
                for r in range(args.runs)
            ]
            wall, cpu, db = (statistics.median(column) for column in zip(*runs, strict=True))
            print(f"  {label}: wall {wall:.1f} s, CPU {cpu:.1f} s, db {db:.1f} s", file=sys.stderr)
            rows.append((label, wall, cpu, db))
    finally:
        server.stop()
    print(f"{args.feeds} feeds, cold cycle on PostgreSQL, median of {args.runs}")
    print()
    print("| layout | wall s | workers' CPU s | database CPU s | feeds/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, wall, cpu, db in rows:
        print(f"| {label} | {wall:.1f} | {cpu:.1f} | {db:.1f} | {args.feeds / wall:.0f} |")
