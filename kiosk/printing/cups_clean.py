"""CUPS's own copies of a resident's documents, and the root step that removes them.

Why this exists: when a print is cut short — the wipe cancels it, cupsd restarts or
dies mid-job — the filter chain has already written copies of the document into
CUPS's temporary folder (``TempDir``: a whole PDF from ``pdftopdf``, Ghostscript's
files holding the page's text), and a cupsd killed mid-job leaves the document itself
(``d<job>-<n>``) or its control file (``c<job>``) in the spool with no job to own them.
cupsd empties ``TempDir`` only when it starts and never deletes an orphaned job file.
These files belong to ``lp`` and root, in folders of mode 0710 and 1770 (``root:lp``):
the daemon's unprivileged user can neither list nor delete them, and must not be
given ``lp`` (that group also reads CUPS's configuration and drives local printers).

So the work is split in two:

* the **root step** (``main()``; ``plus-kiosk-cups-clean.service`` on a terminal, which
  the daemon's user may start through polkit and nothing more): when anything is
  there, stop cupsd (every filter dies with it, none can write again), empty
  ``TempDir`` and delete the job files no live job owns, start cupsd again (0.07 s).
  It reports what is left as a kind and a count — never a name, names are a person's
  — as JSON on its standard output and, for the daemon, in a small report file;
* the wipe's cleaner, ``PrintCopies``, which starts the step whenever the daemon cannot
  rule such copies out, and reports what the step says is left as leftovers of kind
  ``print-copies`` until it is gone. A step that cannot run counts as one leftover: the
  terminal stays closed rather than trusting a folder nobody looked at.

On a terminal ``TempDir`` is also a size-capped tmpfs (``var-spool-cups-tmp.mount``),
so a power cut leaves none of these copies on disk.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable, Protocol, Sequence

from kiosk import wipe
from kiosk.i18n import _, language_from_environment, set_language

log = logging.getLogger(__name__)

KIND = "print-copies"
CLEAN_UNIT = "plus-kiosk-cups-clean.service"
# Written by the root step (its unit's RuntimeDirectory=), read by the daemon: counts only.
REPORT_FILE = Path("/run/plus-kiosk-cups-clean/report.json")
FILES_CONF = Path("/etc/cups/cups-files.conf")
SPOOL = Path("/var/spool/cups")  # cupsd's RequestRoot on Debian
# Debian's units: the socket and the path unit would start cupsd again in the middle
# of the cleaning (the daemon polls the printer every few seconds).
CUPS_UNITS = ("cups.path", "cups.socket", "cups.service")
# Requires=cups.service: stopping cupsd stops it too. It only asserts the queue (lpadmin,
# which may wait for the printer), so it is started again without waiting for it.
PRINTER_UNIT = "plus-kiosk-printer.service"
JOB_FILE = re.compile(r"c(\d+)|d(\d+)-\d+")
STEP_TIMEOUT_SECONDS = 60.0
REPORT_SLACK_SECONDS = 2.0  # file times lag the clock by a tick


# -- the root step ---------------------------------------------------------------------

def cups_dirs(files_conf: Path = FILES_CONF) -> tuple[Path, Path]:
    """cupsd's spool (``RequestRoot``) and temporary folder (``TempDir``), from its files
    configuration; CUPS's defaults where a directive is missing."""
    values: dict[str, str] = {}
    try:
        lines = files_conf.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0] in ("RequestRoot", "TempDir"):
            values[parts[0]] = parts[1].strip()
    spool = Path(values.get("RequestRoot", str(SPOOL)))
    return spool, Path(values.get("TempDir", str(spool / "tmp")))


def stray_job_files(spool: Path, live: Iterable[int]) -> list[str]:
    """Job files in the spool whose job cupsd no longer has (names stay in this module)."""
    keep = set(live)
    try:
        entries = list(os.scandir(spool))
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        match = JOB_FILE.fullmatch(entry.name)
        if match and not entry.is_dir(follow_symlinks=False) and \
                int(match.group(1) or match.group(2)) not in keep:
            found.append(entry.name)
    return sorted(found)


def temp_entries(temp: Path) -> int:
    """Everything below ``TempDir`` (links are counted, never followed); a folder that
    cannot be read counts as one."""
    if not temp.is_dir():
        return 0
    found = 0

    def unreadable(_error: OSError) -> None:
        nonlocal found
        found += 1

    for _folder, folders, files in os.walk(temp, onerror=unreadable):
        found += len(folders) + len(files)
    return found


def count(spool: Path, temp: Path, live: Iterable[int]) -> int:
    return temp_entries(temp) + len(stray_job_files(spool, live))


