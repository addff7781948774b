"""One resident's session, from first touch to the verified wipe.

States::

    idle ──start──▶ active ──no input for the idle delay──▶ warning
                      ▲  ◀────────────── activity ────────────┘ │
                      │                                         │ countdown over,
    idle ◀── clean ── wiping ◀── "Terminer", agent reset ───────┘ or "Terminer"

The daemon, not the shell, owns the clock: a frozen shell cannot keep a
session (and its files) alive. A wipe that leaves anything behind keeps the
terminal closed to the next resident until an agent has looked at it.
"""

from __future__ import annotations

import errno
import logging
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence

from kiosk import wipe
from kiosk.i18n import _
from kiosk.usage import Usage
from kiosk.wipe import Cleaner

log = logging.getLogger(__name__)

State = Literal["idle", "active", "warning", "wiping"]
# How long a resident who asked for an agent may wait without touching the screen before
# the usual warning and countdown: an agent crossing a town hall or the bus takes time,
# and a resident who left without waiting must still be wiped.
HELP_WAIT_SECONDS = 900
EndReason = Literal["user", "idle", "agent", "boot"]


def iso_utc(epoch: float) -> str:
    """The API's timestamp format."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _error(exc: BaseException) -> str:
    """An exception as a code, without the file name an OSError carries (a resident's)."""
    code = errno.errorcode.get(getattr(exc, "errno", None) or -1)
    return code or type(exc).__name__


class SessionError(Exception):
    """A request the session's current state does not allow."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Session:
    id: str
    root: Path
    started_at: float
    page_quota: int
    pages_printed: int = 0
    last_activity: float = 0.0
    jobs: list[int] = field(default_factory=list)
    location: str = ""  # the page the browser shows (memory only; dies with the session)
    usage: Usage = field(default_factory=Usage)  # counters and ids for the anonymous record
    help_asked: bool = False  # « Besoin d'aide » (POST /help); dies with the session at the wipe

    def dir(self, name: str) -> Path:
        return self.root / name

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "started_at": iso_utc(self.started_at),
            "pages_printed": self.pages_printed,
            "page_quota": self.page_quota,
            "location": self.location,
            "dirs": {name: str(self.root / name) for name in wipe.SESSION_SUBDIRS},
        }


# Cleaner names as the API reports them, for kinds that read better than the class's name.
LEFTOVER_KINDS = {"printing": "print-jobs", "share links": "share-links"}


def leftover_kind(item: str) -> str:
    """What kind of thing a leftover is, without what it is called.

    Leftovers are often files named after a person ("avis-impot-Josephine-Marie.pdf"):
    the journal (kept on disk) and /status get the kind and a count, never the name.
    """
    if item.startswith("/"):  # a path the sweep found under the data directory
        parts = Path(item).parts
        for index, part in enumerate(parts):
            if part == ".state":
                return "state"
            if part == "sessions":
                rest = parts[index + 1:]
                return rest[1] if len(rest) >= 2 else "sessions"
        return "data"
    name, found, _ = item.partition(":")
    if not found:
        return "other"
    return LEFTOVER_KINDS.get(name.strip(), name.strip().replace(" ", "-"))


def leftover_counts(items: Sequence[str]) -> dict[str, int]:
    """``{"downloads": 2, "print-jobs": 1}``: what /status, reports and logs show."""
    counts: dict[str, int] = {}
    for item in items:
        kind = leftover_kind(item)
        counts[kind] = counts.get(kind, 0) + 1
    return counts


@dataclass(frozen=True)
class WipeReport:
    wiped: bool
    duration_ms: int
    leftovers: list[str]
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"wiped": self.wiped, "duration_ms": self.duration_ms,
                "leftovers": leftover_counts(self.leftovers), "reason": self.reason}


class SessionManager:
    """The state machine; thread-safe (the web server and the idle clock share it)."""

    def __init__(self, data_dir: Path, *, page_quota: int, idle_warning_seconds: int,
                 countdown_seconds: int, cleaners: Sequence[Cleaner] = (),
                 clock: Callable[[], float] = time.monotonic,
                 on_end: Callable[[Session, str], object] | None = None):
        self.data_dir = Path(data_dir)
        self.page_quota = page_quota
        self.idle_warning_seconds = idle_warning_seconds
        self.countdown_seconds = countdown_seconds
        self.cleaners = list(cleaners)
        self.clock = clock
        self.on_end = on_end  # after each session's wipe: its anonymous record (kiosk.records)
        self.lock = threading.RLock()
        self.state: State = "idle"
        self.session: Session | None = None
        self.leftovers: list[str] = []
        self.warning_since: float | None = None
        self._next_root: Path | None = None
        self.last_wipe: WipeReport | None = None

    # -- the wipe -----------------------------------------------------------------

    def wipe(self, reason: EndReason) -> WipeReport:
        """Wipe everything a session could have left, then verify it.

        Never raises and never stays "wiping": whatever goes wrong (a resident's
        tree the walk cannot enter, a full disk, a bug) becomes a leftover, which
        keeps the terminal closed until an agent's reset wipes clean."""
        with self.lock:
            started = time.perf_counter()
            self.state = "wiping"
            ended, self.session = self.session, None
            self.warning_since = None
            self._next_root = None
            leftovers: list[str] = []
            try:
                leftovers = self._wipe_steps()
            except Exception as exc:  # noqa: BLE001 - a crash here would keep the files
                log.exception("wipe failed")
                leftovers.append("wipe: " + _("The wipe failed ({error}).").format(
                    error=_error(exc)))
            finally:
                self.leftovers = leftovers
                self.state = "idle"
            report = WipeReport(not leftovers, round((time.perf_counter() - started) * 1000),
                                leftovers, reason)
            self.last_wipe = report
            if leftovers:
                log.error("wipe (%s) left %d item(s): %s", reason, len(leftovers),
                          leftover_counts(leftovers))
            else:
                log.info("wipe (%s) verified clean in %d ms", reason, report.duration_ms)
            if ended is not None and self.on_end is not None:
                try:  # after the wipe, and never its failure
                    self.on_end(ended, reason)
                except Exception:  # noqa: BLE001
                    log.exception("session record failed")
            return report

    def _wipe_steps(self) -> list[str]:
        # Cleaners first: the browser and every process of its user must be gone
        # before their files are deleted (or they could write new ones).
        for cleaner in self.cleaners:
            try:
                cleaner.wipe()
            except Exception:  # one failing device must not stop the rest
                log.exception("wipe step %s failed", cleaner.name)
        leftovers: list[str] = []
        try:
            self._next_root = wipe.fresh_session_root(self.data_dir)
        except Exception as exc:
            log.error("session folders not prepared: %s", _error(exc))
            leftovers.append("wipe: " + _("The session folders cannot be prepared ({error}).")
                             .format(error=_error(exc)))
        try:
            # One item per leftover, named by the session folder it is in (never its own
            # name): leftover_counts() turns them into kinds and counts.
            found = wipe.count_leftovers(self.data_dir, self._next_root)
            leftovers += [where for where, count in sorted(found.items()) for _n in range(count)]
        except Exception as exc:
            leftovers.append("wipe: " + _("The session folders cannot be verified ({error}).")
                             .format(error=_error(exc)))
        for cleaner in self.cleaners:
            try:
                leftovers += [f"{cleaner.name}: {item}" for item in cleaner.leftovers()]
            except Exception as exc:
                leftovers.append(f"{cleaner.name}: cannot be verified ({exc})")
        if leftovers:
            self._next_root = None
        return leftovers

    # -- transitions -------------------------------------------------------------------

    def start(self) -> Session:
        with self.lock:
            if self.session is not None:
                raise SessionError("session_active", "A session is already running.")
            if self.leftovers or self._next_root is None:
                raise SessionError("leftovers",
                                   "The previous session was not wiped completely.")
            now = self.clock()
            self.session = Session(secrets.token_hex(8), self._next_root, time.time(),
                                   self.page_quota, last_activity=now)
            self._next_root = None
            self.state = "active"
            return self.session

    def activity(self) -> State:
        with self.lock:
            if self.session is None:
                raise SessionError("no_session", "No session is running.")
            self.session.last_activity = self.clock()
            self.warning_since = None
            self.state = "active"
            return self.state

    def end(self, reason: EndReason) -> WipeReport:
        with self.lock:
            return self.wipe(reason)

    def tick(self) -> WipeReport | None:
        """Advance the idle clock; returns the report when it ended the session."""
        with self.lock:
            if self.session is None:
                return None
            now = self.clock()
            delay = self.idle_warning_seconds
            if self.session.help_asked:  # a resident waiting for an agent is not idle yet...
                delay = max(delay, HELP_WAIT_SECONDS)  # ...but not forever: gone, then wiped
            if self.state == "active" and now - self.session.last_activity >= delay:
                self.state = "warning"
                self.warning_since = now
            if self.state == "warning" and self.warning_since is not None \
                    and now - self.warning_since >= self.countdown_seconds:
                return self.wipe("idle")
            return None

    def countdown_left(self) -> int | None:
        with self.lock:
            if self.state != "warning" or self.warning_since is None:
                return None
            return max(0, round(self.countdown_seconds - (self.clock() - self.warning_since)))

    def leftover_counts(self) -> dict[str, int]:
        return leftover_counts(self.leftovers)

    def require_session(self) -> Session:
        session = self.session
        if session is None:
            raise SessionError("no_session", "No session is running.")
        return session
