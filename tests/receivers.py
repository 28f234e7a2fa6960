"""Local receivers for delivery tests: what a target would have received.

Each receiver listens on 127.0.0.1 with a port the OS picks (safe under
``pytest -n``), records everything thread-safely, and works from the test
process for in-process tests and for the daemon run as a subprocess alike.
Use them as context managers (or call ``close()``)::

    with HTTPReceiver() as hook, SMTPReceiver() as smtp:
        targets = {"hook": hook.json_url(), "push": hook.ntfy_url("alerts"),
                   "mail": smtp.mailto_url()}
        ...
        (request,) = hook.wait_for(1)
        assert request.json["title"] == "[rule] headline"

HTTPReceiver
    Records every request (:class:`Request`: method, path with query,
    lower-case headers, body bytes, parsed JSON). Answers 200 ``ok`` unless
    told otherwise with :meth:`HTTPReceiver.respond_with` — e.g. 500 for the
    next three requests, then 200; 429 with ``Retry-After``; or a slow reply.
    URL helpers: ``json_url`` (Apprise ``json://``, an HTTP POST of
    ``{"version", "title", "message", "type", "attachments"}`` to the path),
    ``ntfy_url`` (``ntfy://`` is plain HTTP in Apprise's "private" mode: a JSON
    POST to ``/`` with ``{"topic", "title", "message"}``; ``ntfys://`` would be
    HTTPS), and ``slack_webhook_base`` for :func:`point_slack_at`.

SMTPReceiver
    An aiosmtpd server collecting :class:`Mail` (envelope, parsed
    ``email.message.EmailMessage``, decoded subject and text). ``mailto_url``
    gives a ``mailto://`` URL in Apprise's "insecure" mode: plain SMTP, no
    STARTTLS, no implicit TLS (the server offers no TLS, so an attempt would
    fail the test). With ``auth=(user, password)`` it accepts AUTH LOGIN/PLAIN
    over plain text for exactly those credentials, so tests can put a known
    secret in the URL.

point_slack_at(monkeypatch, receiver)
    Apprise's Slack plugin posts webhooks to the fixed
    ``NotifySlack.webhook_url`` ("https://hooks.slack.com/services"). This
    points that class attribute at the receiver for one test (pytest's
    monkeypatch restores it), the HTTP boundary SPEC §6 asks the Slack test to
    use. Only the host changes; the plugin builds the same path
    (``/services/TOKEN_A/TOKEN_B/TOKEN_C``) and Slack-formatted payload.
    Slack webhooks answer the plain text ``ok``, which is the default reply.
    The patch only affects the process it runs in: for the daemon as a
    subprocess, run it through a wrapper that applies the same assignment.
"""

from __future__ import annotations

import email.policy
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

_HOST = "127.0.0.1"


