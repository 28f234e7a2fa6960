"""``news-monitor notify-test [TARGET]``: prove each target accepts a message."""

from __future__ import annotations

import argparse

from monitor.commands.common import load
from monitor.config.translate import did_you_mean
from monitor.errors import ConfigError
from monitor.notify import Notifier
from monitor.render import render_test_message


def cmd_notify_test(args: argparse.Namespace) -> int:
    """Send a test message to one or every target; exit 1 if any refused it."""
    config = load(args)
    names = list(config.targets)
    if args.target is not None:
        if args.target not in config.targets:
            known = ", ".join(names) or "none"
            hint = did_you_mean(args.target, names)
            raise ConfigError(f"no target named {args.target!r}{hint} (targets: {known})")
        names = [args.target]
    notifier = Notifier(
        {name: config.targets[name].urls for name in names}, secrets=config.secrets.values
    )
    failed = 0
    for name in names:
        markdown = notifier.wants_markdown(name)
        result = notifier.send(name, render_test_message(), markdown=markdown)
        if result.ok:
            print(f"{name}: ok")
        else:
            failed += 1
            print(f"{name}: FAILED: {config.secrets.mask(result.error or 'unknown error')}")
    return 1 if failed else 0
