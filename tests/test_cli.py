"""The command line: every SPEC §2 command exists, and the README's reference matches --help.

Run ``.venv/bin/python tests/test_cli.py --write`` to refresh the README's
command reference after changing an option.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
COMMANDS = ["run", "check", "match", "notify-test", "status", "migrate", "demo"]
BEGIN, END = "<!-- commands:begin -->", "<!-- commands:end -->"


def help_text(command: str) -> str:
    """The --help of one command, formatted at a fixed width."""
    os.environ["COLUMNS"] = "88"
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sub.choices[command].format_help().rstrip()  # type: ignore[attr-defined]


def command_reference() -> str:
    """The README's command reference, generated from the parsers."""
    parts = [BEGIN]
    for command in COMMANDS:
        parts += [f"### `news-monitor {command}`", "", "```text", help_text(command), "```", ""]
    parts.append(END)
    return "\n".join(parts)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_answers_help(command: str) -> None:
    """Each SPEC §2 command prints its --help through the installed console script and exits 0."""
    done = subprocess.run(
        [sys.executable, "-m", "monitor", command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"news-monitor {command}" in done.stdout
    assert "--config" in done.stdout and "--log-format" in done.stdout


def test_readme_command_reference_matches_help() -> None:
    """The README's command reference is exactly what --help prints (docs cannot drift)."""
    readme = README.read_text()
    start, end = readme.find(BEGIN), readme.find(END)
    assert start >= 0 and end > start, "README lacks the generated command reference markers"
    current = readme[start : end + len(END)]
    assert _normalise(current) == _normalise(command_reference()), (
        "README command reference is stale: run `.venv/bin/python tests/test_cli.py --write`"
    )


def test_unknown_command_is_a_usage_error() -> None:
    """A mistyped command exits 2 with argparse's message, not a traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "rnu"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2
    assert "invalid choice" in done.stderr and "Traceback" not in done.stderr


if __name__ == "__main__" and "--write" in sys.argv:
    text = README.read_text()
    start, end = text.find(BEGIN), text.find(END)
    if start < 0:
        text = text.replace("COMMAND_REFERENCE", command_reference())
    else:
        text = text[:start] + command_reference() + text[end + len(END) :]
    README.write_text(text)
    print("README command reference updated")
