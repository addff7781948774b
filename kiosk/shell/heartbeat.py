"""The shell's heartbeat to systemd, beaten by Kivy's main loop.

``plus-kiosk-shell.service`` (X and the shell, ``Type=notify``, ``WatchdogSec=``)
restarts the screen when the shell dies — and also when it freezes, which a dead
process check cannot see: the heartbeat is a Kivy ``Clock`` callback, so it
stops as soon as the UI loop stops turning, and systemd then kills and restarts
X with a fresh shell. READY is sent once the first frame is on screen.

The shell is not the unit's main process (``xinit`` is); the session script hands
the watchdog over by setting ``$WATCHDOG_PID`` to the shell's pid before
executing it. Outside systemd every call is a no-op.
"""

from __future__ import annotations

from typing import Any

from kiosk import sdnotify


def install(clock: Any) -> float | None:
    """Schedule READY=1 for the next frame and WATCHDOG=1 every half watchdog period."""
    clock.schedule_once(lambda dt: sdnotify.notify("READY=1"), 0)
    interval = sdnotify.watchdog_interval()
    if interval:
        clock.schedule_interval(lambda dt: sdnotify.notify("WATCHDOG=1"), interval)
    return interval
