"""The anonymous session records: one SQLite row per session, appended at its end.

Anonymous by construction: a row holds the terminal's hashed id, the site, where the
terminal stood that day (from the site file), the start time rounded to the hour, the
duration, and counters and identifiers from fixed vocabularies (``kiosk.usage``) — never
an address, a URL, a file name, a search or anything typed. The database lives outside
the data directory (the wipe would count it as a leftover) and survives the wipe: it is
the kiosk's, not the resident's. Nothing here may stop a session or a wipe: a damaged
database is moved aside (and said so in the journal), a failed write is logged and lost.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import socket
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from kiosk.config import SiteConfig
from kiosk.i18n import _
from kiosk.usage import ANSWERS, ENDINGS, Usage

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
MACHINE_ID = Path("/etc/machine-id")
BUSY_TIMEOUT_S = 1.0  # never wait longer than this for a lock: the record is dropped instead
COLUMNS = ("record_id", "terminal", "site", "commune", "place", "started_hour", "duration_s",
           "language", "text_size", "contrast", "portals", "categories", "guides_started",
           "guides_finished", "pages_printed", "scans", "shares", "ended", "satisfaction")
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sessions (
    record_id TEXT PRIMARY KEY,      -- terminal id + "-" + 16 random hex digits
    terminal TEXT NOT NULL,
    site TEXT NOT NULL,
    commune TEXT NOT NULL,           -- the bus stop's commune that day, or the site's
    place TEXT NOT NULL,             -- the stop's place from the site file, or ""
    started_hour TEXT NOT NULL,      -- local time, rounded down to the hour: YYYY-MM-DDTHH:00
    duration_s INTEGER NOT NULL,
    language TEXT NOT NULL,
    text_size TEXT NOT NULL,
    contrast TEXT NOT NULL,
    portals TEXT NOT NULL,           -- JSON list of portal ids of the site
    categories TEXT NOT NULL,        -- JSON list: each portal's funders' category
    guides_started TEXT NOT NULL,    -- JSON list of guide ids
    guides_finished TEXT NOT NULL,   -- JSON list of guide ids followed to their last step
    pages_printed INTEGER NOT NULL,
    scans INTEGER NOT NULL,
    shares INTEGER NOT NULL,         -- scans handed to a phone
    ended TEXT NOT NULL CHECK (ended IN ({", ".join(repr(e) for e in ENDINGS.values())})),
    satisfaction TEXT CHECK (satisfaction IS NULL OR satisfaction IN
                             ({", ".join(repr(a) for a in ANSWERS)}))
);
CREATE INDEX IF NOT EXISTS sessions_started ON sessions (started_hour);
PRAGMA user_version = {SCHEMA_VERSION};
"""


class RecordsError(Exception):
    """A database the records cannot use (damaged, not the kiosk's, a newer schema)."""


def terminal_id(configured: str = "", machine_id: Path = MACHINE_ID) -> str:
    """The site file's id, else a stable hash of the machine id (never the id itself)."""
    if configured:
        return configured
    try:
        seed = machine_id.read_text().strip()
    except OSError:
        seed = ""
    seed = seed or socket.gethostname()
    return "t" + hashlib.sha256(f"plus-kiosk-records:{seed}".encode()).hexdigest()[:11]


def place_of_day(config: SiteConfig, when: datetime) -> tuple[str, str]:
    """(commune, place) where the terminal stood: the bus's stop that weekday (the one
    under way at ``when`` if several), else the site's commune."""
    if config.site.kind == "bus":
        weekday = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                   "sunday")[when.weekday()]
        stops = [stop for stop in config.bus_stop if stop.weekday == weekday]
        hour = when.strftime("%H:%M")
        stop = next((s for s in stops if s.start <= hour < s.end), stops[0] if stops else None)
        if stop is not None:
            return stop.commune, stop.place
    return config.site.commune, ""


