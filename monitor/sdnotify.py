"""systemd's notification protocol (``sd_notify(3)``), with the socket module only.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``: a unix datagram
socket, a path or (with a leading ``@``) a Linux abstract name. Each datagram
holds newline-separated ``KEY=VALUE`` assignments: ``READY=1`` once the
service is up, ``WATCHDOG=1`` at least every ``$WATCHDOG_USEC`` microseconds
while ``WatchdogSec=`` is set, ``RELOADING=1`` / ``STOPPING=1`` around reloads
and shutdown, and ``STATUS=...`` for ``systemctl status``.

Outside systemd (no ``$NOTIFY_SOCKET``) every call does nothing, so the daemon
calls these unconditionally.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("monitor")


class SystemdNotifier:
    """Sends state changes to systemd, when started by it."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        # An abstract socket is written "@name"; on the wire its first byte is NUL.
        self.address: str | None = (
            "\0" + address[1:] if address.startswith("@") else address or None
        )
        self.watchdog_interval: float | None = None
        usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
        # WATCHDOG_PID, when set, names the process that must ping (sd_watchdog_enabled(3)).
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval = int(usec) / 1_000_000
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        """Whether systemd listens."""
        return self.address is not None

    def notify(self, *assignments: str) -> bool:
        """Send one datagram of ``KEY=VALUE`` lines; False when not under systemd or it failed."""
        if self.address is None:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(assignments).encode(), self.address)
        except OSError as exc:
            # systemd gone or the socket unreadable: the service itself is fine.
            log.warning("sd_notify to %r failed: %s", self.address, exc.strerror or exc)
            return False
        return True

    def ready(self, status: str) -> None:
        """The service is up (``READY=1``)."""
        self.notify("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        """A reload begins; ``ready`` ends it. ``MONOTONIC_USEC`` is for ``Type=notify-reload``."""
        self.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")

    def stopping(self) -> None:
        """Shutdown begins (``STOPPING=1``)."""
        self.notify("STOPPING=1", "STATUS=stopping")

    def watchdog(self) -> None:
        """Ping the watchdog, at most twice per interval (systemd's advice is half of it)."""
        if self.watchdog_interval is None:
            return
        moment = time.monotonic()
        if moment - self._last_ping >= self.watchdog_interval / 2:
            self._last_ping = moment
            self.notify("WATCHDOG=1")
