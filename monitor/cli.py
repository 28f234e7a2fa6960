"""The ``news-monitor`` command line: argument parsing and exit codes only.

Each command lives in :mod:`monitor.commands`; this module turns arguments
into a call and errors into exit codes (SPEC §2): 0 success, 1 runtime
failure, 2 bad usage or invalid configuration. No traceback reaches the user
for an expected failure.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from monitor import __version__
from monitor.errors import ConfigError, ConfigErrors, MonitorError, QueryError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2

log = logging.getLogger("monitor")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $NEWS_MONITOR_CONFIG, else config/monitor.yaml)",
    )
    parser.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines on standard error: human-readable text (default) or JSON lines",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to 256, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser; the README's command reference is checked against it."""
    parser = argparse.ArgumentParser(
        prog="news-monitor",
        description="Watch news feeds and push alerts when a story you care about appears.",
    )
    parser.add_argument("--version", action="version", version=f"news-monitor {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser("run", help="run the daemon in the foreground")
    run.description = (
        "Poll feeds on their schedule, match entries against the rules and deliver alerts. "
        "SIGTERM/SIGINT stop it cleanly; SIGHUP reloads the configuration."
    )
    run.add_argument("--once", action="store_true", help="poll every feed once, deliver, exit")
    run.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve /healthz and /metrics there (default: the config's http:, else off)",
    )
    run.add_argument(
        "--workers",
        type=_positive,
        metavar="N",
        help="with `state: postgresql://...`: run N poll workers in this process (default 1);"
        " more processes or machines join by running the same command",
    )
    _common(run)

    check = commands.add_parser("check", help="validate the configuration and summarise it")
    check.description = (
        "Validate the configuration; print feeds, rules and targets (secrets masked)."
    )
    _common(check)

    match = commands.add_parser("match", help="dry-run rules against a feed or text")
    match.description = (
        "Show which rules match each entry, and which words made them match. "
        "Nothing is stored and nothing is sent."
    )
    source = match.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="fetch and match this feed URL")
    source.add_argument("--file", metavar="PATH", help="match this local feed file")
    source.add_argument("--text", help="match this text (as an entry's summary)")
    match.add_argument("--query", "-q", help="match this ad-hoc query instead of the rules")
    match.add_argument("--json", action="store_true", help="one JSON object per entry")
    _common(match)

    notify = commands.add_parser("notify-test", help="send a test message to the targets")
    notify.description = "Send a test message to one target, or every target, and report each."
    notify.add_argument("target", nargs="?", metavar="TARGET", help="target name (default: all)")
    _common(notify)

    status = commands.add_parser("status", help="show feeds, the outbox and recent alerts")
    status.description = (
        "Per feed: last fetch, HTTP status, error streak, next due, entries seen; "
        "the outbox; the last alerts. Safe while the daemon runs."
    )
    status.add_argument("--json", action="store_true", help="print one JSON document")
    status.add_argument("--alerts", type=int, default=10, metavar="N", help="recent alerts shown")
    _common(status)

    migrate = commands.add_parser("migrate", help="create or upgrade the state's schema")
    migrate.description = (
        "Create or upgrade the schema of the state (SQLite file or PostgreSQL database) and "
        "print its version. `run` does the same at start; run this first when upgrading."
    )
    _common(migrate)

    demo = commands.add_parser("demo", help="the whole pipeline offline, on bundled feeds")
    demo.description = (
        "Serve the bundled sample feeds on a local port, run the example rules over them "
        "and print the alerts. No network or secrets needed."
    )
    _common(demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    from monitor import commands
    from monitor.logs import setup_logging

    setup_logging(args.log_format)
    handler = getattr(commands, "cmd_" + args.command.replace("-", "_"))
    try:
        code: int = handler(args)
        # Flush here, not at interpreter exit, so a closed pipe is caught just below.
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader of our output went away (`news-monitor status | head`). Python's
        # docs, "Note on SIGPIPE" (library/signal.html): point stdout at devnull so the
        # flush at exit cannot raise again, and exit 1 as Python itself does on EPIPE;
        # SPEC §2 agrees: the output was not all delivered, a runtime failure.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except ConfigErrors as exc:
        for error in exc.errors:
            print(f"error: {error}", file=sys.stderr)
        print(f"{len(exc.errors)} error(s) in the configuration", file=sys.stderr)
        return EXIT_USAGE
    except (ConfigError, QueryError) as exc:
        # A QueryError reaching here is an ad-hoc `match --query`: bad usage, like bad config.
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except MonitorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    return code


def entry() -> NoReturn:
    """The ``news-monitor`` command and ``python -m monitor``: run, then exit with the code."""
    code = main()
    # The process ends here. The interpreter's last collections would walk every live
    # object (a quarter of a second after a pass over 2,000 feeds) to free memory the
    # OS takes back anyway; frozen objects are skipped. Files, the store and the logs
    # were closed or flushed by main already.
    gc.freeze()
    raise SystemExit(code)
