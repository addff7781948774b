"""The processes a session started (the browser), and how they are stopped.

Two launchers, one interface (``spawn``, ``pids``, ``stop``, and the cleaner's
``wipe``/``leftovers``):

* ``SessionProcesses`` (tests, ``make demo``): a child of the daemon in its own
  process group, so that its helpers (Qt WebEngine's renderer processes) die with
  it. Identities are written to disk, so a daemon that was killed mid-session
  still stops them when it comes back; the start time read from /proc guards
  against killing an unrelated process that reused a pid.
* ``BrowserUnits`` (terminals): the browser runs as ``plus-kiosk-browser@<id>.service``,
  as the resident user, and systemd stops it by killing its whole cgroup. The daemon
  stays hardened (no namespaces, no capabilities, other users' processes invisible),
  which a child browser could not live with: Chromium's sandbox needs user
  namespaces. A polkit rule lets the daemon's user start and stop these units only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pwd
import secrets
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Sequence

from kiosk.i18n import _
from kiosk.keepout import keep_out_listed

log = logging.getLogger(__name__)
TERM_GRACE_SECONDS = 1.5
DAEMON_UNIT = "plus-kiosk-daemon.service"
BROWSER_UNIT = "plus-kiosk-browser@{instance}.service"
BROWSER_UNITS = "plus-kiosk-browser@*.service"
# What the browser unit gets from the daemon (the program itself is fixed in the unit).
BROWSER_ENVIRONMENT = ("KIOSK_LANGUAGE", "KIOSK_DAEMON_SOCKET", "KIOSK_DOWNLOADS_DIR",
                       "KIOSK_SCANS_DIR", "KIOSK_BROWSER_DIR", "KIOSK_BROWSER_CONTROL",
                       "KIOSK_CONTROL_UIDS")
# Folders the browser, running as the resident, writes into (the daemon owns them).
BROWSER_WRITES = ("KIOSK_DOWNLOADS_DIR", "KIOSK_BROWSER_DIR")


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

    def spawn(self, argv: Sequence[str], env: dict[str, str] | None = None,
              slot: str = "portal") -> int:
        """Start one browser. A session may hold one per ``slot`` (the portal's page and
        the resident's webmail above it); every entry, whatever its slot, is in the state
        file, so the wipe stops them all."""
        with self._lock:
            child = subprocess.Popen(list(argv), env=env, start_new_session=True,
                                     stdin=subprocess.DEVNULL)
            self._children[child.pid] = child
            started = _start_time(child.pid)
            self._save(self._load() + [{"pid": child.pid, "start": started or 0,
                                        "slot": slot}])
            return child.pid

    def pids(self, slot: str | None = None) -> list[int]:
        """Living browsers: all of them, or those of one slot (entries from before slots
        existed are the portal's)."""
        return [entry["pid"] for entry in self._load() if self._ours(entry)
                and slot in (None, entry.get("slot", "portal"))]

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


def _uids(pid: str) -> tuple[int, ...] | None:
    """Real, effective, saved and filesystem uids of a living process (None: gone, zombie)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    fields = {line.split(":", 1)[0]: line.split(":", 1)[1].split() for line in lines if ":" in line}
    if fields.get("State", ["Z"])[0] == "Z":
        return None  # a zombie holds nothing but its pid
    return tuple(int(uid) for uid in fields.get("Uid", []))


def processes_of(uid: int) -> list[int]:
    """Every living process running with ``uid`` (as any of its four uids)."""
    return [int(entry) for entry in os.listdir("/proc")
            if entry.isdigit() and uid in (_uids(entry) or ())]


def _others_hidden() -> bool:
    """/proc shows only our own processes (hidepid, ``ProtectProc=invisible`` on a terminal)."""
    if os.geteuid() == 0:
        return False
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return True
    for line in mounts:
        fields = line.split()
        if len(fields) > 4 and fields[4] == "/proc" and " - proc " in line:
            options = line.split(" - ", 1)[1].split()[-1].split(",")
            return any(o.startswith("hidepid=") and o not in ("hidepid=0", "hidepid=off")
                       for o in options)
    return False


def _kill(pid: int, uid: int) -> bool:
    """SIGKILL ``pid`` if it still runs as ``uid`` (a pidfd: a reused pid is never hit).
    False when we may not signal it."""
    try:
        handle = os.pidfd_open(pid)
    except OSError:
        return True  # gone already
    try:
        if uid in (_uids(str(pid)) or ()):
            signal.pidfd_send_signal(handle, signal.SIGKILL)
    except PermissionError:
        return False
    except OSError:
        pass
    finally:
        os.close(handle)
    return True


class UserProcesses:
    """A cleaner: every process of the browser's own user, wherever it hides.

    A page's process that double-forked and called ``setsid`` is in no process
    group the daemon knows, yet it could read the next resident's files. Its uid
    gives it away. The check applies only to a user of its own (not root, not the
    daemon's user — which the direct launcher's browser shares). When /proc hides
    other users' processes (the hardened daemon on a terminal, ``ProtectProc=``)
    nothing can be seen: there the browser unit's cgroup, which systemd kills
    whole, is what stops them (``BrowserUnits``)."""

    name = "browser-user"

    def __init__(self, user: str, kill_seconds: float = 3.0):
        self.user = user
        self.kill_seconds = kill_seconds

    def uid(self) -> int | None:
        if not self.user:
            return None
        try:
            uid = pwd.getpwnam(self.user).pw_uid
        except KeyError:
            return None
        if uid == 0 or uid in (os.getuid(), os.geteuid()):
            return None
        if _others_hidden():
            log.info("processes of %s are hidden from the daemon; systemd stops them", self.user)
            return None
        return uid

    def wipe(self) -> None:
        uid = self.uid()
        if uid is None:
            return
        # Kill, look again, until none is left: one that forks between two looks
        # is caught by the next round.
        deadline = time.monotonic() + self.kill_seconds
        while time.monotonic() < deadline:
            found = processes_of(uid)
            if not found:
                return
            if not [pid for pid in found if _kill(pid, uid)]:
                return  # not ours to signal: leftovers() will say so
            time.sleep(0.01)

    def leftovers(self) -> list[str]:
        uid = self.uid()
        count = len(processes_of(uid)) if uid is not None else 0
        if not count:
            return []
        return [_("{count} process(es) of the browser's user {user} still running").format(
            count=count, user=self.user)]


def running_in_unit(unit: str) -> bool:
    """True when this process lives in ``unit``'s cgroup (systemd started it as that unit).

    More precise than $INVOCATION_ID, which every child of any unit inherits (a CI
    runner started by systemd, for instance).
    """
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return False
    return any(line.rsplit("/", 1)[-1] == unit for line in lines)


def for_launcher(launcher: str, state_file: Path) -> SessionProcesses:
    """The launcher the site asks for; "auto" means systemd on a provisioned terminal."""
    if launcher == "systemd" or (launcher == "auto" and running_in_unit(DAEMON_UNIT)):
        runtime_dir = Path(os.environ.get("RUNTIME_DIRECTORY", "/run/plus-kiosk").split(":")[0])
        return BrowserUnits(state_file, runtime_dir / "browser")
    return SessionProcesses(state_file)


class LaunchError(OSError):
    """The browser unit could not be started (the API answers 503)."""


def _env_line(key: str, value: str) -> str:
    # systemd's environment files take single-quoted values literally; a URL the
    # policy normalised never holds a quote (WHATWG percent-encodes it).
    if "'" in value or "\n" in value or "\\" in value:
        raise LaunchError(f"{key} cannot be passed to the browser unit")
    return f"{key}='{value}'\n"


class BrowserUnits(SessionProcesses):
    """A cleaner: the session's browser as a systemd unit of the resident user."""

    def __init__(self, state_file: Path, env_dir: Path, systemctl: str = "systemctl"):
        super().__init__(state_file)
        self.env_dir = env_dir
        self.systemctl = systemctl

    def _systemctl(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.systemctl, *args], capture_output=True, text=True,
                                timeout=30, check=False, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise LaunchError(f"systemctl {' '.join(args)}: {result.stderr.strip()}")
        return result

    def spawn(self, argv: Sequence[str], env: dict[str, str] | None = None,
              slot: str = "portal") -> int:
        parser = argparse.ArgumentParser(add_help=False)
        for option in ("--url", "--config", "--geometry"):
            parser.add_argument(option, default="")
        args, _ = parser.parse_known_args(list(argv)[1:])
        env = env or {}
        values = {"KIOSK_URL": args.url, "KIOSK_SITE_FILE": args.config,
                  "KIOSK_GEOMETRY": args.geometry,
                  **{key: env[key] for key in BROWSER_ENVIRONMENT if key in env}}
        instance = secrets.token_hex(6)
        unit = BROWSER_UNIT.format(instance=instance)
        env_file = self.env_dir / f"{instance}.env"
        with self._lock:
            for key in BROWSER_WRITES:
                if env.get(key):
                    os.chmod(env[key], 0o770)  # the resident's group (the daemon's own) writes
                    keep_out_listed(env[key], env.get("KIOSK_KEEP_OUT_UIDS", ""))
            self.env_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
            env_file.write_text("".join(_env_line(k, v) for k, v in values.items()))
            try:
                self._systemctl("start", unit, check=True)
            finally:
                env_file.unlink(missing_ok=True)  # read at start; it holds the address
            shown = self._systemctl("show", "--property=MainPID", "--value", unit).stdout
            pid = int(shown.strip() or 0)
            self._save(self._load() + [{"unit": unit, "pid": pid, "slot": slot}])
            return pid

    def _active(self, units: list[str]) -> list[str]:
        if not units:
            return []
        states = self._systemctl("is-active", *units).stdout.split()
        return [unit for unit, state in zip(units, states)
                if state in ("active", "activating", "deactivating", "reloading")]

    def _entries(self) -> list[dict[str, object]]:
        return [entry for entry in self._load() if isinstance(entry, dict) and "unit" in entry]

    def pids(self, slot: str | None = None) -> list[int]:
        entries = [entry for entry in self._entries()
                   if slot in (None, entry.get("slot", "portal"))]
        active = set(self._active([str(entry["unit"]) for entry in entries]))
        return [int(str(entry["pid"])) for entry in entries if entry["unit"] in active]

    def stop(self, pid: int) -> None:
        """systemd TERMs the unit's cgroup, then KILLs it (TimeoutStopSec= in the unit)."""
        units = [str(e["unit"]) for e in self._entries() if int(str(e["pid"])) == pid]
        if units:
            self._systemctl("stop", *units)

    def _running_units(self) -> list[str] | None:
        result = self._systemctl("list-units", "--plain", "--no-legend", "--all",
                                 "--state=active,activating,deactivating,reloading", BROWSER_UNITS)
        if result.returncode != 0:
            return None
        return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]

    def wipe(self) -> None:
        with self._lock:
            # Every browser unit, not only the recorded ones: the state may be lost.
            units = {str(e["unit"]) for e in self._entries()} | set(self._running_units() or [])
            if units:
                self._systemctl("stop", *sorted(units))
            survivors = self._running_units()
            self._save([{"unit": unit, "pid": 0} for unit in survivors or []])

    def leftovers(self) -> list[str]:
        running = self._running_units()
        if running is None:
            return ["browser units cannot be listed (systemctl failed)"]
        return [f"{unit} still running" for unit in running]
