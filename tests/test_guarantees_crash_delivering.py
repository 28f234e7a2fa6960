"""SPEC §5 under SIGKILL, aimed at delivering (see ``crash_scenario``).

Four fast feeds gain three to eight entries before each run, the receivers
hold each reply 80 ms, and the daemon is killed 20 times 0.9-1.5 s after it
starts, when its first delivery rounds are sending. Four delivery workers, so
the two targets send in parallel: a kill may leave one message in flight per
target, and so explain at most one repeat per target.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from crash_scenario import Profile, run_crash_scenario
from daemon_proc import DaemonProcess


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[DaemonProcess]:
    """A daemon process handle that is killed if the test leaves it running."""
    proc = DaemonProcess(tmp_path / "monitor.yaml", tmp_path / "daemon.log")
    yield proc
    proc.close()


PROFILE = Profile(
    name="delivering",
    seed=4,
    kills=20,
    feeds=4,
    feed_delay=(0.0, 0.02),
    reply_delay=0.08,
    new_entries=(3, 8),
    kill_after=(0.9, 1.5),
    workers=4,
)


def test_sigkill_while_delivering_loses_nothing_and_repeats_at_most_one_per_target_and_kill(
    tmp_path: Path, daemon: DaemonProcess
) -> None:
    """After 20 SIGKILLs aimed at the delivery rounds, every expected alert arrives at every
    target, bar at most one repeat per target per kill (SPEC §5)."""
    repeats = run_crash_scenario(tmp_path, daemon, PROFILE)
    assert repeats <= 2 * PROFILE.kills
