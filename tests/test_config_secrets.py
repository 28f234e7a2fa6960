"""Secrets never appear in check's summary, in error messages or in logs (SPEC §3)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from test_config_load import SPEC_ENV, SPEC_EXAMPLE

from monitor.config import SecretFilter, Secrets, load_config, masked_target_urls, summarize
from monitor.errors import ConfigErrors

FEED_KEY = "feed-api-key-5c9a2e"
ENV = {**SPEC_ENV, "FEED_KEY": FEED_KEY, "PG_PASSWORD": "pg-pass-77f1"}
SECRETS = [*SPEC_ENV.values(), FEED_KEY, "pg-pass-77f1"]


def spec_config(tmp_path: Path) -> Path:
    """The SPEC §3 example, with secrets in a feed URL, the state URL and an inline target."""
    text = (
        SPEC_EXAMPLE.replace(
            "https://wire.example.net/feed.json",
            "https://wire.example.net/feed.json?key=${FEED_KEY}",
        )
        .replace("state: ./monitor.db", "state: postgresql://monitor:${PG_PASSWORD}@db/monitor")
        .replace(
            '  phone: "ntfys://ntfy.sh/${NTFY_TOPIC}"\n',
            '  phone: "ntfys://ntfy.sh/${NTFY_TOPIC}"\n'
            "  literal: pover://ukeyliteral12345@atokenliteral67890\n"
            "  console: console://\n",
        )
    )
    text += "  - name: literal-secrets\n    query: test\n    notify: [literal, console]\n"
    path = tmp_path / "monitor.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_summary_lists_everything_but_shows_no_secret(tmp_path: Path) -> None:
    """check's summary names feeds, rules and targets, and contains none of the secret values."""
    config = load_config(spec_config(tmp_path), ENV)
    text = summarize(config)
    for secret in SECRETS:
        assert secret not in text
    assert "ukeyliteral12345" not in text and "atokenliteral67890" not in text
    for shown in (
        "2 feeds:",
        "Example World",
        "https://wire.example.net/feed.json?key=***",
        "every 5m",
        "4 rules:",
        "war-dead-repatriation -> desk-slack, phone",
        '(bodies OR remains) NEAR/8 (soldiers OR troops OR defenders OR "war dead")',
        "feeds: tag ukraine; digest every 1h",
        "5 targets:",
        "ntfys://ntfy.sh/***",
        "@ukraine-war",
        "state: postgresql://monitor:***@db/monitor",
        "console://",
    ):
        assert shown in text


def test_masked_target_urls_use_apprise_privacy_then_mask(tmp_path: Path) -> None:
    """Target URLs are shown through Apprise's privacy rendering, with known secrets masked too."""
    config = load_config(spec_config(tmp_path), ENV)
    (slack,) = config.masked_target_urls("desk-slack")
    assert slack.startswith("slack://T...2/A...D/T...Q/")
    (email,) = masked_target_urls(config.targets["desk-email"], config.secrets)
    assert "correct-horse-battery" not in email and "desk-robot" not in email
    assert email.startswith("mailtos://") and "smtp.example.org" in email
    (literal,) = config.masked_target_urls("literal")
    assert literal.startswith("pover://u...5@a...0")


def test_error_messages_do_not_show_secrets(tmp_path: Path) -> None:
    """A secret inside an invalid value is masked in the error that quotes the value."""
    path = tmp_path / "monitor.yaml"
    path.write_text(
        "feeds:\n"
        "  - url: ftp://reader:${FEED_PASSWORD}@example.org/${FEED_KEY}\n"
        "targets:\n"
        "  desk: 'slak://${SLACK_TOKEN}'\n"
        "rules: [{name: r, query: q, notify: desk}]\n",
        encoding="utf-8",
    )
    env = {"FEED_PASSWORD": "hunter2-pw", "FEED_KEY": FEED_KEY, "SLACK_TOKEN": "xoxb-1234-abcd"}
    with pytest.raises(ConfigErrors) as caught:
        load_config(path, env)
    message = str(caught.value)
    assert "ftp://reader:***@example.org/***" in message
    assert "unknown notification service 'slak://'" in message
    for secret in env.values():
        assert secret not in message


def test_secrets_mask_values_encodings_and_url_passwords() -> None:
    """mask() hides each secret, its URL-encoded forms, and any scheme://user:password@."""
    secrets = Secrets(["p@ss word/1", "tok", "longer-token-value"])
    assert secrets.mask("a p@ss word/1 b") == "a *** b"
    assert secrets.mask("x=p%40ss%20word%2F1&y=p%40ss+word%2F1") == "x=***&y=***"
    assert secrets.mask("tok tokens") == "*** ***ens"
    assert secrets.mask("longer-token-value") == "***"
    assert secrets.mask("see https://me:hunter2@host/x and ftp://u@h") == (
        "see https://me:***@host/x and ftp://u@h"
    )
    assert Secrets().mask("http://host:8080/a@b") == "http://host:8080/a@b"
    assert "longer" not in repr(secrets)


def test_secret_filter_masks_messages_arguments_fields_and_tracebacks() -> None:
    """Log records passing the filter lose every secret, wherever in the record it was."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(target)s"))
    handler.addFilter(SecretFilter(Secrets(["s3cr3t-value"])))
    logger = logging.getLogger("test_config_secrets.filter")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "sending to %s failed", "json://u:pw@h/s3cr3t-value", extra={"target": "s3cr3t-value"}
        )
        try:
            raise RuntimeError("token s3cr3t-value rejected")
        except RuntimeError:
            logger.exception("delivery bug %d", 1, extra={"target": ["s3cr3t-value"]})
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "s3cr3t-value" not in output
    assert "pw@" not in output
    assert "WARNING sending to json://u:***@h/*** failed ***" in output
    assert "RuntimeError: token *** rejected" in output
