"""SPEC §5 "one bad feed harms no other": every hostile server at once, beside healthy feeds.

One real daemon (``news-monitor run``) polls, in the same run, healthy feeds
and a local server that fails in every way issue 5 lists. The test then
requires that the healthy feeds' alerts all arrive (also for entries added
after the hostile feeds have done their worst), that each bad feed has a
specific error recorded against it in ``status``, that the memory of the
daemon (where the hostile bodies are read) and of each of its parse workers
(where they are parsed) stays bounded, and that the daemon is still running.
"""

from __future__ import annotations

import json
import socket
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from daemon_proc import DaemonProcess, Item, group_members, rss, status_json, wait_until
from feedserver import FeedServer, Handler, bomb, chunked, redirect, stall, status, trickle
from receivers import HTTPReceiver

NOW = datetime.now(UTC)
MB = 1 << 20
# Peak resident memory allowed for the daemon and for each parse worker. A
# gigabyte gzip bomb, a 50 MB chunked body and a billion-laughs document pass through:
# without the streaming cap and the DTD guard any one of them would take hundreds of MB.
MEMORY_BOUND = 200 * MB

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE rss [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><description>&lol9;</description></item>
</channel></rss>
"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>x</title>
<item><title>&xxe;</title><description>&xxe;</description></item>
</channel></rss>
"""
HTML_PAGE = b"""<!DOCTYPE html><html><head><title>Welcome</title></head>
<body><h1>Our news</h1><p>This is a web page, not a feed.</p></body></html>
"""
MALFORMED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>broken</title><item><title'


def item(feed: str, n: int, title: str, *, guid: bool = True) -> Item:
    """A fresh entry of ``feed``; ``guid=False`` leaves its identity to the link."""
    return Item(
        guid=f"{feed}-{n}" if guid else "",
        title=title,
        link=f"https://news.example/{feed}/{n}",
        published=NOW - timedelta(minutes=n),
    )


def rss_without_guids(title: str, items: list[Item]) -> bytes:
    """RSS whose items have links but no guid elements at all."""
    body = rss(title, items).decode()
    return body.replace('<guid isPermaLink="false"></guid>', "").encode()


def cyrillic_declared_utf8() -> bytes:
    """A Russian feed in cp1251 bytes whose declaration (and server) claim UTF-8."""
    text = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        "<title>Новости</title><link>https://ru.example/</link><description>d</description>"
        '<item><guid isPermaLink="false">ru-1</guid>'
        "<title>Ночная атака: drone strike on Kyiv, сообщают военные</title>"
        "<link>https://ru.example/1</link>"
        f"<pubDate>{format_datetime(NOW - timedelta(minutes=5), usegmt=True)}</pubDate>"
        "<description>Беспилотники атаковали город</description></item>"
        "</channel></rss>"
    )
    return text.encode("cp1251")


def retry_after_date(seconds: int) -> str:
    return format_datetime(datetime.now(UTC) + timedelta(seconds=seconds), usegmt=True)


def deflate_bomb(size: int) -> Handler:
    """A raw-zlib ("deflate") bomb: ``size`` zero bytes, about 1 MB on the wire per GB."""
    return bomb("deflate", size)


def gzip_with_length(body_size: int) -> Handler:
    """A gzip bomb that announces its small compressed Content-Length."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    data = compressor.compress(b"\0" * body_size) + compressor.flush()

    def handle(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/rss+xml")
        h.send_header("Content-Encoding", "gzip")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return handle


@pytest.fixture
def unanswering_port() -> Iterator[int]:
    """A listening port whose backlog is full, so connections never complete."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        fillers = [socket.socket() for _ in range(8)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        try:
            yield port
        finally:
            for filler in fillers:
                filler.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak_memory(pid: int) -> int:
    """The peak resident set (VmHWM) of a live process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def test_every_hostile_server_at_once_harms_no_healthy_feed(
    tmp_path: Path, unanswering_port: int
) -> None:
    """Healthy feeds' alerts all arrive while every failure mode of issue 5 runs beside them;
    each bad feed records a specific error, memory stays bounded, the daemon keeps running."""
    with FeedServer() as server, HTTPReceiver() as hook:
        healthy = {
            "/alpha.xml": [item("alpha", 1, "Drone strike hits Odesa port")],
            "/bravo.xml": [item("bravo", 1, "Drone barrage over Kharkiv overnight")],
        }

        def serve_healthy(path: str) -> Handler:
            def handle(h: BaseHTTPRequestHandler) -> None:
                body = rss(path, list(healthy[path]))
                h.send_response(200)
                h.send_header("Content-Type", "application/rss+xml")
                h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body)

            return handle

        for path in healthy:
            server.add_handler(path, serve_healthy(path))
        # Odd but usable feeds: they must alert too.
        server.add(
            "/no-ids.xml",
            rss_without_guids("No ids", [item("noid", 1, "Drone seen near Lviv", guid=False)]),
            content_type="application/rss+xml",
        )
        server.add(
            "/dup-ids.xml",
            rss(
                "Dup ids",
                [
                    Item("same", "Drone downed over Sumy", "https://news.example/d/1", NOW),
                    Item("same", "Weather outlook for Sumy", "https://news.example/d/2", NOW),
                ],
            ),
            content_type="application/rss+xml",
        )
        server.add(
            "/cp1251.xml",
            cyrillic_declared_utf8(),
            content_type="application/rss+xml; charset=utf-8",
        )
        # Every failure mode, each with the error it must record (a substring of it).
        hostile: dict[str, tuple[Handler | bytes, str]] = {
            "/trickle.xml": (trickle(1.0, limit=60), "the fetch took longer than 2 s"),
            "/silent.xml": (stall(60), "read timeout: 127.0.0.1"),
            "/404.xml": (status(404), "HTTP 404"),
            "/500.xml": (status(500), "HTTP 500"),
            "/429.xml": (status(429, {"Retry-After": "3600"}), "HTTP 429"),
            "/503.xml": (status(503, {"Retry-After": retry_after_date(7200)}), "HTTP 503"),
            "/410.xml": (status(410), "gone"),
            "/loop-a.xml": (redirect("/loop-b.xml"), "redirect loop"),
            "/loop-b.xml": (redirect("/loop-a.xml"), "redirect loop"),
            "/chain-0.xml": (redirect("/chain-1.xml"), "too many redirects"),
            "/oversize.xml": (b"<rss>" + b"x" * (3 * MB), "response larger than 1.0 MB"),
            "/chunked.xml": (chunked(50 * MB), "response larger than 1.0 MB"),
            "/gzip-bomb.xml": (bomb("gzip", 1 << 30), "response larger than 1.0 MB"),
            "/deflate-bomb.xml": (deflate_bomb(1 << 30), "response larger than 1.0 MB"),
            "/gzip-announced.xml": (gzip_with_length(64 * MB), "response larger than 1.0 MB"),
            # Disarmed rather than refused: recorded as a warning on an otherwise good poll.
            "/laughs.xml": (BILLION_LAUGHS, "removed a DOCTYPE with unsafe entity declarations"),
            "/xxe.xml": (EXTERNAL_ENTITY, "removed a DOCTYPE with unsafe entity declarations"),
            "/malformed.xml": (MALFORMED, "not well-formed"),
            "/page.html": (HTML_PAGE, "HTML page"),
            "/empty.xml": (b"", "empty"),
        }
        for n in range(1, 30):
            server.add_handler(f"/chain-{n}.xml", redirect(f"/chain-{n + 1}.xml"))
        for path, (source, _) in hostile.items():
            if path.startswith("/loop-b"):
                continue
            if isinstance(source, bytes):
                kind = "text/html" if path.endswith(".html") else "application/rss+xml"
                server.add(path, source, content_type=kind)
            else:
                server.add_handler(path, source)
        server.add_handler("/loop-b.xml", redirect("/loop-a.xml"))
        del hostile["/loop-b.xml"]
        dead_port = closed_port()
        elsewhere: dict[str, str] = {
            "http://feeds.example.invalid/rss": "cannot resolve host feeds.example.invalid",
            f"http://127.0.0.1:{dead_port}/rss": f"connection refused by 127.0.0.1:{dead_port}",
            f"https://127.0.0.1:{server.port}/alpha.xml": "TLS error with 127.0.0.1",
            f"http://127.0.0.1:{unanswering_port}/rss": "connect timeout",
        }
        bad = {server.url(path): expected for path, (_, expected) in hostile.items()}
        bad |= elsewhere
        good = [server.url(p) for p in (*healthy, "/no-ids.xml", "/dup-ids.xml", "/cp1251.xml")]

        config = tmp_path / "monitor.yaml"
        # The two live feeds are polled every second; the rest once (interval 10m).
        feed_lines = "".join(
            f"  - {{url: '{server.url(path)}', interval: 1s, backfill: true}}\n" for path in healthy
        ) + "".join(f"  - {{url: '{url}', backfill: true}}\n" for url in (*good[2:], *bad))
        config.write_text(
            f"state: {tmp_path / 'state.db'}\n"
            "poll: {interval: 10m, timeout: 2s, max_size: 1MB, jitter: 0, concurrency: 64}\n"
            "delivery: {retry_initial: 1s, retry_max: 1s}\n"
            f"feeds:\n{feed_lines}"
            f"targets:\n  hook: '{hook.json_url()}'\n"
            "rules:\n  - name: drones\n    query: drone\n    notify: [hook]\n"
        )
        daemon = DaemonProcess(config, tmp_path / "daemon.log")
        try:
            daemon.start()
            daemon.wait_started()

            def polled() -> dict[str, dict[str, Any]]:
                return {f["url"]: f for f in status_json(config)["feeds"]}

            wait_until(
                lambda: all(f["last_fetch"] for f in polled().values()),
                timeout=45,
                what="every feed to be polled once",
            )
            expected_first = {
                "Drone strike hits Odesa port",
                "Drone barrage over Kharkiv overnight",
                "Drone seen near Lviv",
                "Drone downed over Sumy",
                "Ночная атака: drone strike on Kyiv, сообщают военные",
            }

            def received() -> list[str]:
                return [json.loads(r.body)["title"] for r in hook.requests]

            wait_until(
                lambda: expected_first <= {_headline(t) for t in received()},
                timeout=30,
                what=f"the healthy feeds' alerts (got {received()})",
            )

            # The hostile feeds have done their worst; new stories still come through.
            healthy["/alpha.xml"].append(item("alpha", 2, "Second drone wave reaches Kyiv"))
            healthy["/bravo.xml"].append(item("bravo", 2, "Drone debris falls on Poltava"))
            wait_until(
                lambda: (
                    {"Second drone wave reaches Kyiv", "Drone debris falls on Poltava"}
                    <= {_headline(t) for t in received()}
                ),
                timeout=30,
                what="alerts for entries added after the first poll",
            )
            assert daemon.process is not None and daemon.process.poll() is None, daemon.run_log()
            pid = daemon.process.pid
            for member in group_members(pid):
                assert peak_memory(member) < MEMORY_BOUND, (member, peak_memory(member))

            feeds = polled()
            disarmed = {server.url("/laughs.xml"), server.url("/xxe.xml")}
            for url, expected in bad.items():
                error = feeds[url]["error"] or ""
                assert expected in error, f"{url}: {error!r} lacks {expected!r}"
                want = "ok" if url in disarmed else "gone" if url.endswith("/410.xml") else "error"
                assert feeds[url]["status"] == want, feeds[url]
            # Retry-After, in seconds and as an HTTP-date, pushes the next poll out.
            for path, at_least in (("/429.xml", 3500), ("/503.xml", 7000)):
                due = datetime.fromisoformat(feeds[server.url(path)]["next_due"])
                assert due - datetime.now(UTC) > timedelta(seconds=at_least), (path, due)
            warned = {
                "/dup-ids.xml": "duplicate",
                "/cp1251.xml": "not in its declared utf-8",
            }
            for url in good:
                path = url.removeprefix(server.base_url)
                assert feeds[url]["status"] in {"ok", "unchanged"}, feeds[url]
                assert feeds[url]["error_streak"] == 0, feeds[url]
                assert feeds[url]["entries_seen"] >= 1
                assert warned.get(path, "no warning") in (feeds[url]["error"] or "no warning")
            # No alert twice, and the duplicate id kept the first entry only.
            titles = received()
            assert len(titles) == len(set(titles)), titles
            assert not any("Weather outlook" in t for t in titles)
            log = daemon.run_log()
            assert "Traceback" not in log, log
            assert daemon.stop() == 0
        finally:
            daemon.close()
    # Nothing read the local file the external entity named.
    assert "root:" not in json.dumps(titles)


def _headline(title: str) -> str:
    """The story headline inside an alert title ("[drones] headline")."""
    return title.removeprefix("[drones] ")
