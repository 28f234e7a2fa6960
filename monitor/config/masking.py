"""Secrets never appear in logs, ``check``, ``status`` or error messages (SPEC §3).

A :class:`Secrets` holds every value the configuration took from the
environment in a place where credentials live (see
:func:`monitor.config.expand.is_secret`); :meth:`Secrets.mask` replaces each
of them, and the password of any ``scheme://user:password@`` URL, with
``***``. :class:`SecretFilter` applies it to log records;
:func:`masked_target_urls` adds Apprise's own privacy rendering for target URLs,
which also hides secrets written into the file itself.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    from monitor.config.schema import Target

MASK = "***"

# scheme://user:password@host — the password is whatever stands between the
# first ":" after the user and the "@" (RFC 3986 §3.2.1 userinfo).
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@]*:)(?P<password>[^\s/@]+)@")


class Secrets:
    """Values to hide. Immutable; cheap to call :meth:`mask` on every log line."""

    __slots__ = ("_pattern", "_values")

    def __init__(self, values: Iterable[str] = ()) -> None:
        self._values = frozenset(value for value in values if value)
        # A secret may also appear URL-encoded, as Apprise and httpx write it.
        forms = {
            form
            for value in self._values
            for form in (value, quote(value, safe=""), quote(value), quote_plus(value))
        }
        # Longest first, so a secret containing another is replaced whole.
        alternatives = sorted(forms, key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(re.escape(form) for form in alternatives)) if forms else None
        )

    @property
    def values(self) -> frozenset[str]:
        """The secret values themselves."""
        return self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __contains__(self, value: object) -> bool:
        return value in self._values

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Secrets(<{len(self._values)} values>)"

    def mask(self, text: str) -> str:
        """``text`` with every secret value, and every URL password, replaced by ``***``."""
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        if "://" in text:
            text = _USERINFO.sub(lambda m: f"{m.group('head')}{MASK}@", text)
        return text


def mask_url_password(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` URL masked."""
    return Secrets().mask(text)


def masked_target_urls(target: Target, secrets: Secrets) -> tuple[str, ...]:
    """A target's URLs fit to show: Apprise's privacy rendering, then :meth:`Secrets.mask`.

    When Apprise cannot read a URL, its generic masking (first and last
    character of each secret-looking part) stands in for the rendering.
    """
    from monitor.config.services import privacy_url  # Apprise loads its plugins lazily

    return tuple(secrets.mask(privacy_url(url)) for url in target.urls)


# Attributes every LogRecord has; anything else came in through ``extra=``.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class SecretFilter(logging.Filter):
    """A logging filter that masks secrets in a record's message, arguments and fields.

    Attach it to handlers (it then sees records from every logger). The
    secrets can be swapped when a reload brings new ones: assign ``secrets``.
    """

    def __init__(self, secrets: Secrets, name: str = "") -> None:
        super().__init__(name)
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask ``record`` in place; never drops it."""
        mask = self.secrets.mask
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format
            message = f"{record.msg} {record.args}"
        record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when set, so the traceback is masked too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _RECORD_ATTRIBUTES:
                setattr(record, key, _mask_value(value, self.secrets))
        return True


def _mask_value(value: Any, secrets: Secrets) -> Any:
    if isinstance(value, str):
        return secrets.mask(value)
    if type(value) in (list, tuple):  # not NamedTuples: their fields are not secrets
        return type(value)(_mask_value(item, secrets) for item in value)
    if type(value) is dict:
        return {key: _mask_value(item, secrets) for key, item in value.items()}
    return value
