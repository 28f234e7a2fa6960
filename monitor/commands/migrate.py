"""``news-monitor migrate``: create or upgrade the state's schema, then say which it is."""

from __future__ import annotations

import argparse

from monitor.commands.common import load
from monitor.store import open_store
from monitor.store.base import is_postgres


def cmd_migrate(args: argparse.Namespace) -> int:
    """Open the state (which creates or migrates its schema) and print where and which version.

    ``run`` does the same when it starts; this lets an upgrade migrate first
    (after a backup) and fail before any daemon is restarted.
    """
    config = load(args)
    store = open_store(config.state)
    try:
        line = f"{store.describe()}: schema version {store.schema_version()}, up to date"
        if is_postgres(config.state):
            # Many workers share the database through Procrastinate's job queue (SPEC §8).
            from monitor.store.postgres import PostgresStore

            assert isinstance(store, PostgresStore)
            line += f"; job queue: Procrastinate {store.migrate_queue()}"
        print(line)
    finally:
        store.close()
    return 0
