"""The state store: feeds, seen entries, stories, alerts and the delivery outbox."""

from monitor.store.base import Store, open_store

__all__ = ["Store", "open_store"]
