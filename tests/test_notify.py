"""Delivery through real Apprise URLs at local receivers (SPEC §6, issue 2 "Delivery")."""

from __future__ import annotations

import asyncio
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from receivers import HTTPReceiver, SMTPReceiver, point_slack_at

from monitor.errors import DeliveryError
from monitor.model import AlertRecord, Hit, Source
from monitor.notify import RATE_LIMIT_PAUSE, Notifier, SendResult, check_url, url_secrets
from monitor.render import RenderedMessage, render_alert

SECRET_USER = "hookuser-7f3a9c"
SECRET_PASSWORD = "pw-S3cr3t-4d1e8b"
SUMMARY = "Russia returned to Ukraine the bodies of 501 soldiers <script>alert(1)</script>."


@pytest.fixture
def hook() -> Iterator[HTTPReceiver]:
    """A local HTTP receiver for json://, ntfy:// and Slack webhooks."""
    with HTTPReceiver() as receiver:
        yield receiver


@pytest.fixture
def smtp() -> Iterator[SMTPReceiver]:
    """A local SMTP server that requires a login with known secret credentials."""
    with SMTPReceiver(auth=("smtp-user-5e2c", "smtp-pw-91af0d")) as receiver:
        yield receiver


def alert() -> AlertRecord:
    """The demo story as an alert: hits at "bodies" and "soldiers", hostile text included."""
    bodies, soldiers = SUMMARY.index("bodies"), SUMMARY.index("soldiers")
    return AlertRecord(
        id=7,
        rule="war-dead-repatriation",
        title="Russia returns bodies of 501 soldiers",
        link="https://apnews.com/article/1",
        published=datetime(2024, 10, 18, 9, 30, tzinfo=UTC),
        summary=SUMMARY,
        terms=("bodies", "soldiers", "NEAR/8"),
        hits=(
            Hit("summary", bodies, bodies + 6, "bodies"),
            Hit("summary", soldiers, soldiers + 8, "soldiers"),
        ),
        sources=(Source("AP", "https://apnews.com/article/1"), Source("Reuters", None)),
        created_at=datetime(2024, 10, 18, 9, 31, tzinfo=UTC),
    )


def send_alert(notifier: Notifier, target: str) -> tuple[RenderedMessage, SendResult]:
    """Render the alert the way the target wants it and send it."""
    markdown = notifier.wants_markdown(target)
    message = render_alert(alert(), markdown=markdown)
    return message, notifier.send(target, message, markdown=markdown)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the channels -------------------------------------------------------------


def test_json_receives_the_rendered_alert(hook: HTTPReceiver) -> None:
    """json:// posts the rendered title and Markdown body to the receiver."""
    notifier = Notifier({"hook": hook.json_url("/alerts")})
    message, result = send_alert(notifier, "hook")
    assert result == SendResult(ok=True)
    (request,) = hook.wait_for(1)
    assert (request.method, request.path) == ("POST", "/alerts")
    assert (
        request.json["title"]
        == message.title
        == ("[war-dead-repatriation] Russia returns bodies of 501 soldiers")
    )
    assert request.json["message"] == message.body
    assert "the **bodies** of 501 **soldiers**" in request.json["message"]
    assert "<script>" not in request.json["message"]


def test_ntfy_receives_a_plain_text_alert(hook: HTTPReceiver) -> None:
    """ntfy:// (plain HTTP to a private server) gets the topic, title and text body."""
    notifier = Notifier({"phone": hook.ntfy_url("ukraine-desk")})
    assert not notifier.wants_markdown("phone")
    message, result = send_alert(notifier, "phone")
    assert result.ok, result.error
    (request,) = hook.wait_for(1)
    assert request.method == "POST"
    assert request.json["topic"] == "ukraine-desk"
    assert request.json["title"] == message.title
    assert request.json["message"] == message.body
    assert "the «bodies» of 501 «soldiers»" in request.json["message"]


def test_ntfy_markdown_mode_gets_markdown(hook: HTTPReceiver) -> None:
    """ntfy:// with format=markdown is sent Markdown and flagged so for the app."""
    notifier = Notifier({"phone": hook.ntfy_url("desk", markdown=True)})
    assert notifier.wants_markdown("phone")
    _, result = send_alert(notifier, "phone")
    assert result.ok, result.error
    (request,) = hook.wait_for(1)
    assert request.headers["x-markdown"] == "yes"
    assert "**bodies**" in request.json["message"]


