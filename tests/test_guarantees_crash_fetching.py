"""SPEC §5 under SIGKILL, aimed at fetching, parsing and matching (see ``crash_scenario``).

Eight feeds hold each response 50-400 ms, and the daemon is killed 30 times
0.05-0.8 s after it starts, so most kills land while feeds are being fetched
or their entries parsed, matched and stored. One delivery worker: every
repeat must be explained by a distinct kill.
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
    name="fetching",
    seed=20261125,
    kills=30,
    feeds=8,
    feed_delay=(0.05, 0.4),
    reply_delay=0.0,
    new_entries=(1, 3),
    kill_after=(0.05, 0.8),
    workers=1,
)


def test_sigkill_while_fetching_loses_nothing_and_repeats_at_most_one_per_kill(
    tmp_path: Path, daemon: DaemonProcess
) -> None:
    """After 30 SIGKILLs aimed at polling, every expected alert arrives at every target once,
    bar at most one repeat per kill (SPEC §5)."""
    repeats = run_crash_scenario(tmp_path, daemon, PROFILE)
    assert repeats <= PROFILE.kills
