"""Everything the daemon runs, built once from the site configuration.

The web routes only translate HTTP into calls on these objects; the objects
know nothing of HTTP. Slow facts (the printer's and scanner's state) are read
by a background thread, so ``/status`` answers from memory in microseconds.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.clipboard import Clipboard
from kiosk.config import SiteConfig
from kiosk.devices import DeviceWatcher
from kiosk.guides import GuideLibrary, load_for_site
from kiosk.metrics import FleetMetrics
from kiosk.policy import KioskPolicy
from kiosk.printing.cups_clean import PrintCopies, cleanup_step
from kiosk.printing.cups_queue import PrintQueue, PrinterStatus
from kiosk.processes import (DAEMON_UNIT, SessionProcesses, UserProcesses, for_launcher,
                             running_in_unit)
from kiosk.records import Recorder, due_daily
from kiosk.scanning import Scanner
from kiosk.session import SessionManager
from kiosk.sharing import ShareLinks, ShareServer

log = logging.getLogger(__name__)

PRINTER_REFRESH_SECONDS = 5.0
METRICS_SECONDS = 5.0  # node_exporter's textfile (kiosk.metrics); also right after a wipe
SCANNER_REFRESH_SECONDS = 60.0  # listing SANE devices probes every backend: slow
BOOT_WIPE_UNIT = "plus-kiosk-wipe.service"  # kiosk-daemon --wipe-only at boot


@dataclass
class Runtime:
    config: SiteConfig
    data_dir: Path
    policy: KioskPolicy
    sessions: SessionManager
    printer: PrintQueue
    scanner: Scanner
    links: ShareLinks
    share_server: ShareServer | None
    clipboard: Clipboard
    processes: SessionProcesses
    devices: DeviceWatcher
    guides: GuideLibrary
    records: Recorder
    printer_status: PrinterStatus | None = None
    scanner_status: dict[str, object] = field(default_factory=dict)
    metrics: FleetMetrics | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @classmethod
    def build(cls, config: SiteConfig, data_dir: Path, *, share_listener: bool = True) -> "Runtime":
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
        printer = PrintQueue(config.printing.queue)
        links = ShareLinks(config.sharing.lifetime_seconds)
        clipboard = Clipboard(config.daemon.x_display)
        processes = for_launcher(config.browser.launcher, data_dir / ".state" / "processes.json")
        # CUPS's own copies of the session's prints: looked for once its jobs are cancelled
        # (the root step stops cupsd, so no filter of theirs writes again).
        copies = PrintCopies(printer, cleanup_step(
            config.printing.cleanup_command,
            under_systemd=running_in_unit(DAEMON_UNIT) or running_in_unit(BOOT_WIPE_UNIT)))
        # Order matters: stop the browser, then every process of its user (one that
        # left the browser's process group too), before deleting what they may still write.
        records = Recorder(config)
        sessions = SessionManager(
            data_dir, page_quota=config.session.print_quota_pages,
            idle_warning_seconds=config.session.idle_warning_seconds,
            countdown_seconds=config.session.idle_countdown_seconds,
            cleaners=[processes, UserProcesses(config.browser.user), printer, copies, links,
                      clipboard],
            on_end=lambda session, reason: records.session_ended(
                session.started_at, session.pages_printed, session.usage, reason))
        share_server = None
        sharing = config.sharing
        if share_listener and (sharing.listen or sharing.interface):
            share_server = ShareServer(links, listen=sharing.listen, interface=sharing.interface,
                                       port=sharing.port, public_url=sharing.public_url)
        return cls(config=config, data_dir=data_dir, policy=config.policy(), sessions=sessions,
                   printer=printer, scanner=Scanner(config.scanning.device), links=links,
                   share_server=share_server, clipboard=clipboard, processes=processes,
                   devices=DeviceWatcher(refuse_usb_storage=config.devices.usb_storage == "refuse"),
                   guides=load_for_site(config), records=records)

    def _idle_clock(self) -> None:
        """Its own thread: a printer or scanner that hangs must not delay a wipe."""
        while not self._stop.wait(0.5):
            try:
                self.sessions.tick()
            except Exception:
                log.exception("idle clock step failed")
            if self.metrics is not None:
                try:
                    self.metrics.step(self, METRICS_SECONDS)
                except Exception:
                    log.exception("metrics step failed")

    def _background(self) -> None:
        """The device states (now and then)."""
        due = {"printer": 0.0, "scanner": 0.0}
        retention = time.time()  # applied at start; then once a day
        while True:
            try:
                now = time.monotonic()
                if now >= due["printer"]:
                    self.printer_status = self.printer.status()
                    due["printer"] = now + PRINTER_REFRESH_SECONDS
                if now >= due["scanner"]:
                    self.scanner_status = self.scanner.status()
                    due["scanner"] = now + SCANNER_REFRESH_SECONDS
                if due_daily(retention, time.time()):
                    retention = time.time()
                    self.records.apply_retention()
            except Exception:
                log.exception("background step failed")
            if self._stop.wait(0.5):
                return

    def start(self) -> None:
        """Wipe whatever a crash left, then start the helpers."""
        report = self.sessions.wipe("boot")
        log.info("boot wipe: %s", report.as_dict())
        if self.metrics is None and self.config.monitoring.textfile:
            self.metrics = FleetMetrics(self.config.monitoring.textfile, self.data_dir)
        self.records.start()  # a damaged database is moved aside here, and said so
        self.devices.start()
        if self.share_server is not None:
            self.share_server.start()
        threading.Thread(target=self._idle_clock, name="idle-clock", daemon=True).start()
        threading.Thread(target=self._background, name="device-state", daemon=True).start()

    def stop(self) -> None:
        """Leaving never keeps a resident's files for later: wipe on the way out too."""
        self._stop.set()
        report = self.sessions.wipe("boot")
        log.info("stop wipe: %s", report.as_dict())
        self.devices.stop()
        if self.share_server is not None:
            self.share_server.stop()