def test_email_arrives_over_plain_smtp(smtp: SMTPReceiver) -> None:
    """mailto:// logs in and delivers subject, text and sanitised HTML, without TLS."""
    notifier = Notifier({"desk": smtp.mailto_url("desk@example.org")})
    assert notifier.wants_markdown("desk")
    message, result = send_alert(notifier, "desk")
    assert result.ok, result.error
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_to == ("desk@example.org",)
    assert mail.mail_from == "monitor@example.org"
    assert mail.subject == message.title
    assert "Russia returns bodies of 501 soldiers" in mail.text
    assert mail.html is not None
    assert "<strong>bodies</strong>" in mail.html
    assert "<script" not in mail.html
    assert '<a href="https://apnews.com/article/1">' in mail.html


def test_email_refused_by_server_is_a_failure(smtp: SMTPReceiver) -> None:
    """An SMTP server refusing the message makes the send fail, naming the recipient."""
    smtp.fail_next(1)
    notifier = Notifier({"desk": smtp.mailto_url()})
    _, result = send_alert(notifier, "desk")
    assert not result.ok
    assert result.error is not None
    assert "desk@example.org" in result.error
    assert "smtp-pw-91af0d" not in result.error


def test_slack_payload_reaches_the_webhook_boundary(
    hook: HTTPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """slack:// posts a Slack-formatted payload to the (redirected) webhook URL."""
    point_slack_at(monkeypatch, hook)
    url = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#ukraine-desk"
    notifier = Notifier({"desk-slack": url})
    assert notifier.wants_markdown("desk-slack")
    message, result = send_alert(notifier, "desk-slack")
    assert result.ok, result.error
    (request,) = hook.wait_for(1)
    assert request.path == "/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
    payload = request.json
    assert payload["channel"] == "#ukraine-desk"
    (attachment,) = payload["attachments"]
    assert attachment["title"] == message.title
    # Slack mrkdwn: single-asterisk bold and <url|text> links, "<" never raw.
    assert "*bodies*" in attachment["text"]
    assert "<https://apnews.com/article/1|https://apnews.com/article/1>" in attachment["text"]
    assert "<script" not in attachment["text"]
    assert "TIiajkdnlazkcOXrIdevi7" not in " ".join(notifier.describe("desk-slack"))


def test_console_prints_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """console:// prints the title and plain-text body to standard output."""
    notifier = Notifier({"terminal": "console://"})
    assert not notifier.wants_markdown("terminal")
    message, result = send_alert(notifier, "terminal")
    assert result.ok
    out = capsys.readouterr().out
    assert out == f"{message.title}\n{message.body}\n\n"
    assert "«bodies»" in out


def test_asend_delivers_from_the_event_loop(hook: HTTPReceiver) -> None:
    """asend delivers without blocking the event loop."""
    notifier = Notifier({"hook": hook.json_url()})

    async def main() -> SendResult:
        return await notifier.asend("hook", RenderedMessage("t", "b"), markdown=False)

    assert asyncio.run(main()).ok
    assert hook.wait_for(1)[0].json["message"] == "b"


# -- failures -----------------------------------------------------------------


def test_server_error_is_a_failure_without_secrets(
    hook: HTTPReceiver, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """A 500 answer fails the send with the status in the error and no secret anywhere."""
    caplog.set_level(logging.DEBUG)
    hook.respond_with(500)
    url = hook.json_url("/hook", user=SECRET_USER, password=SECRET_PASSWORD)
    notifier = Notifier({"hook": url})
    _, result = send_alert(notifier, "hook")
    assert not result.ok
    assert result.retry_after is None
    assert result.error is not None
    assert "500" in result.error
    assert "JSON" in result.error
    assert f"127.0.0.1:{hook.port}/hook" in result.error
    assert result.failed == (f"json://****:****@127.0.0.1:{hook.port}/hook",)
    # The secret was really used (basic auth), and is never shown.
    assert hook.wait_for(1)[0].headers["authorization"].startswith("Basic ")
    captured = capsys.readouterr()
    shown = [result.error, *result.failed, *notifier.describe("hook"), caplog.text]
    shown += [captured.out, captured.err]
    for secret in (SECRET_USER, SECRET_PASSWORD):
        assert all(secret not in text for text in shown)


def test_rate_limit_is_a_pause(hook: HTTPReceiver) -> None:
    """A 429 answer fails the send with a retry_after pause instead of a plain failure."""
    hook.respond_with(429, {"Retry-After": "7"}, count=1)
    notifier = Notifier({"hook": hook.json_url()})
    _, result = send_alert(notifier, "hook")
    assert not result.ok
    assert result.retry_after == RATE_LIMIT_PAUSE
    assert result.error is not None and "429" in result.error
    _, again = send_alert(notifier, "hook")  # the receiver recovered
    assert again == SendResult(ok=True)


def test_unreachable_port_is_a_specific_failure() -> None:
    """Nobody listening: the error names the service and the connection failure."""
    port = closed_port()
    notifier = Notifier({"hook": f"json://127.0.0.1:{port}/hook"})
    _, result = send_alert(notifier, "hook")
    assert not result.ok
    assert result.retry_after is None
    assert result.error == (
        f"JSON json://127.0.0.1:{port}/hook: "
        "A Connection error occurred sending JSON notification to 127.0.0.1."
    )


def test_slow_target_times_out(hook: HTTPReceiver) -> None:
    """A target that does not answer within the timeout fails with a timeout error."""
    hook.respond_with(200, body=b"ok", delay=2.0, count=1)
    notifier = Notifier({"hook": hook.json_url()}, timeout=0.3)
    _, result = send_alert(notifier, "hook")
    assert not result.ok
    assert result.error is not None and "no answer within 0.3s" in result.error


def test_one_failing_service_fails_the_target(hook: HTTPReceiver) -> None:
    """A target with several URLs is accepted only when every service accepted."""
    with HTTPReceiver() as broken:
        broken.respond_with(503)
        notifier = Notifier({"both": [hook.json_url("/ok"), broken.json_url("/down")]})
        _, result = send_alert(notifier, "both")
        assert not result.ok
        assert result.error is not None
        assert result.error.startswith("1 of 2 services failed: JSON ")
        assert "503" in result.error
        assert result.failed == (f"json://127.0.0.1:{broken.port}/down",)
        assert len(hook.wait_for(1)) == 1  # the healthy service still got it
        assert len(broken.wait_for(1)) == 1


def test_mixed_target_gets_plain_text(hook: HTTPReceiver) -> None:
    """A target mixing a text service with Markdown services is sent plain text."""
    notifier = Notifier({"mixed": [hook.json_url(), hook.ntfy_url("desk")]})
    assert not notifier.wants_markdown("mixed")


# -- configuration errors -----------------------------------------------------


def test_invalid_urls_are_all_reported_masked() -> None:
    """Every unusable URL becomes a DeliveryError naming its target, with no secret in it."""
    notifier = Notifier(
        {
            "ok": "console://",
            "bad-slack": "slack://onlytoken-abcdef123456",
            "bad": ["console://", "nosuchservice://user:pass-xyz-123@host/token"],
            "empty": [],
        }
    )
    assert notifier.targets == ("ok",)
    messages = [str(error) for error in notifier.errors]
    assert messages == [
        "target 'bad-slack': not a valid Apprise URL: slack://… "
        "(the Slack service rejected it; check its tokens and options)",
        "target 'bad': not a valid Apprise URL: nosuchservice://… "
        "(no Apprise service handles nosuchservice://)",
        "target 'empty': no Apprise URL given",
    ]
    assert all(isinstance(error, DeliveryError) for error in notifier.errors)
    result = notifier.send("bad-slack", RenderedMessage("t", "b"))
    assert not result.ok
    assert result.error is not None and result.error.startswith("not a valid Apprise URL")
    assert "onlytoken" not in " ".join([*messages, *notifier.describe("bad-slack")])


def test_unknown_target_is_an_error() -> None:
    """Sending to a name that was never configured raises DeliveryError."""
    notifier = Notifier({"ok": "console://"})
    with pytest.raises(DeliveryError, match="no such target"):
        notifier.send("nope", RenderedMessage("t", "b"))


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("json://127.0.0.1/hook", None),
        ("console://", None),
        ("mailtos://user:pw@smtp.example.org?to=desk@example.org", None),
        ("foo://bar", "no Apprise service handles foo://"),
        ("no scheme at all", "no Apprise service handles a URL without scheme"),
        ("slack://x", "the Slack service rejected it"),
    ],
)
def test_check_url(url: str, problem: str | None) -> None:
    """check_url says why a URL cannot be used, for configuration validation."""
    found = check_url(url)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_describe_masks_configured_and_token_like_secrets() -> None:
    """describe() scrubs explicit secrets and token-like URL parts Apprise leaves visible."""
    notifier = Notifier(
        {
            "phone": "ntfys://ntfy.sh/ukrainedeskalerts",
            "hook": "json://hooks.example.org/in/short?key=abc",
        },
        secrets=["hooks.example.org"],
    )
    (phone,) = notifier.describe("phone")
    assert phone.startswith("ntfys://ntfy.sh/****?")
    (hook,) = notifier.describe("hook")
    assert hook.startswith("json://****/in/short")


