"""Configuration (SPEC §3): read the YAML file, expand ``${VAR}``, validate once, mask secrets.

    path ─► source.read_plain (ruamel's C parser: data, ${VAR}); on any mistake,
            source.read_document (data + line/column of every value)
         ─► schema.Config (pydantic, unknown keys forbidden)   ┐ all errors of the
         ─► crossref (names that must exist or be unique,      ├ file, together, as
            queries, templates, Apprise URLs)                   ┘ ConfigErrors
         ─► Config (frozen), with .secrets and .path

Past :func:`load_config` nothing re-checks the configuration (STYLE point 6).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from monitor.config.crossref import cross_errors
from monitor.config.masking import MASK, SecretFilter, Secrets, masked_target_urls
from monitor.config.schema import (
    Config,
    Delivery,
    Feed,
    Health,
    Poll,
    QuietHours,
    Rule,
    RuleScope,
    Target,
)
from monitor.config.source import Document, read_document, read_plain
from monitor.config.summary import summarize
from monitor.config.translate import schema_errors
from monitor.config.units import (
    RateLimit,
    format_duration,
    format_rate,
    format_size,
    parse_duration,
    parse_rate,
    parse_size,
)
from monitor.errors import ConfigError, ConfigErrors

__all__ = [
    "MASK",
    "Config",
    "Delivery",
    "Feed",
    "Health",
    "Poll",
    "QuietHours",
    "RateLimit",
    "Rule",
    "RuleScope",
    "SecretFilter",
    "Secrets",
    "Target",
    "default_config_path",
    "format_duration",
    "format_rate",
    "format_size",
    "load_config",
    "masked_target_urls",
    "parse_duration",
    "parse_rate",
    "parse_size",
    "summarize",
]

DEFAULT_PATH = Path("config/monitor.yaml")


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the configuration is when ``--config`` is not given (SPEC §2).

    ``$NEWS_MONITOR_CONFIG`` when set and not empty, else ``config/monitor.yaml``
    (relative to the working directory).
    """
    env = os.environ if env is None else env
    return Path(env.get("NEWS_MONITOR_CONFIG") or DEFAULT_PATH)


def load_config(path: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate the configuration file at ``path``.

    ``${VAR}`` and ``${VAR:-default}`` are taken from ``env`` (default:
    ``os.environ``). A relative ``state:`` path is resolved against the current
    working directory. Raises :class:`~monitor.errors.ConfigErrors` with every
    problem of the file, each at its ``file:line:col`` — or a single
    :class:`~monitor.errors.ConfigError` when the file cannot be read or parsed
    at all. No message holds a secret.
    """
    env = os.environ if env is None else env
    # The fast reading has no positions; any mistake sends the file through the
    # reading that has them, so that every message says where.
    plain = read_plain(path, env)
    if plain is not None:
        config, errors = _validate(plain)
        if config is not None and not errors:
            return _finish(config, path, Secrets(plain.secrets), plain.text)
    document = read_document(path, env)
    secrets = Secrets(document.secrets)
    config, errors = _validate(document)
    errors = [*document.errors, *errors]
    if errors or config is None:
        unique = {(str(error.location), error.message): error for error in errors}
        raise ConfigErrors(
            [ConfigError(secrets.mask(error.message), error.location) for error in unique.values()]
        )
    return _finish(config, path, secrets, document.text)


def _validate(document: Document) -> tuple[Config | None, list[ConfigError]]:
    """The schema's and the cross-references' verdict on one reading of the file."""
    errors: list[ConfigError] = []
    config: Config | None = None
    try:
        config = Config.model_validate(document.data)
    except ValidationError as exc:
        errors.extend(schema_errors(exc, document))
    errors.extend(cross_errors(document))
    return config, errors


def _finish(config: Config, path: str | os.PathLike[str], secrets: Secrets, text: str) -> Config:
    config._path = Path(path)
    config._secrets = secrets
    config._text = text
    return config
