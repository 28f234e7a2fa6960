"""Delivery through Apprise: the only module that imports it (STYLE point 7).

One :class:`apprise.Apprise` object per configured target, so the outbox
knows exactly which target failed and why. A target with several URLs is one
object with several services; it has *accepted* a message only when every
service did. Success is read from Apprise's structured ``AppriseResult``
(overall status and one ``NotifyResult`` per service), never from log text;
the last warning a failed service logged is used only to *explain* a failure.

Secrets: target URLs hold tokens and passwords. Everything this module says
about a target (``describe``, ``SendResult.error``, ``Notifier.errors``) starts
from Apprise's privacy-masked URL (``url(privacy=True)``) and then scrubs every
known secret: the values the configuration substituted from the environment
(``secrets=``), the user and password of each URL, and every token-like path
segment, query value or host (12+ characters of ``[A-Za-z0-9_-]``) — Apprise
leaves e.g. an ntfy topic or a generic webhook's path token visible. Apprise's
own logger is kept at WARNING and detached from the root logger, so it never
prints (its warnings are still captured in the results we read).

HTTP 429: Apprise 2.3.0 exposes neither the HTTP status nor the Retry-After
header of a service's last response as data. Its plugins log a failed request
as ``"... error=<status>."``; when every failed service's last error is 429,
:meth:`Notifier.send` reports a pause of :data:`RATE_LIMIT_PAUSE` seconds in
``SendResult.retry_after`` (SPEC §6: a 429 is a pause, not a failure). This
classifies a failure already decided by the structured status; it never
decides success.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import apprise
from apprise import AppriseResultStatus, NotifyFormat

from monitor.errors import DeliveryError
from monitor.render import RenderedMessage

CONSOLE_SCHEME = "console"
RATE_LIMIT_PAUSE = 60.0  # seconds to pause a target that answered 429 (no Retry-After exposed)
_MASK = "****"
_MIN_SECRET = 4  # shorter values cannot be scrubbed from text without mangling it
_TOKEN = re.compile(r"[A-Za-z0-9_-]{12,}")
_HTTP_STATUS = re.compile(r"\berror=(\d{3})\b")
_ERROR_MAX = 500


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one attempt to deliver a message to one target came to."""

    ok: bool
    error: str | None = None  # short, specific, secrets masked
    # Seconds the target asked us to wait (HTTP 429): a pause, not a failed attempt.
    retry_after: float | None = None
    failed: tuple[str, ...] = ()  # masked URLs of the services that did not accept


# -- Apprise set-up -----------------------------------------------------------


def _quiet_apprise_logging() -> None:
    """Keep Apprise's logger at WARNING and away from our handlers (it may name secrets)."""
    log = logging.getLogger(apprise.LOGGER_NAME)
    log.setLevel(logging.WARNING)
    # Per-call capture handlers attach to this logger itself, so results still
    # get the warnings; only propagation to the root handlers is cut.
    log.propagate = False
    if not any(isinstance(h, logging.NullHandler) for h in log.handlers):
        log.addHandler(logging.NullHandler())


_quiet_apprise_logging()
_console_lock = threading.Lock()


def _console(body: str, title: str, *args: Any, **kwargs: Any) -> bool:
    """Print an alert to standard output: the ``console://`` target (demo, tests)."""
    # Resolve sys.stdout now, not at import: pytest's capsys and redirections replace it.
    out = sys.stdout
    with _console_lock:
        out.write(f"{title}\n{body}\n\n" if title else f"{body}\n\n")
        out.flush()
    return True


def _plugins() -> Any:
    """Apprise's plugin registry (a singleton)."""
    return apprise.NotificationManager()  # type: ignore[no-untyped-call]  # untyped in Apprise


if CONSOLE_SCHEME not in _plugins():
    # Apprise's custom-plugin decorator, applied as a call: it is untyped, and
    # as "@" it would make _console untyped for mypy too.
    register = apprise.decorators.notify(  # type: ignore[no-untyped-call]
        on=CONSOLE_SCHEME, name="Console", body_format=NotifyFormat.TEXT
    )
    register(_console)


# -- secrets ------------------------------------------------------------------