def _wait(count: Callable[[], int], n: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while count() < n:
        if time.monotonic() >= deadline:
            raise AssertionError(f"expected {n} {what} within {timeout}s, got {count()}")
        time.sleep(0.01)


# -- HTTP ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Request:
    """One request an HTTPReceiver saw."""

    method: str
    path: str  # with the query string
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    json: Any = None  # the parsed body when it is JSON, else None

    @property
    def text(self) -> str:
        """The body decoded as UTF-8."""
        return self.body.decode("utf-8", "replace")


@dataclass(slots=True)
class _Plan:
    status: int
    headers: dict[str, str]
    body: bytes
    remaining: int | None  # None for the default answer
    delay: float


@dataclass(slots=True)
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: list[Request] = field(default_factory=list)
    plans: list[_Plan] = field(default_factory=list)
    default: _Plan = field(default_factory=lambda: _Plan(200, {}, b"ok", None, 0.0))

    def next_plan(self) -> _Plan:
        with self.lock:
            while self.plans:
                plan = self.plans[0]
                if plan.remaining is not None and plan.remaining > 0:
                    plan.remaining -= 1
                    return plan
                self.plans.pop(0)
            return self.default


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        state = self.server.state
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        parsed = None
        if body and "json" in headers.get("content-type", ""):
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        plan = state.next_plan()  # chosen in arrival order
        with state.lock:
            state.requests.append(Request(self.command, self.path, headers, body, parsed))
        if plan.delay:
            time.sleep(plan.delay)
        self.send_response(plan.status)
        for name, value in plan.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(plan.body)))
        self.end_headers()
        self.wfile.write(plan.body)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read the recorded requests instead."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class HTTPReceiver:
    """A threaded HTTP server on 127.0.0.1 recording every request (see module doc)."""

    def __init__(self) -> None:
        self._server = _Server((_HOST, 0), _Handler)
        self._server.state = _State()
        self.port: int = self._server.server_address[1]
        self.url = f"http://{_HOST}:{self.port}"
        # A short poll interval makes close() (shutdown) quick.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def __enter__(self) -> HTTPReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def respond_with(
        self,
        status: int,
        headers: Mapping[str, str] | None = None,
        count: int | None = None,
        *,
        body: bytes = b"",
        delay: float = 0.0,
    ) -> None:
        """Set how the receiver answers.

        With ``count``, the next ``count`` requests get ``status`` (calls queue
        up in order); without, ``status`` becomes the answer to every request
        after the queue, replacing the default 200 ``ok``. So
        ``respond_with(500, count=3)`` fails three requests then accepts again;
        ``respond_with(500)`` fails everything from now on, and
        ``respond_with(429, {"Retry-After": "7"}, count=1)`` rate-limits once.
        ``delay`` holds each reply that many seconds (slow targets, timeouts).
        """
        plan = _Plan(status, dict(headers or {}), body, count, delay)
        with self._server.state.lock:
            if count is None:
                self._server.state.default = plan
            else:
                self._server.state.plans.append(plan)

    def reset(self) -> None:
        """Forget recorded requests and planned replies; answer 200 ``ok`` again."""
        with self._server.state.lock:
            self._server.state.requests.clear()
            self._server.state.plans.clear()
            self._server.state.default = _Plan(200, {}, b"ok", None, 0.0)

    @property
    def requests(self) -> list[Request]:
        """Every request so far, in arrival order (a copy)."""
        with self._server.state.lock:
            return list(self._server.state.requests)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Request]:
        """Wait until at least ``n`` requests arrived; return all of them."""
        _wait(lambda: len(self.requests), n, timeout, "HTTP requests")
        return self.requests

    def json_url(self, path: str = "/hook", *, user: str = "", password: str = "") -> str:
        """An Apprise ``json://`` URL posting to ``path`` here (optionally with basic auth)."""
        return f"json://{_userinfo(user, password)}{_HOST}:{self.port}{path}"

    def ntfy_url(self, topic: str = "alerts", *, markdown: bool = False) -> str:
        """An Apprise ``ntfy://`` URL (plain HTTP, private server mode) for ``topic``."""
        query = "?format=markdown" if markdown else ""
        return f"ntfy://{_HOST}:{self.port}/{quote(topic, safe='')}{query}"

    @property
    def slack_webhook_base(self) -> str:
        """What :func:`point_slack_at` puts in place of https://hooks.slack.com/services."""
        return f"{self.url}/services"


def _userinfo(user: str, password: str) -> str:
    if not user:
        return ""
    secret = f":{quote(password, safe='')}" if password else ""
    return f"{quote(user, safe='')}{secret}@"


def point_slack_at(monkeypatch: pytest.MonkeyPatch, receiver: HTTPReceiver) -> None:
    """Make Apprise's Slack webhooks post to ``receiver`` for this test only."""
    from apprise.plugins.slack import NotifySlack

    monkeypatch.setattr(NotifySlack, "webhook_url", receiver.slack_webhook_base)


