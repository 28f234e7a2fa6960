"""The one narrow seam between the pipeline and the rule language.

Entry in, rule matches out. The pipeline knows nothing of queries beyond this
module, so the rule language (:mod:`monitor.query`) can grow on its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from monitor.model import Entry, RuleMatch

if TYPE_CHECKING:
    from monitor.config import Config


class Matcher(Protocol):
    """All rules of a configuration, compiled once."""

    @property
    def rules(self) -> tuple[str, ...]:
        """The rule names, in configuration order."""
        ...

    def match(self, entry: Entry) -> tuple[RuleMatch, ...]:
        """The rules that match ``entry``, in rule order, each with why it matched."""
        ...


def compile_matcher(config: Config) -> Matcher:
    """Compile every enabled rule of ``config`` (raises QueryError on an invalid rule)."""
    from monitor.query import compile_rules

    rules = {rule.name: rule.query for rule in config.rules if rule.enabled}
    return compile_rules(rules, dict(config.topics))


def match_entry(matcher: Matcher, entry: Entry) -> tuple[RuleMatch, ...]:
    """Entry in, rule matches out."""
    return matcher.match(entry)
