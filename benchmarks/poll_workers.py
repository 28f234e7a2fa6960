"""``poll_bench.py --workers N``: the cold and unchanged cycles on PostgreSQL with 1..N workers.

The same farm as ``poll_bench.py`` (2,000 feeds of 50 entries); a throwaway
PostgreSQL started the way the tests start one (``tests/pgserver.py``). For
each layout, a fresh database, then the workers are started and timed:

- ``P processes``: P ``news-monitor run`` processes of one poll worker each
  (how a deployment scales out, one per machine or core);
- ``1 process, --workers W``: W poll workers in one process.

1. **cold**: from the start of the processes (their start-up, about a
   second, included) until every feed has been polled once (its
   ``last_fetch`` set): every feed new, every entry parsed and recorded.
2. **idle**: the queue drained, :data:`IDLE_SECONDS` of nothing due, which is
   what the workers and the database spend on heartbeats, periodic jobs and
   dispatching when there is no work (per second).
3. **unchanged**: every feed made due at once (``next_due = now()``) in the
   still running processes, until every feed has been polled again: half the
   feeds answer 304, the other half send the body already stored (hashed,
   not parsed). The steady state of a deployment is mostly these polls.

Each line gives the wall time, the processes' CPU (with their fetch and parse
workers) and the database server's CPU over the same time (every process of
the server: backends, autovacuum, writers).

``--pg-stats N`` starts the server with pg_stat_statements (nested statements
too, so the statements inside Procrastinate's functions are seen) and prints,
for each cycle of the first run of each layout, its N statements of largest
total time, the tables' scan and write counts, and how many transactions the
server aborted as serialization failures or deadlocks (the store runs those
again).
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from poll_bench import ROOT, TICKS, _cpu, _descendants, farm_call, write_config

sys.path.insert(0, str(ROOT / "tests"))

from pgserver import PostgresServer, start

IDLE_SECONDS = 10.0
STATEMENTS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "all",
    "pg_stat_statements.max": "2000",
}
_CONFLICTS = ("could not serialize access", "deadlock detected")


@dataclass(frozen=True, slots=True)
class Measured:
    """What one stretch of time cost."""

    wall: float
    cpu: float  # the workers' processes, s
    db: float  # the database server's processes, s
    conflicts: int = 0  # transactions the server aborted (serialization, deadlock): run again


def _cpu_of(pids: list[int]) -> float:
    return sum(seconds for pid in pids if (seconds := _cpu(pid)) is not None)


def _server_cpu(server: PostgresServer) -> float:
    """CPU seconds of the server so far: its live processes, and those that have exited.

    Autovacuum workers come and go; the postmaster's "children" times count the
    ones it has reaped.
    """
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{postmaster}/stat").read_bytes().rsplit(b")", 1)[1].split()
    reaped = (int(fields[13]) + int(fields[14])) / TICKS  # cutime, cstime
    return reaped + _cpu_of(_descendants(postmaster))


def _count(conn: Any, query: str, *params: Any) -> int:
    row = conn.execute(query, params).fetchone()
    return int(row[0]) if row else 0


class Workers:
    """The worker processes of one layout, sampled for their CPU every tenth of a second."""

    def __init__(self, command: list[str], processes: int, log: Any) -> None:
        self.children = [
            subprocess.Popen(
                command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True
            )
            for _ in range(processes)
        ]
        # The last CPU seen of every process ever below them (parse workers come and go).
        self.seen: dict[int, float] = {}

    def sample(self) -> float:
        """The CPU seconds of every process so far; exits if a worker died."""
        for child in self.children:
            if child.poll() is not None:
                sys.exit(f"a worker exited {child.returncode}")
            for pid in _descendants(child.pid):
                if (seconds := _cpu(pid)) is not None:
                    self.seen[pid] = seconds
        return sum(self.seen.values())

    def wait_for(self, done: Callable[[], bool]) -> None:
        while not done():
            self.sample()
            time.sleep(0.1)
        self.sample()

    def stop(self) -> None:
        for child in self.children:
            child.send_signal(signal.SIGTERM)
        for child in self.children:
            child.wait(timeout=30)


class Stretch:
    """Times a stretch: wall, workers' CPU and the database's CPU from start to :meth:`end`."""

    def __init__(self, server: PostgresServer, workers: Workers) -> None:
        self.server, self.workers = server, workers
        self.wall = time.perf_counter()
        self.cpu = workers.sample()
        self.db = _server_cpu(server)
        self.conflicts = _conflicts(server)

    def end(self) -> Measured:
        return Measured(
            time.perf_counter() - self.wall,
            self.workers.sample() - self.cpu,
            _server_cpu(self.server) - self.db,
            _conflicts(self.server) - self.conflicts,
        )


def run_layout(
    server: PostgresServer,
    port: int,
    feeds: int,
    processes: int,
    workers: int,
    tag: str,
    stats: int,
) -> tuple[Measured, Measured, Measured]:
    """(cold, idle, unchanged) of one run of one layout, in a new database."""
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
        # One connection for the whole run: a login costs the server milliseconds of CPU.
        watch = psycopg.connect(url, autocommit=True)
        if stats:
            watch.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            watch.execute("SELECT pg_stat_statements_reset()")
        farm_call(port, "POST", "/reset")
        command = [sys.executable, "-m", "monitor", "run", "--config", str(config)]
        if workers > 1:
            command += ["--workers", str(workers)]
        log = (
            (Path(os.environ["BENCH_LOG"]) / f"{tag}.log").open("ab")
            if os.environ.get("BENCH_LOG")
            else subprocess.DEVNULL
        )
        pool = Workers(command, processes, log)
        try:
            polled = "SELECT count(*) FROM feeds WHERE last_fetch IS NOT NULL"
            # The processes have just started: their start-up is part of the cold cycle.
            stretch = Stretch(server, pool)
            pool.wait_for(lambda: _count(watch, polled) >= feeds)
            cold = stretch.end()
            if stats:
                _report(watch, f"{tag} cold", stats, cold)
            queued = "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'poll'"
            pool.wait_for(lambda: _count(watch, queued) == 0)
            stretch = Stretch(server, pool)
            time.sleep(IDLE_SECONDS)
            idle = stretch.end()
            farm_call(port, "POST", "/reset")
            if stats:
                watch.execute("SELECT pg_stat_statements_reset()")
            stretch = Stretch(server, pool)
            moment = watch.execute("UPDATE feeds SET next_due = now() RETURNING now()").fetchone()
            assert moment is not None
            again = "SELECT count(*) FROM feeds WHERE last_fetch >= %s"
            pool.wait_for(lambda: _count(watch, again, moment[0]) >= feeds)
            unchanged = stretch.end()
            answers = farm_call(port, "GET", "/stats")
            print(f"  {tag} unchanged: farm answers {answers}", file=sys.stderr)
            if stats:
                _report(watch, f"{tag} unchanged", stats, unchanged)
        finally:
            watch.close()
            pool.stop()
    server.drop_database(tag)
    return cold, idle, unchanged


def _conflicts(server: PostgresServer) -> int:
    text = server.log_text()
    return sum(text.count(message) for message in _CONFLICTS)


def _report(watch: Any, title: str, top: int, cycle: Measured) -> None:
    """Print the statements of largest total time and the tables' counters."""
    out = sys.stderr
    print(f"\n== {title}: {cycle.conflicts} serialization failures or deadlocks", file=out)
    rows = watch.execute(
        "SELECT toplevel, calls, total_exec_time, rows, query FROM pg_stat_statements"
        " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
        " ORDER BY total_exec_time DESC LIMIT %s",
        (top,),
    ).fetchall()
    total = watch.execute(
        "SELECT sum(calls), sum(total_exec_time) FROM pg_stat_statements WHERE toplevel"
        " AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ).fetchone()
    print(f"top-level statements: {total[0]} calls, {total[1] / 1000:.1f} s", file=out)
    print(f"{'':1} {'calls':>7} {'total ms':>9} {'mean ms':>8} {'rows':>7}  query", file=out)
    for toplevel, calls, total_ms, nrows, query in rows:
        text = " ".join(query.split())[:150]
        mark = " " if toplevel else "n"  # n: run inside a function (or a trigger)
        print(
            f"{mark} {calls:7d} {total_ms:9.0f} {total_ms / calls:8.3f} {nrows:7d}  {text}",
            file=out,
        )
    tables = watch.execute(
        "SELECT relname, seq_scan, seq_tup_read, idx_scan, n_tup_ins, n_tup_upd, n_tup_hot_upd,"
        " n_tup_del, n_dead_tup, autovacuum_count, autoanalyze_count FROM pg_stat_user_tables"
        " WHERE seq_scan + coalesce(idx_scan, 0) > 0 ORDER BY seq_tup_read DESC"
    ).fetchall()
    print(
        "table: seq_scan seq_tup_read idx_scan ins upd hot_upd del dead autovacuum autoanalyze",
        file=out,
    )
    for row in tables:
        print(f"  {row[0]}: {' '.join(str(v) for v in row[1:])}", file=out)


def main_workers(args: argparse.Namespace, port: int) -> None:
    """Print both cycles for 1..``args.workers`` processes and for W workers in one."""
    server = start(STATEMENTS if args.pg_stats else None)
    try:
        layouts = [
            (p, 1, f"{p} process{'es' if p > 1 else ''}") for p in range(1, args.workers + 1)
        ]
        layouts += [(1, w, f"1 process, --workers {w}") for w in range(2, args.workers + 1)]
        rows = []
        for processes, workers, label in layouts:
            runs = [
                run_layout(
                    server,
                    port,
                    args.feeds,
                    processes,
                    workers,
                    f"bench{processes}x{workers}r{r}",
                    args.pg_stats if r == 0 else 0,
                )
                for r in range(args.runs)
            ]
            for r, (cold, idle, unchanged) in enumerate(runs):
                print(f"  {label} run {r}: {cold} {idle} {unchanged}", file=sys.stderr)
            rows.append((label, [_median([run[n] for run in runs]) for n in range(3)]))
    finally:
        server.stop()
    n = args.feeds
    print(f"{n} feeds on PostgreSQL, median of {args.runs}")
    print()
    print(
        "| layout | cycle | wall s | workers' CPU s | database CPU s"
        " | database CPU per poll ms | feeds/s | conflicts |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, (cold, idle, unchanged) in rows:
        for name, m in (("cold", cold), ("unchanged", unchanged)):
            print(
                f"| {label} | {name} | {m.wall:.1f} | {m.cpu:.1f} | {m.db:.1f}"
                f" | {1000 * m.db / n:.1f} | {n / m.wall:.0f} | {m.conflicts} |"
            )
        print(
            f"| {label} | idle, per second | | {idle.cpu / idle.wall:.3f}"
            f" | {idle.db / idle.wall:.3f} | | | |"
        )


def _median(values: list[Measured]) -> Measured:
    return Measured(
        statistics.median(m.wall for m in values),
        statistics.median(m.cpu for m in values),
        statistics.median(m.db for m in values),
        int(statistics.median(m.conflicts for m in values)),
    )
