"""Fetching on every core: fetch worker processes, each with its own event loop (issue 5).

Each HTTP exchange costs CPU (about 0.3 ms with :mod:`monitor.fetch.transport`,
a millisecond through httpcore), so a poll of thousands of feeds that mostly
answer 304 or an unchanged body is bound by one core when one event loop
makes every request. :class:`FetchWorkers` has the same
:meth:`fetch` as :class:`~monitor.fetch.Fetcher` but hands each request to one
of several child processes, each running an ordinary ``Fetcher`` on its own
loop; the daemon's loop only sends the request and waits for the answer.

* A body whose digest the caller already has (``known_hash``) stays in the
  worker and only the digest comes back, so an unchanged feed costs the
  daemon two small frames.
* The per-host limit holds across workers: the parent takes the host's slot
  before choosing a worker (the least busy one), so the workers together never
  have more than ``per_host`` first requests to one host in flight. Redirects
  are followed inside a worker, under that worker's own per-host limit.
* A worker that dies fails only its requests in flight, each with a
  :class:`~monitor.errors.FetchError` saying so, and is started again on the
  next request. Workers that keep dying before answering anything (a broken
  installation, a sandbox that forbids processes) are given up on after
  :data:`START_ATTEMPTS` tries: fetching then goes on in the daemon's own
  process, with one error in the log.

Frames on each worker's socket are a 4-byte length and a pickle; both ends
are the project's own processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import pickle
import socket
import struct
from dataclasses import dataclass, field, replace
from multiprocessing.process import BaseProcess
from types import TracebackType
from typing import Any

from monitor.errors import FetchError
from monitor.fetch import Fetcher, FetcherSettings
from monitor.fetch.translate import hostport
from monitor.logs import event
from monitor.model import Fetched

log = logging.getLogger("monitor")

_LENGTH = struct.Struct("!I")
# Workers in a row that may die without answering before fetching moves in-process.
START_ATTEMPTS = 3
# How long closing waits for a worker to exit before killing it.
_EXIT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class _Request:
    id: int
    url: str
    etag: str | None
    last_modified: str | None
    timeout: float | None
    max_size: int | None
    known_hash: str | None


@dataclass(slots=True)
class _Worker:
    process: BaseProcess
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pending: dict[int, asyncio.Future[Fetched]] = field(default_factory=dict)
    listener: asyncio.Task[None] | None = None
    alive: bool = True
    answered: int = 0


class FetchWorkers:
    """Fetches through ``count`` worker processes; see the module doc.

    Use it as an async context manager or call :meth:`aclose`. Workers start
    on the first :meth:`fetch`.
    """

    def __init__(self, settings: FetcherSettings, *, count: int) -> None:
        if count < 1:
            raise ValueError("FetchWorkers needs at least one worker")
        self._settings = settings
        self._count = count
        self._workers: list[_Worker | None] = [None] * count
        self._starting: asyncio.Lock | None = None
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._ids = itertools.count()
        self._closed = False
        self._failed_starts = 0
        self._fallback: Fetcher | None = None

    async def __aenter__(self) -> FetchWorkers:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers (for logs, and for tests that kill one)."""
        return [
            worker.process.pid
            for worker in self._workers
            if worker is not None and worker.alive and worker.process.pid is not None
        ]

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (a budget, as in Fetcher.fetch)
        max_size: int | None = None,
        known_hash: str | None = None,
    ) -> Fetched:
        """As :meth:`Fetcher.fetch <monitor.fetch.Fetcher.fetch>`, in a worker process."""
        if self._closed:
            raise FetchError("the fetcher is closed")
        async with self._host_slot(hostport(url)):
            worker = await self._choose()
            if worker is None:
                return await self._in_process().fetch(
                    url,
                    etag=etag,
                    last_modified=last_modified,
                    timeout=timeout,
                    max_size=max_size,
                    known_hash=known_hash,
                )
            request = _Request(
                next(self._ids), url, etag, last_modified, timeout, max_size, known_hash
            )
            future: asyncio.Future[Fetched] = asyncio.get_running_loop().create_future()
            future.add_done_callback(_retrieve)
            worker.pending[request.id] = future
            try:
                _send(worker.writer, request)
                await worker.writer.drain()
            except (ConnectionError, OSError):
                worker.pending.pop(request.id, None)
                raise FetchError("the fetch worker is gone; retrying next poll") from None
            # Cancelling the caller only stops the wait; the worker finishes the
            # request by its own deadline and the late answer is dropped.
            return await asyncio.shield(future)

    async def aclose(self) -> None:
        """Let workers finish their requests (each ends by its deadline), then stop them."""
        self._closed = True
        workers = [worker for worker in self._workers if worker is not None]
        self._workers = [None] * self._count
        try:
            pending = [future for worker in workers for future in worker.pending.values()]
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        finally:
            # Even when the wait is cut short: at end of stream a worker finishes what
            # it has in flight and exits.
            for worker in workers:
                worker.writer.close()
        for worker in workers:
            if worker.listener is not None:
                await asyncio.gather(worker.listener, return_exceptions=True)
            await asyncio.to_thread(_join, worker.process)
        if self._fallback is not None:
            await self._fallback.aclose()

    async def _choose(self) -> _Worker | None:
        """The least busy live worker, starting any that are missing; None: fetch here."""
        if self._closed:  # closed while this fetch waited for its host's slot
            raise FetchError("the fetcher is closed")
        if self._fallback is not None:
            return None
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            for index, worker in enumerate(self._workers):
                if worker is not None and worker.alive:
                    continue
                if worker is not None:
                    self._failed_starts = 0 if worker.answered else self._failed_starts + 1
                    if self._failed_starts >= START_ATTEMPTS:
                        self._give_up(worker)
                        return None
                self._workers[index] = await self._start()
        live = [worker for worker in self._workers if worker is not None]
        return min(live, key=lambda worker: len(worker.pending))

    def _give_up(self, last: _Worker) -> None:
        event(
            log,
            logging.ERROR,
            "fetch.workers_failed",
            attempts=self._failed_starts,
            last_exit=_describe(last.process.exitcode),
            action="fetching in the daemon process from now on",
        )
        self._in_process()

    def _in_process(self) -> Fetcher:
        if self._fallback is None:
            # The workers' connections, all in this process now.
            connections = self._settings.max_connections * self._count
            self._fallback = Fetcher.from_settings(
                replace(self._settings, max_connections=connections)
            )
        return self._fallback

    async def _start(self) -> _Worker:
        parent, child = socket.socketpair()
        # forkserver: the daemon runs threads (Apprise, asyncio's executor), and fork
        # would copy their locks in whatever state they are.
        context = multiprocessing.get_context("forkserver")
        process = context.Process(
            target=serve, args=(child, self._settings), name="news-monitor-fetch", daemon=True
        )
        await asyncio.to_thread(process.start)
        child.close()
        reader, writer = await asyncio.open_connection(sock=parent)
        worker = _Worker(process, reader, writer)
        worker.listener = asyncio.get_running_loop().create_task(self._listen(worker))
        return worker

    async def _listen(self, worker: _Worker) -> None:
        try:
            while (reply := await _receive(worker.reader)) is not None:
                ident, result = reply
                worker.answered += 1
                future = worker.pending.pop(ident, None)
                if future is None or future.done():
                    continue
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        except (ConnectionError, OSError, pickle.UnpicklingError, EOFError):
            pass
        finally:
            worker.alive = False
            exitcode = await asyncio.to_thread(_join, worker.process, 1.0)
            lost = FetchError(f"the fetch worker exited unexpectedly ({_describe(exitcode)})")
            for future in worker.pending.values():
                if not future.done():
                    future.set_exception(lost)
            worker.pending.clear()

    def _host_slot(self, host: str) -> asyncio.Semaphore:
        slot = self._hosts.get(host)
        if slot is None:
            slot = self._hosts[host] = asyncio.Semaphore(self._settings.per_host)
        return slot


