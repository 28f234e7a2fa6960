"""The rule language (SPEC §4): parse queries, compile rules, match entries.

    parse_query(text) -> Query                     one query, checked; @topics unresolved
    compile_rules(rules, topics) -> Matcher        all rules at once, or the first error
    check_rules(rules, topics) -> [(name, error)]  every error at once, for `check`
    Matcher.match(entry) -> (RuleMatch, ...)       matching rules in rule order, with hits

Modules, in the order text flows through them: ``normalize`` (tokens, folding,
stems, numbers), ``parser`` (text to ``nodes``), ``check`` (rules that cannot
work; topic expansion), ``matcher`` (all rules in one structure) and
``evaluate`` (the exact semantics of one rule over an entry's words).
"""

from __future__ import annotations

from monitor.query.matcher import Matcher
from monitor.query.nodes import Query
from monitor.query.rules import check_rules, compile_rules, parse_query

__all__ = ["Matcher", "Query", "check_rules", "compile_rules", "parse_query"]
