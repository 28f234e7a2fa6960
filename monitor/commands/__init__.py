"""One function per command of the command line (SPEC §2); :mod:`monitor.cli` dispatches."""

from monitor.commands.demo import cmd_demo
from monitor.commands.inspect import cmd_check, cmd_status
from monitor.commands.match import cmd_match
from monitor.commands.migrate import cmd_migrate
from monitor.commands.notify_test import cmd_notify_test
from monitor.commands.run import cmd_run

__all__ = [
    "cmd_check",
    "cmd_demo",
    "cmd_match",
    "cmd_migrate",
    "cmd_notify_test",
    "cmd_run",
    "cmd_status",
]
