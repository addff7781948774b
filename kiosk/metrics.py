"""The terminal's health for the agents' office, in Prometheus's text format.

The daemon writes a file that node_exporter's textfile collector serves with the
machine's own metrics (``[monitoring] textfile``; Debian's prometheus-node-exporter
reads ``/var/lib/prometheus/node-exporter/*.prom``). It is rewritten every few seconds
by the daemon's idle clock, and right after each wipe, atomically (a temporary file
renamed over it, by ``prometheus_client.write_to_textfile``).

Privacy: states, kinds and counts only. No label ever carries a resident's data — no
address, file name, portal or guide id, search text: every label value below comes
from a fixed list, and a leftover kind outside the known ones becomes "other".
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client import CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kiosk import wipe

log = logging.getLogger(__name__)

PREFIX = "plus_kiosk"
SESSION_STATES = ("idle", "active", "warning", "wiping")
PRINTER_STATES = ("idle", "printing", "stopped", "unavailable", "unknown")
# kiosk.printing.cups_queue's problem codes, "ok" for none, "other" for a new one.
PRINTER_PROBLEMS = ("ok", "out_of_paper", "paper_jam", "out_of_ink", "door_open", "offline",
                    "paused", "missing", "cups_down", "other")
# What kiosk.session.leftover_kind() can answer (folders of a session, the cleaners).
LEFTOVER_KINDS = frozenset(wipe.SESSION_SUBDIRS) | {
    "sessions", "state", "data", "wipe", "processes", "browser-user", "print-jobs",
    "print-copies", "share-links", "clipboard", "other"}


@dataclass
class Snapshot:
    """What one write says; built by the daemon's runtime from its objects."""

    state: str = "idle"
    help_asked: bool = False
    leftovers: Mapping[str, int] = field(default_factory=dict)
    last_wipe_clean: bool | None = None       # None: no wipe yet
    last_wipe_time: float = 0.0               # epoch seconds
    last_wipe_seconds: float = 0.0
    wipes_clean: int = 0
    wipes_dirty: int = 0
    printer_state: str = "unknown"
    printer_problem: str | None = None
    pages_printed: int = 0
    scanner_present: bool | None = None       # None: not probed yet
    free_bytes: Mapping[str, int] = field(default_factory=dict)  # place → bytes
    shell_silent_seconds: float = 0.0
    written_at: float = 0.0


def leftover_kind_label(kind: str) -> str:
    return kind if kind in LEFTOVER_KINDS else "other"


def free_bytes(path: Path) -> int | None:
    try:
        st = os.statvfs(path)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


class _SnapshotCollector(Collector):
    def __init__(self, snapshot: Snapshot):
        self.snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        s = self.snapshot
        state = GaugeMetricFamily(f"{PREFIX}_session_state",
                                  "The session's state (1 for the current one).",
                                  labels=["state"])
        for name in SESSION_STATES:
            state.add_metric([name], 1.0 if s.state == name else 0.0)
        yield state
        yield GaugeMetricFamily(f"{PREFIX}_help_asked",
                                "1 while a resident asks for an agent (« Besoin d'aide »).",
                                value=1.0 if s.help_asked else 0.0)
        closed = GaugeMetricFamily(f"{PREFIX}_leftovers",
                                   "Items the last wipe left, by kind (the terminal stays "
                                   "closed until an agent's reset wipes clean).",
                                   labels=["kind"])
        counts: dict[str, int] = {}
        for kind, count in s.leftovers.items():
            label = leftover_kind_label(kind)
            counts[label] = counts.get(label, 0) + int(count)
        for kind, count in sorted(counts.items()):
            closed.add_metric([kind], float(count))
        yield closed
        yield GaugeMetricFamily(f"{PREFIX}_leftover_items",
                                "Items the last wipe left, all kinds together.",
                                value=float(sum(counts.values())))
        if s.last_wipe_clean is not None:
            yield GaugeMetricFamily(f"{PREFIX}_last_wipe_clean",
                                    "1 if the last wipe was verified clean, 0 if not.",
                                    value=1.0 if s.last_wipe_clean else 0.0)
            yield GaugeMetricFamily(f"{PREFIX}_last_wipe_timestamp_seconds",
                                    "When the last wipe ended (Unix time).",
                                    value=s.last_wipe_time)
            yield GaugeMetricFamily(f"{PREFIX}_last_wipe_duration_seconds",
                                    "How long the last wipe took.", value=s.last_wipe_seconds)
        wipes = CounterMetricFamily(f"{PREFIX}_wipes", "Wipes since the daemon started.",
                                    labels=["result"])
        wipes.add_metric(["clean"], float(s.wipes_clean))
        wipes.add_metric(["dirty"], float(s.wipes_dirty))
        yield wipes
        printer = GaugeMetricFamily(f"{PREFIX}_printer_state",
                                    "The printer's state (1 for the current one).",
                                    labels=["state"])
        printer_state = s.printer_state if s.printer_state in PRINTER_STATES else "unknown"
        for name in PRINTER_STATES:
            printer.add_metric([name], 1.0 if printer_state == name else 0.0)
        yield printer
        problem = GaugeMetricFamily(f"{PREFIX}_printer_problem",
                                    "The printer's problem (1 for the current one, ok: none).",
                                    labels=["problem"])
        current = s.printer_problem or "ok"
        current = current if current in PRINTER_PROBLEMS else "other"
        for name in PRINTER_PROBLEMS:
            problem.add_metric([name], 1.0 if current == name else 0.0)
        yield problem
        yield CounterMetricFamily(f"{PREFIX}_pages_printed",
                                  "Pages sent to the printer since the daemon started.",
                                  value=float(s.pages_printed))
        if s.scanner_present is not None:
            yield GaugeMetricFamily(f"{PREFIX}_scanner_present",
                                    "1 if the scanner answers.",
                                    value=1.0 if s.scanner_present else 0.0)
        free = GaugeMetricFamily(f"{PREFIX}_free_bytes",
                                 "Free space for the daemon: its data folder and the "
                                 "sessions' folder (a tmpfs on a terminal).",
                                 labels=["place"])
        for place, value in sorted(s.free_bytes.items()):
            free.add_metric([place], float(value))
        yield free
        yield GaugeMetricFamily(f"{PREFIX}_shell_last_seen_seconds",
                                "Seconds since the shell last asked the daemon for its status "
                                "(it does every second while its screen loop turns).",
                                value=round(s.shell_silent_seconds, 1))
        yield GaugeMetricFamily(f"{PREFIX}_metrics_written_timestamp_seconds",
                                "When the daemon wrote this file (Unix time): a stale value "
                                "means the daemon stopped.", value=s.written_at)


