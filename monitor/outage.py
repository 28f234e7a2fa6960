"""Telling a network outage from failing feeds (SPEC §5, issue 5).

When the machine's own network fails (cable, Wi-Fi, DNS resolver, VPN),
every feed fails at once with a connection-level error, and backing each of
them off as if it were broken would delay recovery by hours and, through
health alerts, blame two thousand innocent feeds. The evidence used here:

- **Down** when the fetches of the last :attr:`OutagePolicy.window` seconds
  all failed to reach their hosts (``FetchError.network``: DNS failure,
  refused or unreachable connection, connect timeout), at least
  :attr:`OutagePolicy.min_hosts` distinct hosts among them, and no server
  answered anything (not even an error status) within the window. A few dead
  hosts in a large fleet never qualify: someone else answers meanwhile.
- **Up** again at the first answer from any server.

While down, failures of the network kind do not raise a feed's error streak
beyond 1 and are retried at a modest fixed pace (:func:`monitor.decide.decide_failure`).

:func:`observe` is pure (state, outcome, policy in; state out) so the rule is
table-tested; :class:`OutageWatch` holds the state for the daemon.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

# Hosts remembered while the network looks healthy: enough to count min_hosts.
_MAX_HOSTS = 64
# After the network comes back, feeds need a retry (decide.OUTAGE_RETRY, 2 min) to show
# they are fine; until then their failure streaks still date from the outage.
SETTLE_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class OutagePolicy:
    """How much evidence makes an outage."""

    window: float = 60.0  # seconds without any answer from any server
    min_hosts: int = 3  # distinct hosts that failed to connect within the window


@dataclass(frozen=True, slots=True)
class Outcome:
    """One fetch's outcome, as far as the network is concerned."""

    at: float  # monotonic seconds
    host: str  # host[:port]
    reached: bool  # a server answered (any status, any body); False: network-level failure


@dataclass(frozen=True, slots=True)
class NetworkState:
    """What the recent fetches say about the network."""

    down: bool = False
    last_answer: float | None = None  # when a server last answered; None: not yet
    failures: tuple[tuple[str, float], ...] = ()  # (host, at) of connect failures since


class Change(StrEnum):
    """A transition worth one log line."""

    DOWN = "network.down"
    UP = "network.up"


def observe(
    state: NetworkState, outcome: Outcome, policy: OutagePolicy = OutagePolicy()
) -> NetworkState:
    """The state after one more fetch outcome (module doc gives the rule)."""
    if outcome.reached:
        return NetworkState(down=False, last_answer=outcome.at)
    since = outcome.at - policy.window
    kept = tuple((h, t) for h, t in state.failures if t > since and h != outcome.host)
    failures = (*kept, (outcome.host, outcome.at))[-_MAX_HOSTS:]
    if state.down:
        return NetworkState(True, state.last_answer, failures)
    quiet = state.last_answer is None or state.last_answer <= since
    down = quiet and len(failures) >= policy.min_hosts
    return NetworkState(down, state.last_answer, failures)


def change(before: NetworkState, after: NetworkState) -> Change | None:
    """The transition between two states, if any."""
    if before.down == after.down:
        return None
    return Change.DOWN if after.down else Change.UP


class OutageWatch:
    """The daemon's view of the network: feed it every fetch outcome, ask whether it is down."""

    def __init__(
        self, policy: OutagePolicy = OutagePolicy(), clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy
        self.state = NetworkState()
        self._clock = clock
        self._up_since: float | None = None  # when the last outage ended

    @property
    def down(self) -> bool:
        """Whether the network is judged down now."""
        return self.state.down

    def settled(self) -> bool:
        """Whether feed failures mean something again: no outage now, nor one just ended."""
        if self.state.down:
            return False
        return self._up_since is None or self._clock() - self._up_since >= SETTLE_SECONDS

    def record(self, host: str, *, reached: bool) -> Change | None:
        """Take one fetch outcome, now; return the transition it caused, if any."""
        before = self.state
        at = self._clock()
        self.state = observe(before, Outcome(at, host, reached), self.policy)
        transition = change(before, self.state)
        if transition is Change.UP:
            self._up_since = at
        return transition
