"""Reading response bodies within a size cap and a deadline, decoding gzip/deflate ourselves.

httpx would inflate a whole network chunk at once (64 KiB of deflate can
become 64 MB); here every coding is undone in pieces of at most
:data:`PIECE` bytes and counted against ``max_size`` as it is produced, so
a compression bomb is cut at the cap (RFC 9110 §8.4.1 codings).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator

import httpx

from monitor.errors import FetchError

PIECE = 64 * 1024  # largest slice of decoded output produced at once
DRAIN = 64 * 1024  # largest unwanted body read to keep a connection alive


class Overrun(Exception):
    """The body went past the deadline or the size cap; raised out of the stream block."""

    def __init__(self, *, deadline: bool) -> None:
        self.deadline = deadline


async def read_body(response: httpx.Response, deadline: float, max_size: int) -> bytes:
    """The decoded body, or :class:`Overrun` once it passes ``max_size`` bytes or the deadline."""
    if response.is_stream_consumed:
        # An in-memory response from a custom transport: httpx has read and decoded it.
        if len(response.content) > max_size:
            raise Overrun(deadline=False)
        return response.content
    decoder = Decoder(response.headers.get("content-encoding", ""))
    parts: list[bytes] = []
    size = 0
    async for raw in response.aiter_raw():
        for piece in decoder.feed(raw):
            size += len(piece)
            if size > max_size:
                raise Overrun(deadline=False)
            parts.append(piece)
        if time.monotonic() > deadline:
            raise Overrun(deadline=True)
    return b"".join(parts)


async def drain(response: httpx.Response, deadline: float) -> None:
    """Read a small unwanted body (304, redirect, error page) so its connection can be reused.

    A body left unread makes httpcore close the connection; in a steady
    state of 304s that would cost a new connection per poll. Bodies larger
    than :data:`DRAIN` are abandoned instead, and a failure here is not the
    fetch's failure: the status line already said what happened.
    """
    seen = 0
    try:
        async for raw in response.aiter_raw():
            seen += len(raw)
            if seen > DRAIN or time.monotonic() > deadline:
                return
    except httpx.HTTPError:
        return


class Decoder:
    """Undoes one Content-Encoding (RFC 9110 §8.4.1) in pieces of at most 64 KiB."""

    def __init__(self, coding: str) -> None:
        self._coding = coding.strip().lower()
        self._inflater: zlib._Decompress | None = None
        self._head = b""  # deflate: the first bytes, to tell zlib-wrapped from raw
        if self._coding in ("gzip", "x-gzip"):
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self._coding not in ("", "identity", "deflate"):
            raise FetchError(f"unsupported content encoding {coding!r}")

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decoded output for the next raw bytes."""
        if self._coding in ("", "identity"):
            yield data
            return
        if self._inflater is None:
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            # Servers send "deflate" both zlib-wrapped (RFC 1950, as specified) and raw.
            wrapped = data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        try:
            yield from self._inflate(self._inflater, data)
        except zlib.error as exc:
            raise FetchError(f"cannot decode the {self._coding} response: {exc}") from None

    def _inflate(self, inflater: zlib._Decompress, data: bytes) -> Iterator[bytes]:
        while True:
            out = inflater.decompress(data, PIECE)
            if out:
                yield out
            data = inflater.unconsumed_tail
            if inflater.eof:
                rest = inflater.unused_data.lstrip(b"\0")
                if not rest or self._coding == "deflate":
                    return
                # Concatenated gzip members (RFC 1952 §2.2) decode as one stream.
                inflater = self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                data = rest
            elif not data and len(out) < PIECE:
                return
