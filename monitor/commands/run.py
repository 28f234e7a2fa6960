"""``news-monitor run`` and ``run --once``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing.forkserver
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from monitor.commands.common import config_path, load, on_terminal
from monitor.commands.progress import ProgressBar
from monitor.config import Config
from monitor.daemon import Daemon
from monitor.errors import ConfigError
from monitor.http import parse_listen
from monitor.pipeline import PollResult, parse_executor
from monitor.store import open_store
from monitor.store.base import is_postgres


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon, or one pass with ``--once``; on PostgreSQL, the workers (SPEC §8)."""
    config = load(args)
    postgres = is_postgres(config.state)
    if args.workers is not None and not postgres:
        raise ConfigError(
            "--workers needs `state: postgresql://...`: with a SQLite file one process"
            " does all the work (drop --workers, or move the state to PostgreSQL)"
        )
    if args.workers is not None and args.once:
        raise ConfigError("--workers runs the service; --once polls every feed once, here")
    listen = None if args.once else (args.http or config.http)
    address = parse_listen(listen) if listen else None
    if postgres and not args.once:
        return _run_workers(args, config, address)
    store = open_store(config.state)
    _start_forkserver_deaf_to_ctrl_c()
    executor = parse_executor()
    daemon = Daemon(config, store, executor=executor)
    try:
        code = _run_loop(_run(args, config_path(args), daemon, address), lambda: daemon.abandoned)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        store.close()
    return _exit(code, abandoned=daemon.abandoned)


def _run_workers(args: argparse.Namespace, config: Config, address: tuple[str, int] | None) -> int:
    """``run`` with the state in PostgreSQL: N poll workers and an outbox worker, here."""
    # Imported here, so that SQLite users never import Procrastinate.
    from monitor.distributed import WorkerProcess
    from monitor.store.postgres import PostgresStore

    store = PostgresStore(config.state)
    _start_forkserver_deaf_to_ctrl_c()
    executor = parse_executor()
    process = WorkerProcess(
        config,
        store,
        executor,
        workers=args.workers or 1,
        config_path=config_path(args),
    )
    try:
        code = _run_loop(process.run(address), lambda: process.abandoned)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        store.close()
    return _exit(code, abandoned=process.abandoned)


def _exit(code: int, *, abandoned: bool) -> int:
    """``code``; but exit at once when a delivery thread was abandoned at the stop."""
    if abandoned:
        # A delivery still runs in a worker thread that cannot be interrupted; waiting for
        # it would break the shutdown bound. Its outcome was never recorded, so it stays
        # pending in the (closed, consistent) store and goes out on the next run (SPEC §5).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _start_forkserver_deaf_to_ctrl_c() -> None:
    """Start the fork server of the parse workers with SIGINT ignored, which they inherit.

    Ctrl-C on a terminal signals the whole process group: the daemon handles it
    (a clean stop), but the workers would die printing KeyboardInterrupt
    tracebacks into the log. A process started with SIGINT ignored keeps it so.
    """
    # The fork server imports what its children run, once: parse workers then start
    # as bare forks instead of each importing feedparser (monitor.parse.feed, which
    # monitor.parse imports only when it first parses XML).
    multiprocessing.set_forkserver_preload(["__main__", "monitor.parse", "monitor.parse.feed"])
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_loop(main: Coroutine[Any, Any, int], abandoned: Callable[[], bool]) -> int:
    """``asyncio.run``, except that an abandoned delivery thread is not waited for."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in tasks:
                task.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            if not abandoned():
                loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


async def _run(
    args: argparse.Namespace, path: Path, daemon: Daemon, address: tuple[str, int] | None
) -> int:
    if not args.once:
        await daemon.run_forever(path, address)
        return 0
    progress = _Progress(len(daemon.feed_urls)) if on_terminal() else None
    try:
        await daemon.run_once(progress)
    finally:
        if progress:
            progress.done()
        await daemon.runtime.aclose()
    return 0


class _Progress:
    """A progress bar over the feeds of a ``run --once`` pass, on a terminal only."""

    def __init__(self, total: int) -> None:
        self.bar = ProgressBar("polling", total, unit="feeds")
        self.errors = 0

    def __call__(self, result: PollResult) -> None:
        self.errors += result.status in ("error", "gone")
        self.bar.advance(note=f"{self.errors} failed" if self.errors else "")

    def done(self) -> None:
        self.bar.close()
