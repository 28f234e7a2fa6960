"""``news-monitor migrate``: create or upgrade the state's schema, then say which it is."""

from __future__ import annotations

import argparse

from monitor.commands.common import load
from monitor.store import open_store


def cmd_migrate(args: argparse.Namespace) -> int:
    """Open the state (which creates or migrates its schema) and print where and which version.

    ``run`` does the same when it starts; this lets an upgrade migrate first
    (after a backup) and fail before any daemon is restarted.
    """
    config = load(args)
    store = open_store(config.state)
    try:
        print(f"{store.describe()}: schema version {store.schema_version()}, up to date")
    finally:
        store.close()
    return 0
