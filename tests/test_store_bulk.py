"""The store contract for polls of many rows and stores of many feeds, on both backends.

The PostgreSQL store writes a poll's rows in one statement per table and
reads the due feeds without sending every URL (issue 7: the database's CPU
per poll); these are the cases where that could differ from row by row. The
``store`` fixture (each backend in turn) and the helpers are
``test_store.py``'s.
"""

from __future__ import annotations

from datetime import timedelta

from test_store import T0, A, B, poll, seen, store

from monitor.store import Store

__all__ = ["store"]  # the fixture, imported for pytest


def test_a_key_two_entries_of_one_poll_share_keeps_the_first_entrys_story(store: Store) -> None:
    """One headline twice in a feed: its key is recorded once, for the first entry's story.

    An entry id twice is recorded once too. (PostgreSQL writes a poll's rows in
    one statement, which may not write one row twice.)
    """
    twice = seen("e1", "s1", "title:one headline", "link:1")
    store.apply(
        poll(
            A,
            T0,
            seen=(twice, seen("e2", "s2", "title:one headline", "link:2"), seen("e1", "s3")),
        )
    )
    stories = store.lookup(B, [], ["link:1", "link:2"], ["title:one headline"], T0).stories
    assert {key: s.story for key, s in stories.items()} == {
        "title:one headline": "s1",
        "link:1": "s1",
        "link:2": "s2",
    }
    assert store.lookup(A, ["e1", "e2", "e3"], [], [], T0).seen_ids == {"e1", "e2"}
    assert store.status().feeds[0].entries_seen == 2
    # Seen again later, the key moves to the then first entry's story, once.
    store.apply(poll(A, T0 + timedelta(hours=1), seen=(seen("e3", "s4", "title:one headline"),)))
    stories = store.lookup(B, [], [], ["title:one headline"], T0).stories
    assert stories["title:one headline"].story == "s4"


def test_due_feeds_among_many_skip_the_feeds_not_asked_for(store: Store) -> None:
    """With 1,200 feeds due over 12 minutes: any subset asked comes in due order, limited.

    (PostgreSQL reads the due feeds in pages of 500 and skips those not asked
    for; asked for two, it sends the URLs instead.)
    """
    urls = [f"https://n{i:04d}.example/rss" for i in range(1200)]
    for minute in range(12):
        store.sync_feeds(urls[minute::12], T0 + timedelta(minutes=minute))
    due = {url: i % 12 for i, url in enumerate(urls)}

    def expected(asked: list[str], at: int, limit: int) -> list[str]:
        return sorted((u for u in asked if due[u] <= at), key=lambda u: (due[u], u))[:limit]

    at = T0 + timedelta(minutes=11)
    for asked, minute, limit in [
        (urls, 11, 1000),
        (urls[::3], 11, 300),
        (urls[::2], 11, 400),  # a second page
        (urls[1::2], 5, 600),
        (urls[7:9], 11, 10),
        (urls[::-1], 0, 5),
    ]:
        got = store.due_feeds(asked, T0 + timedelta(minutes=minute), limit)
        assert [f.url for f in got] == expected(asked, minute, limit), (len(asked), minute, limit)
    assert store.due_feeds([], at, 10) == []
    assert store.due_feeds(urls, at, 0) == []
