"""The processes a session started (the browser), and how they are stopped.

Each runs in its own process group so that its helpers (Qt WebEngine's renderer
processes) die with it. Their identities are written to disk, so a daemon that
was killed mid-session still stops them when it comes back; the start time read
from /proc guards against killing an unrelated process that reused a pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Sequence

TERM_GRACE_SECONDS = 1.5


def _stat(pid: int | str) -> list[str] | None:
    """/proc/<pid>/stat fields after the command name (state first), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()


def _start_time(pid: int) -> int | None:
    """Clock ticks since boot when ``pid`` started; None if gone or a zombie."""
    fields = _stat(pid)
    if fields is None or fields[0] == "Z":
        return None  # a zombie is already dead: it holds nothing but its pid
    return int(fields[19])


def group_members(pgid: int) -> list[int]:
    """Living (non-zombie) processes of process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(entry)
            if fields is not None and fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry))
    return members


def _group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))


class SessionProcesses:
    """A cleaner: the processes of the current session."""

    name = "processes"

    def __init__(self, state_file: Path):
        self.state_file = state_file
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.RLock()
        # What the last wipe could not stop: kept in memory, since the wipe also
        # empties the state file's folder before leftovers are asked for.
        self._survivors: list[dict[str, int]] = []

    def _load(self) -> list[dict[str, int]]:
        try:
            return list(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return []

    def _save(self, entries: list[dict[str, int]]) -> None:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(entries))

    def spawn(self, argv: Sequence[str], env: dict[str, str] | None = None) -> int:
        with self._lock:
            child = subprocess.Popen(list(argv), env=env, start_new_session=True,
                                     stdin=subprocess.DEVNULL)
            self._children[child.pid] = child
            started = _start_time(child.pid)
            self._save(self._load() + [{"pid": child.pid, "start": started or 0}])
            return child.pid

    def pids(self) -> list[int]:
        return [entry["pid"] for entry in self._load() if self._ours(entry)]

    @staticmethod
    def _ours(entry: dict[str, int]) -> bool:
        """Still running: the same leader, or its group once the leader is gone.

        (Linux does not reuse a pid while a process group of that id exists.)
        """
        started = _start_time(entry["pid"])
        if started is not None:
            return started == entry["start"]
        return _group_alive(entry["pid"])

    def _reap(self) -> None:
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]

    def stop(self, pid: int) -> None:
        """TERM the process group, then KILL it if still there after a grace period."""
        for sig, wait in ((signal.SIGTERM, TERM_GRACE_SECONDS), (signal.SIGKILL, 1.0)):
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                return
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                self._reap()
                if not _group_alive(pid):
                    return
                time.sleep(0.02)

    def wipe(self) -> None:
        with self._lock:
            entries = self._load() + self._survivors
            for entry in entries:
                if self._ours(entry):
                    self.stop(entry["pid"])
            self._reap()
            self._survivors = [entry for entry in entries if self._ours(entry)]
            self._save(self._survivors)

    def leftovers(self) -> list[str]:
        with self._lock:
            entries = self._load() + self._survivors
            return [f"process {entry['pid']} still running"
                    for entry in {e["pid"]: e for e in entries}.values() if self._ours(entry)]