@pytest.mark.parametrize(
    ("url", "secrets"),
    [
        ("json://u:p@h/x", {"u", "p"}),
        ("ntfys://ntfy.sh/ukrainedeskalerts", {"ukrainedeskalerts"}),
        ("slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#desk", {"TIiajkdnlazkcOXrIdevi7"}),
        ("tgram://123456789abc:AAtokentokentoken/42", {"123456789abc", "AAtokentokentoken"}),
        ("json://h/hook?token=0123456789abcdef", {"0123456789abcdef"}),
        ("mailto://me%40x.org:p%2Fw@smtp.x.org", {"me@x.org", "p/w"}),
    ],
)
def test_url_secrets(url: str, secrets: set[str]) -> None:
    """User, password and token-like URL parts count as secrets."""
    assert url_secrets(url) == secrets


def test_apprise_logs_stay_out_of_our_logs(hook: HTTPReceiver) -> None:
    """Apprise's own warnings are captured in results, never propagated to our handlers."""

    class Collect(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.names: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.names.append(record.name)

    collect = Collect()
    root = logging.getLogger()
    root.addHandler(collect)
    try:
        hook.respond_with(500)
        notifier = Notifier({"hook": hook.json_url()})
        result = notifier.send("hook", RenderedMessage("t", "b"))
    finally:
        root.removeHandler(collect)
    assert result.error is not None and "error=500" in result.error  # Apprise did warn
    assert [name for name in collect.names if name.startswith("apprise")] == []


# -- the receivers themselves -------------------------------------------------


def _post(url: str, body: bytes, content_type: str = "application/json") -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_http_receiver_plays_planned_answers(hook: HTTPReceiver) -> None:
    """Counted answers are used in order, an uncounted one persists, reset restores 200."""
    hook.respond_with(500, count=2)
    hook.respond_with(429, {"Retry-After": "7"}, count=1)
    statuses = [_post(f"{hook.url}/x", b"{}") for _ in range(4)]
    assert statuses == [500, 500, 429, 200]
    hook.respond_with(503)
    assert [_post(f"{hook.url}/x", b"{}") for _ in range(2)] == [503, 503]
    hook.reset()
    assert _post(f"{hook.url}/x", b"{}") == 200
    assert len(hook.requests) == 1


def test_http_receiver_records_requests(hook: HTTPReceiver) -> None:
    """Requests are recorded with path, lower-case headers, body and parsed JSON."""
    _post(f"{hook.url}/a?b=1", b'{"k": [1, 2]}')
    _post(f"{hook.url}/c", b"not json", "text/plain")
    first, second = hook.wait_for(2)
    assert (first.method, first.path, first.json) == ("POST", "/a?b=1", {"k": [1, 2]})
    assert first.headers["content-type"] == "application/json"
    assert (second.body, second.json, second.text) == (b"not json", None, "not json")
    with pytest.raises(AssertionError, match="expected 3 HTTP requests"):
        hook.wait_for(3, timeout=0.05)