def empty(spool: Path, temp: Path, live: Iterable[int]) -> None:
    """Delete what ``count`` counts; never raises (the count afterwards says what stayed)."""
    try:
        fd = os.open(temp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        fd = None
    if fd is not None:
        try:
            wipe.empty_folder(fd)  # no recursion, no link followed, odd modes handled
        finally:
            os.close(fd)
    for name in stray_job_files(spool, live):
        try:
            os.unlink(spool / name)
        except OSError:
            pass


def clean(spool: Path, temp: Path, live: Iterable[int], stop: Callable[[], bool],
          start: Callable[[], None]) -> int:
    """Empty CUPS's folders of a resident's copies; what is left afterwards (0 = clean).

    ``live`` are the jobs cupsd still has (their files stay: the printing cleaner reports
    the jobs themselves). ``stop()`` stops cupsd and says whether it was running;
    ``start()`` starts it again. Nothing to delete, nothing restarted."""
    live = set(live)
    if count(spool, temp, live) == 0:
        return 0
    running = stop()
    try:
        empty(spool, temp, live)
    finally:
        if running:
            start()
    return count(spool, temp, live)


def _systemctl(*args: str) -> int:
    return subprocess.run(["systemctl", *args], stdin=subprocess.DEVNULL, check=False,
                          timeout=STEP_TIMEOUT_SECONDS).returncode


def live_jobs() -> set[int]:
    """Every job the system's cupsd still has (asked as root, on its socket)."""
    import cups
    return set(cups.Connection().getJobs(which_jobs="all", requested_attributes=["job-id"]))


def write_report(path: Path, left: int) -> None:
    """Counts only, replaced whole (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".new")
    partial.write_text(json.dumps({KIND: left}) + "\n")
    partial.chmod(0o644)
    os.replace(partial, path)


def main(argv: Sequence[str] | None = None) -> int:
    """As root, on a terminal: 0 when CUPS's folders hold nothing of a resident."""
    set_language(language_from_environment())
    parser = argparse.ArgumentParser(prog="python -m kiosk.printing.cups_clean")
    parser.add_argument("--files-conf", type=Path, default=FILES_CONF)
    parser.add_argument("--report", type=Path)
    args = parser.parse_args(argv)
    spool, temp = cups_dirs(args.files_conf)
    running = [unit for unit in CUPS_UNITS if _systemctl("is-active", "--quiet", unit) == 0]
    live: set[int] = set()
    if "cups.service" in running:  # never ask a cupsd that is not up: at boot it waits for us
        try:
            live = live_jobs()
        except Exception as exc:  # noqa: BLE001 - a cupsd that does not answer is stopped anyway
            log.warning("cupsd's jobs cannot be listed: %s", type(exc).__name__)

    def stop() -> bool:
        if "cups.service" not in running:
            return False
        _systemctl("stop", *running)
        return True

    printer = _systemctl("is-active", "--quiet", PRINTER_UNIT) == 0

    def start() -> None:
        _systemctl("start", *running)
        if printer:
            _systemctl("start", "--no-block", PRINTER_UNIT)

    try:
        left = clean(spool, temp, live, stop, start)
    except Exception as exc:  # noqa: BLE001 - reported, and no report means "unverified"
        print(_("CUPS's folders cannot be cleaned ({error}).").format(
            error=type(exc).__name__), file=sys.stderr)
        return 2
    if args.report:
        write_report(args.report, left)
    print(json.dumps({KIND: left}))
    if left:
        print(_("{count} copy(ies) of residents' documents are still in CUPS's folders.")
              .format(count=left), file=sys.stderr)
    return 1 if left else 0


# -- the wipe's side ----------------------------------------------------------------------

class Sent(Protocol):
    sent: int  # how many jobs the queue was given since the daemon started


class CleanupStep:
    """Runs the root step: ``argv`` as is (tests, ``make demo``: the command prints the
    report), or ``systemctl start`` of the unit, whose report is in ``report``."""

    def __init__(self, argv: Sequence[str], report: Path | None = None):
        self.argv = list(argv)
        self.report = report

    def run(self) -> int | None:
        """How many copies are left; None when that cannot be known."""
        started = time.time()
        try:
            result = subprocess.run(self.argv, capture_output=True, text=True, check=False,
                                    timeout=STEP_TIMEOUT_SECONDS, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            log.error("CUPS cleanup step did not run: %s", type(exc).__name__)
            return None
        text = result.stdout
        if self.report is not None:
            if result.returncode == 0:
                return 0  # the unit's step exits 0 only when nothing is left
            try:
                fresh = self.report.stat().st_mtime >= started - REPORT_SLACK_SECONDS
                text = self.report.read_text() if fresh else ""
            except OSError:
                text = ""
        try:
            left = int(json.loads(text.strip().splitlines()[-1])[KIND])
        except (ValueError, IndexError, KeyError, TypeError):
            log.error("CUPS cleanup step failed (exit %s), no report", result.returncode)
            return None
        if left == 0 and result.returncode != 0:
            return None
        return left


def cleanup_step(command: Sequence[str], under_systemd: bool) -> CleanupStep | None:
    """``[printing] cleanup_command``: ``["auto"]`` is the unit on a terminal (the daemon or
    the boot wipe runs as a kiosk unit) and nothing elsewhere; ``[]`` is nothing."""
    if list(command) == ["auto"]:
        if not under_systemd:
            return None
        return CleanupStep(["systemctl", "start", CLEAN_UNIT], REPORT_FILE)
    return CleanupStep(command) if command else None


class PrintCopies:
    """A cleaner: CUPS's copies of the session's prints (kind ``print-copies``).

    The daemon cannot look into CUPS's folders, so it runs the root step whenever
    copies cannot be ruled out: at its first wipe (after a crash, a ``kill -9`` or a
    power cut nobody knows what was printing), after any session that sent a job (a
    cupsd restart mid-print is invisible to it), and again after any wipe that left
    some. A session that printed nothing costs nothing."""

    name = "print copies"

    def __init__(self, queue: Sent, step: CleanupStep | None):
        self.queue = queue
        self.step = step
        self._checked: int | None = None  # queue.sent when the step last found it clean
        self._left: int | None = 0        # None: unverified

    def wipe(self) -> None:
        if self.step is None:
            return
        sent = self.queue.sent
        if self._checked == sent and self._left == 0:
            return
        self._left = self.step.run()
        self._checked = sent if self._left == 0 else None
        if self._left:
            log.error("CUPS's folders hold %d copy(ies) after the cleanup step", self._left)

    def leftovers(self) -> list[str]:
        if self._left is None:
            return ["CUPS's folders cannot be verified (cleanup step failed)"]
        return ["a copy in CUPS's folders"] * self._left


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    sys.exit(main())
