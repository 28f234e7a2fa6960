"""``news-monitor run`` and ``run --once``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from concurrent.futures import Executor
from pathlib import Path

from monitor.commands.common import config_path, load, on_terminal
from monitor.config import Config
from monitor.daemon import Daemon
from monitor.http import parse_listen
from monitor.pipeline import PollResult, parse_executor
from monitor.store import Store, open_store


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon, or one pass with ``--once``."""
    config = load(args)
    store = open_store(config.state)
    executor = parse_executor()
    try:
        return asyncio.run(_run(args, config_path(args), store, executor, config))
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        store.close()


async def _run(
    args: argparse.Namespace, path: Path, store: Store, executor: Executor, config: Config
) -> int:
    daemon = Daemon(config, store, executor=executor)
    if not args.once:
        listen = args.http or config.http
        await daemon.run_forever(path, parse_listen(listen) if listen else None)
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
    """A one-line progress counter on a terminal, for long ``run --once`` passes."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.count = 0
        self.errors = 0

    def __call__(self, result: PollResult) -> None:
        self.count += 1
        self.errors += result.intent.status in ("error", "gone")
        sys.stderr.write(f"\rpolled {self.count}/{self.total} feeds, {self.errors} failed ")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\n")
