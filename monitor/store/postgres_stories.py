"""Story keys claimed across processes: the lookup-then-apply of one poll as one step (issue 7).

A poll reads what the store knows about its entries' story keys
(:meth:`~monitor.store.postgres.PostgresStore.lookup`), decides, then writes
(``apply``). With one writer (SQLite) nothing can come between the two; with
many workers on one PostgreSQL, two feeds carrying the same story (one link,
or one headline under two links) could both look it up as unknown and both
alert it (SPEC §5: one alert per rule per story).

So ``lookup`` first claims every key it asks about with a session-level
advisory lock, and ``apply`` releases them once its transaction has ended: a
second poll asking about any of the same keys waits until the first has
written, and its own lookup (a transaction begun after the wait, hence a
snapshot taken after it) sees the first poll's stories. Keys are hashed to
32 bits (a collision only makes two polls wait for each other) and claimed in
sorted order by one function (:data:`CLAIM_FUNCTION`), so two polls never
wait on each other in a cycle. Session locks, not transaction ones, because
the lookup and the apply are two transactions; a connection that dies
releases what it held.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from monitor.store.postgres_codec import Conn

# The advisory lock class of story keys ("nmSK"); the key's hash is the object id.
STORY_LOCK_CLASS = 1852658507

# Created by migration 2 (postgres_schema). One round trip for all the keys, taken in the
# order given; a claim still waiting after lock_timeout fails rather than hanging the worker.
CLAIM_FUNCTION = f"""
CREATE FUNCTION news_monitor_claim_story_keys(keys integer[]) RETURNS void
LANGUAGE plpgsql SET lock_timeout = '30s' AS $$
DECLARE
    k integer;
BEGIN
    FOREACH k IN ARRAY keys LOOP
        PERFORM pg_advisory_lock({STORY_LOCK_CLASS}, k);
    END LOOP;
END
$$
"""


def lock_ids(keys: Iterable[str]) -> list[int]:
    """The advisory lock ids of these story keys, each once, in the order they are taken."""
    return sorted({_hash32(key) for key in keys})


def _hash32(key: str) -> int:
    digest = hashlib.blake2b(key.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def claim(conn: Conn, keys: Iterable[str]) -> None:
    """Claim ``keys`` for this session (outside any transaction), waiting for other holders."""
    ids = lock_ids(keys)
    if ids:
        conn.execute("SELECT news_monitor_claim_story_keys(%s::integer[])", (ids,))


def release(conn: Conn) -> None:
    """Release every story key this session claimed.

    All of the session's advisory locks: the only other one, the migration
    lock, is held only while the connection opens.
    """
    conn.execute("SELECT pg_advisory_unlock_all()")