def hour_of(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%dT%H:00")


def check_schema(connection: sqlite3.Connection) -> None:
    """Raise RecordsError unless this is a records database this code can read."""
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise RecordsError(_("The records database has a newer format ({version}) than "
                                 "this kiosk knows ({known}).").format(version=version,
                                                                      known=SCHEMA_VERSION))
        names = {row[1] for row in connection.execute("PRAGMA table_info(sessions)")}
        if version != SCHEMA_VERSION or not set(COLUMNS) <= names:
            raise RecordsError(_("This file is not a records database of the kiosk."))
        if connection.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise RecordsError(_("The records database is damaged."))
    except sqlite3.DatabaseError as exc:
        raise RecordsError(_("The records database is damaged ({error}).").format(
            error=exc)) from None


@dataclass
class Pending:
    """The record the end screen's question may still attach to."""

    record_id: str
    ended: float  # monotonic


class Recorder:
    """Appends the records; thread-safe; never raises into the session or the wipe."""

    def __init__(self, config: SiteConfig, *, path: Path | None = None,
                 clock=time.monotonic):
        self.config = config
        self.path = Path(path or config.records.path)
        self.terminal = terminal_id(config.records.terminal_id)
        self.clock = clock
        self.lock = threading.Lock()
        self.pending: Pending | None = None
        self.problem = ""  # the last trouble, translated, for an agent ("" = none)

    # -- the database ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            fresh = connection.execute("PRAGMA user_version").fetchone()[0] == 0 and not \
                connection.execute("SELECT name FROM sqlite_master").fetchall()
            if fresh:
                connection.executescript(SCHEMA)
            check_schema(connection)
        except (RecordsError, sqlite3.DatabaseError):
            connection.close()
            raise
        return connection

    def _open(self) -> sqlite3.Connection | None:
        """The database, or None; a damaged one is moved aside and a new one started."""
        try:
            return self._connect()
        except (RecordsError, sqlite3.DatabaseError) as exc:
            problem = exc if isinstance(exc, RecordsError) else RecordsError(str(exc))
        except OSError as exc:
            self._report(_("The records database {path} cannot be opened ({error}); this "
                           "session is not counted.").format(path=self.path,
                                                             error=exc.strerror or exc))
            return None
        aside = self.path.with_name(f"{self.path.name}.damaged-{time.strftime('%Y%m%d%H%M%S')}")
        try:
            self.path.rename(aside)
            for suffix in ("-journal", "-wal", "-shm"):
                self.path.with_name(self.path.name + suffix).unlink(missing_ok=True)
        except OSError as exc:
            self._report(_("The records database {path} is unusable ({problem}) and cannot "
                           "be moved aside ({error}).").format(path=self.path, problem=problem,
                                                               error=exc.strerror or exc))
            return None
        self._report(_("The records database {path} was unusable ({problem}); it was moved "
                       "to {aside} and a new one started.").format(
            path=self.path, problem=problem, aside=aside.name))
        try:
            return self._connect()
        except (RecordsError, sqlite3.DatabaseError, OSError) as exc:
            self._report(_("A new records database cannot be started ({error}).").format(
                error=exc))
            return None

    def _report(self, message: str) -> None:
        self.problem = message
        log.error("%s", message)

    # -- what the daemon calls ---------------------------------------------------------

    def start(self) -> None:
        """At daemon start: open (moving a damaged database aside), apply the retention."""
        self.apply_retention()

    def apply_retention(self, now: float | None = None) -> int:
        """Delete the records older than ``[records] retention_days``; how many."""
        cutoff = hour_of((now or time.time()) - self.config.records.retention_days * 86400)
        with self.lock:
            connection = self._open()
            if connection is None:
                return 0
            try:
                deleted = connection.execute("DELETE FROM sessions WHERE started_hour < ?",
                                             (cutoff,)).rowcount
            except sqlite3.DatabaseError as exc:
                self._report(_("The old records cannot be deleted ({error}).").format(error=exc))
                return 0
            finally:
                connection.close()
        if deleted:
            log.info("records: %d older than %d days deleted", deleted,
                     self.config.records.retention_days)
        return deleted

    def session_started(self) -> None:
        """A new resident: the previous one's question can no longer be answered."""
        with self.lock:
            self.pending = None

    def session_ended(self, started_at: float, pages_printed: int, usage: Usage,
                      reason: str, ended_at: float | None = None) -> str | None:
        """Append the session's record; its id, or None when it could not be written."""
        ended_at = ended_at or time.time()
        portals = [p for p in usage.portals if self.config.portal_by_id(p) is not None]
        categories = [self.config.portal_by_id(p).funder_category  # type: ignore[union-attr]
                      for p in portals]  # one per portal, in the same order
        commune, place = place_of_day(self.config, datetime.fromtimestamp(started_at))
        row = {
            "record_id": f"{self.terminal}-{secrets.token_hex(8)}", "terminal": self.terminal,
            "site": self.config.site.name, "commune": commune, "place": place,
            "started_hour": hour_of(started_at),
            "duration_s": max(0, round(ended_at - started_at)),
            "language": usage.language or self.config.site.default_language,
            "text_size": usage.text_size, "contrast": usage.contrast,
            "portals": json.dumps(portals), "categories": json.dumps(categories),
            "guides_started": json.dumps(usage.guides_started),
            "guides_finished": json.dumps(usage.guides_finished),
            "pages_printed": pages_printed, "scans": usage.scans, "shares": usage.shares,
            "ended": ENDINGS.get(reason, "shutdown"), "satisfaction": None,
        }
        with self.lock:
            self.pending = None
            connection = self._open()
            if connection is None:
                return None
            try:
                connection.execute(f"INSERT INTO sessions ({', '.join(COLUMNS)}) VALUES "
                                   f"({', '.join('?' * len(COLUMNS))})",
                                   [row[c] for c in COLUMNS])
            except sqlite3.DatabaseError as exc:
                self._report(_("This session's record cannot be written ({error}).").format(
                    error=exc))
                return None
            finally:
                connection.close()
            if reason in ("user", "idle"):  # the end screen asks; an agent's reset does not
                self.pending = Pending(row["record_id"], self.clock())
        return row["record_id"]

    def feedback(self, answer: str) -> bool:
        """Attach the end screen's answer to the session that just ended: once, and only
        within ``[records] feedback_seconds``. False when it cannot be attached."""
        if answer not in ANSWERS:
            raise ValueError(answer)
        with self.lock:
            pending = self.pending
            if pending is None or \
                    self.clock() - pending.ended > self.config.records.feedback_seconds:
                return False
            self.pending = None
            connection = self._open()
            if connection is None:
                return False
            try:
                changed = connection.execute(
                    "UPDATE sessions SET satisfaction = ? WHERE record_id = ? "
                    "AND satisfaction IS NULL", (answer, pending.record_id)).rowcount
            except sqlite3.DatabaseError as exc:
                self._report(_("The answer cannot be written ({error}).").format(error=exc))
                return False
            finally:
                connection.close()
        return changed == 1


def due_daily(last: float, now: float) -> bool:
    """Retention runs once a day (the daemon's background thread asks)."""
    return now - last >= timedelta(days=1).total_seconds()