class _Scrubber:
    """Replaces known secret strings (raw and URL-encoded) by ``****``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms = set()
        for secret in secrets:
            if len(secret) >= _MIN_SECRET:
                forms.update({secret, quote(secret, safe=""), quote(secret)})
        self._forms = sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            text = text.replace(form, _MASK)
        return text


def url_secrets(url: str) -> set[str]:
    """The parts of an Apprise URL treated as secret: user, password and token-like parts."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return set()
    found: set[str] = set()
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if userinfo:
        user, _, password = userinfo.partition(":")
        found.update(unquote(v) for v in (user, password) if v)
    # Some services put tokens where host and port go (tgram://BOT_ID:TOKEN/...).
    candidates = [*hostport.split(":"), *parts.path.split("/")]
    candidates += [value for _, value in parse_qsl(parts.query)]
    found.update(unquote(c) for c in candidates if _TOKEN.fullmatch(unquote(c)))
    return found


def _scheme_only(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    return f"{scheme}://…" if sep and scheme.isascii() and scheme.isalnum() else "(no scheme)"


def _instantiate(url: str, asset: apprise.AppriseAsset) -> tuple[Any, str | None]:
    """An Apprise service for ``url``, or None and why not (masked)."""
    service = apprise.Apprise.instantiate(url, asset=asset)
    if service is not None:
        # Apprise sleeps up to 5.5 s between two messages to one service; the outbox
        # paces targets itself (rate_limit, 429 pauses), and the sleep would stall a
        # whole delivery round behind one slow target.
        service.request_rate_per_sec = 0
        return service, None
    scheme, sep, _ = url.partition("://")
    scheme = scheme.lower() if sep else ""
    plugins = _plugins()
    if not scheme or scheme not in plugins:
        why = f"no Apprise service handles {scheme + '://' if scheme else 'a URL without scheme'}"
    else:
        name = plugins[scheme].service_name
        why = f"the {name} service rejected it; check its tokens and options"
    return None, f"not a valid Apprise URL: {_scheme_only(url)} ({why})"


def check_url(url: str) -> str | None:
    """Why ``url`` is not a usable Apprise URL (secrets masked), or None when it is."""
    return _instantiate(url, apprise.AppriseAsset())[1]


# -- the notifier -------------------------------------------------------------


@dataclass(slots=True)
class _Target:
    name: str
    apprise: apprise.Apprise
    services: tuple[Any, ...]
    lock: threading.Lock


class Notifier:
    """Sends rendered messages to named targets, one Apprise object per target.

    ``targets`` maps a target name to its Apprise URLs (already
    environment-expanded, so they hold secrets). ``secrets`` are extra strings
    to mask in everything reported (the configuration's expanded variables).
    Invalid URLs do not raise: each becomes a :class:`DeliveryError` in
    :attr:`errors` (all of them, so ``check`` can report every one at once),
    and sending to that target fails with the same message.
    """

    def __init__(
        self,
        targets: Mapping[str, Sequence[str] | str],
        *,
        timeout: float = 30,
        secrets: Iterable[str] = (),
    ) -> None:
        if not (math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.timeout = float(timeout)
        all_secrets = set(secrets)
        for urls in targets.values():
            for url in [urls] if isinstance(urls, str) else urls:
                all_secrets |= url_secrets(url)
        self._mask = _Scrubber(all_secrets)
        asset = apprise.AppriseAsset(secure_logging=True)
        self._targets: dict[str, _Target] = {}
        self._invalid: dict[str, DeliveryError] = {}
        errors: list[DeliveryError] = []
        for name, urls in targets.items():
            url_list = [urls] if isinstance(urls, str) else list(urls)
            services, problems = [], []
            for url in url_list:
                service, problem = _instantiate(url, asset)
                if problem is None:
                    services.append(service)
                else:
                    problems.append(self._mask(problem))
            if not url_list:
                problems.append("no Apprise URL given")
            if problems:
                target_errors = [DeliveryError(name, problem) for problem in problems]
                errors.extend(target_errors)
                self._invalid[name] = DeliveryError(name, "; ".join(problems))
                continue
            notifier = apprise.Apprise(asset=asset)
            for service in services:
                notifier.add(service)
            self._targets[name] = _Target(name, notifier, tuple(services), threading.Lock())
        self.errors: tuple[DeliveryError, ...] = tuple(errors)

    @property
    def targets(self) -> tuple[str, ...]:
        """Names of the usable targets."""
        return tuple(self._targets)

    def _target(self, name: str) -> _Target:
        target = self._targets.get(name)
        if target is None:
            raise self._invalid.get(name) or DeliveryError(name, "no such target")
        return target

    def describe(self, target: str) -> list[str]:
        """The target's URLs as they may be shown: privacy-masked, secrets scrubbed."""
        if target in self._invalid:
            return [self._invalid[target].message]
        return [self._mask(s.url(privacy=True)) for s in self._target(target).services]

    def wants_markdown(self, target: str) -> bool:
        """Whether to render Markdown for ``target``.

        True when every service takes Markdown as Markdown or converts it to
        HTML (email, Slack, Telegram, JSON...); False when any takes plain text
        (ntfy without ``?format=markdown``, console): Apprise passes Markdown
        to a text service unconverted, while plain text is escaped for the
        others, so text is the safe common form.
        """
        if target in self._invalid:
            return False
        rich = (NotifyFormat.MARKDOWN, NotifyFormat.HTML)
        services = self._target(target).services
        return all(s.resolve_format(NotifyFormat.MARKDOWN) in rich for s in services)

    def send(self, target: str, message: RenderedMessage, *, markdown: bool = True) -> SendResult:
        """Deliver ``message`` to every service of ``target`` and report the outcome.

        Blocks for up to ``timeout`` seconds. One message at a time per target
        (a lock), which also keeps a burst from tripping a service's rate limit.
        Raises :class:`DeliveryError` only for a target name that was never
        configured; an invalid target's URL error comes back as a failed result.
        """
        if target in self._invalid:
            return SendResult(ok=False, error=self._invalid[target].message)
        entry = self._target(target)
        with entry.lock:
            result = entry.apprise.notify(
                body=message.body,
                title=message.title,
                body_format=NotifyFormat.MARKDOWN if markdown else NotifyFormat.TEXT,
                timeout=self.timeout,
            )
            try:
                return self._judge(entry, result)
            finally:
                result.close()

    async def asend(
        self, target: str, message: RenderedMessage, *, markdown: bool = True
    ) -> SendResult:
        """:meth:`send` in a worker thread, so the event loop keeps running.

        Apprise's ``async_notify`` would still run blocking plugins, and the
        per-target lock is a thread lock; a thread is the simple safe choice.
        """
        return await asyncio.to_thread(self.send, target, message, markdown=markdown)

    # -- reading Apprise's result -------------------------------------------

    def _judge(self, target: _Target, result: Any) -> SendResult:
        services = list(result)
        success = AppriseResultStatus.SUCCESS
        if result.status == success and services and all(r.status == success for r in services):
            return SendResult(ok=True)
        failed = [r for r in services if r.status != success]
        if not failed:  # the call itself failed (no service ran, or a bad message)
            why = _last_problem(result.call_logs()) or "no service was attempted"
            error = f"{result.status.name.lower()}: {why}"
            return SendResult(ok=False, error=self._short(error))
        reasons, statuses = [], []
        for r in failed:
            problem = _last_problem(r.logs())
            statuses.append(_http_status(problem))
            if r.status == AppriseResultStatus.TIMEOUT:
                problem = f"no answer within {self.timeout:g}s"
            where = f"{r.name} {_without_query(r.url)}"
            reasons.append(f"{where}: {problem or r.status.name.lower()}")
        prefix = f"{len(failed)} of {len(services)} services failed: " if len(services) > 1 else ""
        rate_limited = all(status == 429 for status in statuses)
        return SendResult(
            ok=False,
            error=self._short(prefix + "; ".join(reasons)),
            retry_after=RATE_LIMIT_PAUSE if rate_limited else None,
            failed=tuple(self._mask(_without_query(r.url)) for r in failed),
        )

    def _short(self, text: str) -> str:
        text = " ".join(self._mask(text).split())
        return text if len(text) <= _ERROR_MAX else text[: _ERROR_MAX - 1] + "…"


def _level(name: str) -> int:
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.WARNING


def _last_problem(entries: Iterable[Any]) -> str | None:
    """The message of the last WARNING-or-worse log entry Apprise captured."""
    last = None
    for entry in entries:
        if _level(entry.level) >= logging.WARNING:
            last = entry.message
    return last


def _http_status(problem: str | None) -> int | None:
    match = _HTTP_STATUS.search(problem or "")
    return int(match.group(1)) if match else None


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]