# -- SMTP ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Mail:
    """One message an SMTPReceiver accepted."""

    mail_from: str
    rcpt_to: tuple[str, ...]
    message: EmailMessage
    raw: bytes

    @property
    def subject(self) -> str:
        """The decoded Subject header."""
        return str(self.message["subject"] or "")

    @property
    def text(self) -> str:
        """The decoded text/plain part (else the text/html part, else empty)."""
        part = self.message.get_body(preferencelist=("plain", "html"))
        return part.get_content() if part is not None else ""

    @property
    def html(self) -> str | None:
        """The decoded text/html part, if the message has one."""
        part = self.message.get_body(preferencelist=("html",))
        return part.get_content() if part is not None else None


class _MailHandler:
    def __init__(self, receiver: SMTPReceiver) -> None:
        self.receiver = receiver

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.receiver._accept(envelope)


class _BoundController(Controller):
    """aiosmtpd's Controller on a socket we bound to port 0 ourselves.

    Controller wants a fixed port (it connects to it to check the server is
    up); binding first and handing over the socket avoids racing for one.
    """

    def __init__(self, handler: Any, sock: socket.socket, **kwargs: Any) -> None:
        super().__init__(handler, hostname=_HOST, port=sock.getsockname()[1], **kwargs)
        self._sock = sock

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self._sock)


class SMTPReceiver:
    """An SMTP server on 127.0.0.1 collecting messages (see module doc)."""

    def __init__(self, *, auth: tuple[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._mails: list[Mail] = []
        self._failures: list[str] = []
        self.auth = auth
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((_HOST, 0))
        sock.listen(16)
        sock.setblocking(False)
        self.port: int = sock.getsockname()[1]
        # aiosmtpd warns about AUTH without TLS (the point here) and about its own
        # deprecated Session.login_data on every login; only errors are news.
        logging.getLogger("mail.log").setLevel(logging.ERROR)
        options: dict[str, Any] = {}
        if auth is not None:
            options.update(authenticator=self._authenticate, auth_require_tls=False)
        self._controller = _BoundController(_MailHandler(self), sock, **options)
        self._controller.start()

    def __enter__(self) -> SMTPReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server."""
        self._controller.stop()

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and self.auth is not None:
            given = (data.login.decode(), data.password.decode())
            return AuthResult(success=given == self.auth)
        return AuthResult(success=False)

    def fail_next(self, n: int = 1, reply: str = "451 4.3.0 Try again later") -> None:
        """Refuse the next ``n`` messages with ``reply`` (a temporary failure by default)."""
        with self._lock:
            self._failures.extend([reply] * n)

    def _accept(self, envelope: Envelope) -> str:
        with self._lock:
            if self._failures:
                return self._failures.pop(0)
            raw = envelope.original_content or envelope.content or b""
            raw = raw if isinstance(raw, bytes) else raw.encode()
            message = BytesParser(policy=email.policy.default).parsebytes(raw)
            assert isinstance(message, EmailMessage)
            mail = Mail(envelope.mail_from or "", tuple(envelope.rcpt_tos), message, raw)
            self._mails.append(mail)
        return "250 Message accepted for delivery"

    @property
    def mails(self) -> list[Mail]:
        """Every accepted message so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._mails)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Mail]:
        """Wait until at least ``n`` messages arrived; return all of them."""
        _wait(lambda: len(self.mails), n, timeout, "mails")
        return self.mails

    def mailto_url(
        self,
        to: str = "desk@example.org",
        *,
        sender: str = "monitor@example.org",
        user: str | None = None,
        password: str | None = None,
    ) -> str:
        """A ``mailto://`` URL for plain SMTP here: ``mode=insecure``, no STARTTLS.

        Credentials default to the receiver's ``auth`` (if any); Apprise logs
        in only when both user and password are set.
        """
        if user is None and self.auth is not None:
            user, password = self.auth
        userinfo = _userinfo(user or "", password or "")
        query = f"from={quote(sender)}&to={quote(to)}&mode=insecure"
        return f"mailto://{userinfo}{_HOST}:{self.port}?{query}"