def render(snapshot: Snapshot) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot))
    return registry


class TextfileWriter:
    """Writes snapshots to one file; a failure is logged once, not at every write."""

    def __init__(self, path: str):
        self.path = path
        self._failing = False

    def write(self, snapshot: Snapshot) -> bool:
        if not self.path:
            return False
        target = Path(self.path)
        if not target.parent.is_dir():  # node_exporter is not installed here
            if not self._failing:
                log.info("metrics not written: no folder %s", target.parent)
                self._failing = True
            return False
        snapshot.written_at = time.time()
        try:
            write_to_textfile(str(target), render(snapshot))
        except OSError as exc:
            if not self._failing:
                log.warning("metrics not written to %s: %s", target, exc)
                self._failing = True
            return False
        if self._failing:
            log.info("metrics written again to %s", target)
            self._failing = False
        return True


class FleetMetrics:
    """The daemon's side: a snapshot of its runtime, written every few seconds and right
    after each wipe (the idle clock calls ``step`` twice a second)."""

    def __init__(self, path: str, data_dir: Path, clock=time.monotonic):
        self.writer = TextfileWriter(path)
        self.data_dir = Path(data_dir)
        self.clock = clock
        self.started = clock()
        self.shell_seen: float | None = None  # the shell's last /status (monotonic)
        self.help_asked = False
        self._due = 0.0
        self._last_report: object = None
        self._wipe_time = 0.0
        self._wipes = {True: 0, False: 0}
        self._pages_before = 0            # pages of the sessions that ended
        self._session_pages: tuple[str, int] | None = None

    def shell_polled(self) -> None:
        self.shell_seen = self.clock()

    def _follow(self, rt) -> None:
        """Wipes and pages since the last step (the runtime keeps only the last of each)."""
        report = rt.sessions.last_wipe
        if report is not None and report is not self._last_report:
            self._last_report = report
            self._wipe_time = time.time()
            self._wipes[bool(report.wiped)] += 1
            self._due = 0.0  # a wipe is written at once
        session = rt.sessions.session
        current = (session.id, session.pages_printed) if session is not None else None
        if self._session_pages and (current is None or current[0] != self._session_pages[0]):
            self._pages_before += self._session_pages[1]
        self._session_pages = current

    def snapshot(self, rt) -> Snapshot:
        sessions = rt.sessions
        report = sessions.last_wipe
        printer = rt.printer_status
        scanner = rt.scanner_status
        session = sessions.session
        places = {"data": self.data_dir, "sessions": self.data_dir / "sessions"}
        free = {place: value for place, path in places.items()
                if (value := free_bytes(path)) is not None}
        seen = self.shell_seen if self.shell_seen is not None else self.started
        return Snapshot(
            state=sessions.state,
            help_asked=bool(getattr(session, "help_asked", False)) if session else False,
            leftovers=sessions.leftover_counts(),
            last_wipe_clean=None if report is None else bool(report.wiped),
            last_wipe_time=self._wipe_time,
            last_wipe_seconds=0.0 if report is None else report.duration_ms / 1000,
            wipes_clean=self._wipes[True], wipes_dirty=self._wipes[False],
            printer_state=printer.state if printer is not None else "unknown",
            printer_problem=printer.problem if printer is not None else None,
            pages_printed=self._pages_before + (self._session_pages or ("", 0))[1],
            scanner_present=bool(scanner.get("available")) if scanner else None,
            free_bytes=free,
            shell_silent_seconds=max(0.0, self.clock() - seen))

    def step(self, rt, interval: float) -> bool:
        """Follow the runtime; write when due (or just after a wipe). True if written."""
        self._follow(rt)
        now = self.clock()
        if now < self._due:
            return False
        self._due = now + interval
        return self.writer.write(self.snapshot(rt))


def watch_shell(app, metrics_of) -> None:
    """Note when the shell last asked for ``/status``: it does every second from its screen
    loop, so a frozen shell stops (its heartbeat to systemd is not visible to the daemon).
    On a terminal the shell is told apart by its user; where everything runs as one user
    (tests, ``make demo``) any ``/status`` counts."""
    from flask import request

    from kiosk.daemon import callers as daemon_callers

    @app.after_request
    def shell_seen(response):
        if request.endpoint == "api.status" and response.status_code == 200:
            metrics = metrics_of()
            known = app.config.get("KIOSK_CALLERS")
            if metrics is not None and known is not None:
                role = known.role(request.environ.get(daemon_callers.PEER_KEY))
                if role == daemon_callers.SHELL or (role == daemon_callers.ADMIN
                                                   and not known.shell):
                    metrics.shell_polled()
        return response


def generate(snapshot: Snapshot) -> bytes:
    """The file's text, as written (for tests and ``kioskctl``)."""
    from prometheus_client import generate_latest
    return generate_latest(render(snapshot))
