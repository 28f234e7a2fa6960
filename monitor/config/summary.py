"""What ``news-monitor check`` prints: the configuration as the service understood it.

Every line goes through the configuration's secret mask, and target URLs
through Apprise's privacy rendering first (SPEC §3: secrets never appear in
``check``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from monitor.config.units import format_duration, format_rate, format_size

if TYPE_CHECKING:
    from monitor.config.schema import Config, Rule


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _table(rows: list[list[str]], mask: Callable[[str], str]) -> list[str]:
    """Rows with columns padded to line up (the last column is not padded), masked first."""
    if not rows:
        return []
    rows = [[mask(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  "
        + "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in rows
    ]


def _rule_details(rule: Rule) -> str:
    details = []
    if rule.feeds is not None:
        scope = [*(f"name {name}" for name in rule.feeds.names)]
        scope += [f"tag {tag}" for tag in rule.feeds.tags]
        details.append("feeds: " + ", ".join(scope))
    if rule.digest is not None:
        details.append(f"digest every {format_duration(rule.digest)}")
    if rule.backfill:
        details.append("backfill")
    if rule.template is not None:
        details.append("custom template")
    if not rule.enabled:
        details.append("DISABLED")
    return "; ".join(details)


def summarize(config: Config) -> str:
    """A human summary of ``config``: settings, feeds, topics, rules and targets, secrets masked."""
    poll, delivery, health = config.poll, config.delivery, config.health
    lines = [
        f"configuration: {config.path}",
        f"state: {config.state}",
        f"poll: every {format_duration(poll.interval)}, timeout {format_duration(poll.timeout)}, "
        f"{poll.concurrency} at once ({poll.per_host} per host), "
        f"max size {format_size(poll.max_size)}, jitter {poll.jitter:.0%}, "
        f"backoff up to {format_duration(poll.max_backoff)}",
        f"delivery: retry for {format_duration(delivery.retry_for)}, "
        f"max age {format_duration(delivery.max_age)}, "
        f"story window {format_duration(delivery.story_window)}, {delivery.workers} workers",
        f"health: feeds failing after {format_duration(health.feed_failing_after)}, "
        f"targets failing after {format_duration(health.target_failing_after)}, "
        f"notify: {', '.join(health.notify) or 'nobody'}",
        f"http: {config.http or 'off'}",
        f"log level: {config.log_level}",
        "",
        f"{_count(len(config.feeds), 'feed')}:",
    ]
    lines += _table(
        [
            [
                feed.label,
                feed.url,
                f"every {format_duration(config.interval_for(feed))}",
                " ".join(
                    [
                        *([f"tags: {', '.join(feed.tags)}"] if feed.tags else []),
                        *(["backfill"] if feed.backfill else []),
                        *(["DISABLED"] if not feed.enabled else []),
                    ]
                ),
            ]
            for feed in config.feeds
        ],
        config.secrets.mask,
    )
    if config.topics:
        lines += ["", f"{_count(len(config.topics), 'topic')}:"]
        topics = [[f"@{name}", query] for name, query in config.topics.items()]
        lines += _table(topics, config.secrets.mask)
    lines += ["", f"{_count(len(config.rules), 'rule')}:"]
    for rule in config.rules:
        lines.append(f"  {rule.name} -> {', '.join(rule.notify)}")
        lines.append(f"    query: {rule.query}")
        details = _rule_details(rule)
        if details:
            lines.append(f"    {details}")
    lines += ["", f"{_count(len(config.targets), 'target')}:"]
    for name, target in config.targets.items():
        options = [
            *([f"rate limit {format_rate(target.rate_limit)}"] if target.rate_limit else []),
            *([f"format {target.format}"] if target.format else []),
        ]
        if target.quiet_hours is not None:
            quiet = target.quiet_hours
            options.append(f"quiet {quiet.start:%H:%M}-{quiet.end:%H:%M} {quiet.timezone}")
        lines.append(f"  {name}" + (f" ({', '.join(options)})" if options else "") + ":")
        lines += [f"    {url}" for url in config.masked_target_urls(target)]
    return config.secrets.mask("\n".join(lines))
