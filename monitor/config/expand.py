"""``${VAR}`` and ``${VAR:-default}`` in configuration strings (SPEC §3).

Like a POSIX shell, ``${VAR:-default}`` uses the default when the variable is
unset *or empty*; ``$$`` writes one literal ``$``. A ``$`` followed by anything
else is kept as it is, so queries and templates rarely need escaping. Defaults
cannot nest another ``${...}``.

Which substituted values are secrets is decided here too: the text they land
in is known (a target URL, a feed URL with an API key), and so is the name of
the variable (``SLACK_TOKEN``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

_REFERENCE = re.compile(r"\$\$|\$\{(?P<body>[^}]*)\}|\$\{")
_BODY = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>.*))?", re.DOTALL)
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASS|PWD|KEY|AUTH|CREDENTIAL|COOKIE|SESSION|WEBHOOK")

# Shorter values cannot be masked without garbling unrelated text ("***" for
# every "on" in a log line), and are no secret worth the name.
MIN_SECRET_LENGTH = 4

# Places whose values are settings, not credentials; a value substituted
# anywhere else (target and feed URLs, the state URL, queries) is a secret.
_PLAIN_SECTIONS = frozenset({"poll", "delivery", "health", "log_level", "http", "topics"})
_PLAIN_KEYS = {
    "feeds": frozenset({"name", "interval", "tags", "backfill", "enabled", "timeout", "max_size"}),
    "rules": frozenset(
        {"name", "query", "notify", "feeds", "digest", "backfill", "enabled", "template"}
    ),
    "targets": frozenset({"rate_limit", "quiet_hours", "format"}),
}

PathKey: TypeAlias = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Expansion:
    """One string after substitution, and what went into it."""

    value: str
    # (name, substituted value) for values read from the environment; defaults written
    # in the file are no secret (the file shows them) and are not listed.
    variables: tuple[tuple[str, str], ...]
    missing: tuple[str, ...]  # referenced, unset and without default
    malformed: str | None  # the bad ``${...}`` text, if any


def expand(text: str, env: Mapping[str, str]) -> Expansion:
    """Substitute every ``${VAR}`` / ``${VAR:-default}`` in ``text`` from ``env``."""
    if "$" not in text:
        return Expansion(text, (), (), None)
    variables: list[tuple[str, str]] = []
    missing: list[str] = []
    malformed: list[str] = []

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        body = match.group("body")
        parsed = _BODY.fullmatch(body) if body is not None else None
        if parsed is None:
            malformed.append(match.group(0))
            return match.group(0)
        name, default = parsed.group("name"), parsed.group("default")
        value = env.get(name)
        if default is not None and not value:
            return default
        if value is None:
            missing.append(name)
            return ""
        variables.append((name, value))
        return value

    value = _REFERENCE.sub(replace, text)
    return Expansion(value, tuple(variables), tuple(missing), malformed[0] if malformed else None)


def malformed_message(reference: str) -> str:
    """Why a ``${...}`` reference cannot be read, and how to write one."""
    return (
        f"malformed reference {reference!r}: write ${{NAME}} or ${{NAME:-default}}, "
        "and $$ for a literal $"
    )


def missing_message(name: str) -> str:
    """The error for an unset variable without a default (SPEC §3: it names the variable)."""
    return (
        f"environment variable {name!r} is not set "
        f"(set it, or give a default: ${{{name}:-default}})"
    )


def is_secret(path: PathKey, name: str, value: str) -> bool:
    """Whether a value substituted from variable ``name`` at ``path`` must be masked."""
    if len(value) < MIN_SECRET_LENGTH:
        return False
    if _SECRET_NAME.search(name.upper()):
        return True
    section = path[0] if path else None
    if section in _PLAIN_SECTIONS:
        return False
    if section == "state":
        # A file path is no secret; a database URL may carry a password.
        return "://" in value
    plain_keys = _PLAIN_KEYS.get(str(section))
    return not (plain_keys is not None and len(path) >= 3 and path[2] in plain_keys)
