"""The site's CUPS queue, through pycups.

Also a wipe step: a resident's jobs are cancelled and purged (documents and
history) at the end of the session, so neither paper nor the queue's memory
hands anything to the next resident. Job titles never carry a resident's file
name, because CUPS logs them. What the filter chain copied into CUPS's own
folders before a job was cut short is the next cleaner's (``cups_clean``).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import cups

log = logging.getLogger(__name__)

# IPP job-state values → the four states the kiosk reports.
JOB_STATES = {3: "pending", 4: "pending", 5: "processing", 6: "processing",
              7: "aborted", 8: "aborted", 9: "completed"}
PRINTER_STATES = {3: "idle", 4: "printing", 5: "stopped"}

# printer-state-reasons (without -error/-warning/-report suffixes) → problem code.
PROBLEMS = {
    "media-empty": "out_of_paper", "media-needed": "out_of_paper",
    "media-jam": "paper_jam", "toner-empty": "out_of_ink", "marker-supply-empty": "out_of_ink",
    "door-open": "door_open", "cover-open": "door_open",
    "offline": "offline", "connecting-to-device": "offline", "timed-out": "offline",
    "paused": "paused",
}


PURGE_WAIT_SECONDS = 5.0

# What CUPS backends report while they cannot reach a printer (cupsd runs in the C locale).
OFFLINE_MESSAGES = ("may not exist or is unavailable", "Waiting for printer to become available",
                    "Unable to connect", "Network host", "is busy; will retry")


@dataclass
class PrinterStatus:
    queue: str
    state: str                     # idle, printing, stopped, unavailable
    problem: str | None = None     # a PROBLEMS code, "paused", "missing", "cups_down"
    reasons: list[str] = field(default_factory=list)


class PrintQueue:
    """Submit, follow and purge jobs on one queue. Also a session cleaner."""

    name = "printing"

    def __init__(self, queue: str):
        self.queue = queue
        self._lock = threading.Lock()  # a pycups connection is not thread-safe
        self._unverified_jobs = False  # jobs were sent and not yet seen purged
        # Jobs given to CUPS since the daemon started: CUPS's own copies of them
        # (kiosk.printing.cups_clean.PrintCopies) are looked for after each new one.
        self.sent = 0

    def _connection(self) -> cups.Connection:
        return cups.Connection()

    def submit(self, path: Path, title: str, copies: int) -> int:
        with self._lock:
            self._unverified_jobs = True
            self.sent += 1
            return self._connection().printFile(self.queue, str(path), title,
                                                {"copies": str(copies)})

    def job_state(self, job_id: int) -> str:
        with self._lock:
            try:
                attributes = self._connection().getJobAttributes(job_id, ["job-state"])
            except cups.IPPError:
                return "aborted"  # purged or unknown
            except RuntimeError:
                return "pending"  # CUPS is not answering right now; the job was accepted
        return JOB_STATES.get(attributes.get("job-state", 0), "pending")

    def status(self) -> PrinterStatus:
        try:
            with self._lock:
                attributes = self._connection().getPrinterAttributes(
                    self.queue, requested_attributes=["printer-state", "printer-state-reasons",
                                                      "printer-state-message",
                                                      "printer-is-accepting-jobs"])
        except cups.IPPError:
            return PrinterStatus(self.queue, "unavailable", "missing")
        except RuntimeError:
            return PrinterStatus(self.queue, "unavailable", "cups_down")
        state = PRINTER_STATES.get(attributes.get("printer-state", 0), "unavailable")
        reasons = [r for r in attributes.get("printer-state-reasons", []) if r != "none"]
        problem = None
        for reason in reasons:
            base = reason.rsplit("-", 1)[0] if reason.endswith(("-error", "-warning", "-report")) \
                else reason
            if base in PROBLEMS:
                problem = PROBLEMS[base]
                break
        if problem is None and (state == "stopped" or not attributes.get(
                "printer-is-accepting-jobs", True)):
            problem = "paused"
        message = attributes.get("printer-state-message", "")
        if problem is None and state == "printing" and any(
                hint in message for hint in OFFLINE_MESSAGES):
            problem = "offline"  # network backends say so only in their message
        return PrinterStatus(self.queue, state, problem, reasons)

    def _jobs(self, connection: cups.Connection) -> list[int]:
        jobs = connection.getJobs(which_jobs="all",
                                   requested_attributes=["job-id", "job-printer-uri"])
        suffix = "/printers/" + self.queue
        return [job for job, attrs in jobs.items()
                if str(attrs.get("job-printer-uri", "")).endswith(suffix)]

    # -- cleaner -------------------------------------------------------------

    def wipe(self) -> None:
        """Cancel and purge every job of the queue; a job whose backend is still
        running (a printer that does not answer) takes CUPS a moment to drop."""
        try:
            with self._lock:
                connection = self._connection()
                deadline = time.monotonic() + PURGE_WAIT_SECONDS
                while jobs := self._jobs(connection):
                    for job in jobs:
                        try:
                            connection.cancelJob(job, purge_job=True)
                        except cups.IPPError:
                            pass  # already going away
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.1)
        except (RuntimeError, cups.IPPError) as exc:
            log.warning("cannot purge print jobs: %s", exc)

    def leftovers(self) -> list[str]:
        try:
            with self._lock:
                jobs = [f"job {job}" for job in self._jobs(self._connection())]
        except RuntimeError:
            # CUPS does not answer: if this session sent jobs, they may still be queued
            # and print for the next resident, so this cannot count as clean.
            return ["print queue cannot be verified (CUPS unreachable)"] \
                if self._unverified_jobs else []
        except cups.IPPError as exc:
            return [f"jobs cannot be listed ({exc})"]
        if not jobs:
            self._unverified_jobs = False
        return jobs