def serve(sock: socket.socket, settings: FetcherSettings) -> None:
    """A fetch worker's whole life: answer requests on ``sock`` until the parent hangs up."""
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the whole group
        asyncio.run(_serve(sock, settings))


async def _serve(sock: socket.socket, settings: FetcherSettings) -> None:
    reader, writer = await asyncio.open_connection(sock=sock)
    tasks: set[asyncio.Task[None]] = set()
    async with Fetcher.from_settings(settings) as fetcher:
        while (request := await _receive(reader)) is not None:
            task = asyncio.get_running_loop().create_task(_answer(fetcher, request, writer))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
    writer.close()


async def _answer(fetcher: Fetcher, request: _Request, writer: asyncio.StreamWriter) -> None:
    result: Fetched | BaseException
    try:
        result = await fetcher.fetch(
            request.url,
            etag=request.etag,
            last_modified=request.last_modified,
            timeout=request.timeout,
            max_size=request.max_size,
            known_hash=request.known_hash,
        )
    except FetchError as exc:
        result = exc
    except Exception as exc:  # a bug must not take the worker down: report it as the feed's
        result = FetchError(f"fetch failed: {type(exc).__name__}: {exc}")
    with contextlib.suppress(ConnectionError, OSError):
        _send(writer, (request.id, result))
        await writer.drain()


def _retrieve(future: asyncio.Future[Fetched]) -> None:
    # An abandoned fetch's error is not "never retrieved".
    if not future.cancelled():
        future.exception()


def _send(writer: asyncio.StreamWriter, message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    writer.writelines([_LENGTH.pack(len(data)), data])


async def _receive(reader: asyncio.StreamReader) -> Any:
    """The next message, or None at end of stream."""
    try:
        header = await reader.readexactly(_LENGTH.size)
        (size,) = _LENGTH.unpack(header)
        data = await reader.readexactly(size)
    except asyncio.IncompleteReadError:
        return None
    return pickle.loads(data)  # noqa: S301 (frames come from our own worker processes)


def _join(process: BaseProcess, seconds: float = _EXIT_SECONDS) -> int | None:
    process.join(seconds)
    if process.exitcode is None:
        process.kill()
        process.join(seconds)
    return process.exitcode


def _describe(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"
