"""Issue #13: CUPS's own copies of a resident's documents die at every wipe.

A print cut short by « Terminer » (or by a cupsd restart, or a cupsd or daemon
killed mid-job) leaves copies that the job list does not show: the filters' files
in CUPS's TempDir (a whole PDF from pdftopdf, Ghostscript's files with the page's
text) and, when cupsd dies, the document itself in the spool with no job left.
Before this issue every such wipe reported "clean" and the copies stayed until a
reboot. Here the real private cupsd prints through cups-pdf; the wipe must leave
its TempDir and its spool without a file of the session, and report by kind what it
could not remove.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import wait_for
from kiosk.daemon_client import DaemonError
from kiosk.printing import cups_clean
from kiosk.session import leftover_counts
from test_wipe import make_pdf

PAGES, LINES = 450, 60  # cups-pdf needs 5 s for them: the filters are mid-way for a while


@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory) -> Path:
    from reportlab.pdfgen import canvas
    path = tmp_path_factory.mktemp("long") / "avis.pdf"
    document = canvas.Canvas(str(path))
    for page in range(PAGES):
        for line in range(LINES):
            document.drawString(40, 800 - 12 * line,
                                f"avis d'imposition de Mme Exemple, page {page} ligne {line}")
        document.showPage()
    document.save()
    return path


def job_files(cupsd) -> list[str]:
    return sorted(p.name for p in cupsd.spool.iterdir() if cups_clean.JOB_FILE.fullmatch(p.name))


def copies(cupsd) -> list[str]:
    """What CUPS holds of the residents' documents besides its job list."""
    return sorted(str(p.relative_to(cupsd.spool)) for p in cupsd.temp.rglob("*")) + \
        job_files(cupsd)


def print_cut_short_soon(daemon, cupsd, source: Path) -> dict:
    """A long print, returned as soon as the filters have written their first copy."""
    client = daemon.client()
    client.start_session()
    before = set(cupsd.outputs())
    job = client.print_file(source)
    wait_for(lambda: any(cupsd.temp.iterdir()), timeout=30, what="the filters' first copy")
    return {"job": job, "outputs": before}


def assert_cut_short(cupsd, printing) -> None:
    """The precondition, checked afterwards: the job never came out."""
    time.sleep(0.3)
    assert set(cupsd.outputs()) == printing["outputs"], "the print finished: not cut short"


def assert_cups_holds_nothing(cupsd) -> None:
    assert copies(cupsd) == []
    assert cupsd.jobs("all") == {}


def test_a_print_cut_short_by_terminer_leaves_no_copy_in_cups(daemon_factory, cupsd, tmp_path,
                                                             long_pdf):
    """Before: the wipe cancelled the job, reported clean, and pdftopdf's whole PDF
    (and Ghostscript's files) stayed in TempDir until a reboot."""
    daemon = daemon_factory(**{"session.print_quota_pages": "500"})
    printing = print_cut_short_soon(daemon, cupsd, long_pdf)
    report = daemon.client().end_session("user")
    assert report["wiped"] is True and report["leftovers"] == {}, report
    assert_cut_short(cupsd, printing)
    assert_cups_holds_nothing(cupsd)
    # cupsd was restarted in place: the next resident prints as before.
    client = daemon.client()
    client.start_session()
    one = tmp_path / "one.pdf"
    make_pdf(one, ["attestation"])
    job = client.print_file(one)
    wait_for(lambda: client.print_job(job["id"])["state"] == "completed", timeout=60,
             what="a print after the cleanup")


def test_copies_that_cannot_be_deleted_keep_the_terminal_closed(daemon, cupsd):
    """Counted by kind, never named; the terminal stays closed until they are gone."""
    daemon.client().start_session()
    stuck = cupsd.temp / "0a1b2c3d4e5f6"
    stuck.write_text("Mme Exemple, numéro fiscal")
    if subprocess.run(["chattr", "+i", str(stuck)], capture_output=True).returncode != 0:
        stuck.unlink()
        pytest.skip("this filesystem cannot make a file undeletable (chattr +i)")
    try:
        daemon.client().print_file(write_pdf(daemon.root / "one.pdf"))
        report = daemon.client().end_session("user")
        assert report["wiped"] is False and report["leftovers"] == {"print-copies": 1}, report
        with pytest.raises(DaemonError) as caught:
            daemon.client().start_session()
        assert caught.value.code == "leftovers"
        assert daemon.client().status()["leftovers"] == {"print-copies": 1}
        assert stuck.name not in daemon.log()
    finally:
        subprocess.run(["chattr", "-i", str(stuck)], check=True)
    assert daemon.client().agent_reset("agent-secret-token")["wiped"] is True
    assert_cups_holds_nothing(cupsd)


def write_pdf(path: Path) -> Path:
    make_pdf(path, ["une page"])
    return path


def test_kill_9_of_the_daemon_mid_print_then_its_start_up_wipe(daemon_factory, cupsd, long_pdf):
    """The restarted daemon cannot know what was printing: its first wipe looks anyway."""
    daemon = daemon_factory(**{"session.print_quota_pages": "500"})
    printing = print_cut_short_soon(daemon, cupsd, long_pdf)
    daemon.kill9()
    daemon.start()
    assert "wipe (boot) verified clean" in daemon.log()
    assert_cut_short(cupsd, printing)
    assert_cups_holds_nothing(cupsd)


def test_kill_9_mid_print_then_the_boot_wipe(daemon_factory, cupsd, long_pdf):
    """``kiosk-daemon --wipe-only`` (plus-kiosk-wipe.service at boot) does the same."""
    daemon = daemon_factory(**{"session.print_quota_pages": "500"})
    printing = print_cut_short_soon(daemon, cupsd, long_pdf)
    daemon.kill9()
    result = subprocess.run([str(Path(sys.executable).parent / "kiosk-daemon"), "--config",
                             str(daemon.site_file), "--wipe-only"], capture_output=True,
                            text=True, timeout=120,
                            env={**os.environ, "CUPS_SERVER": cupsd.socket})
    assert result.returncode == 0, result.stderr
    assert_cut_short(cupsd, printing)
    assert_cups_holds_nothing(cupsd)


def test_a_cupsd_restart_mid_print_leaves_no_copy(daemon_factory, cupsd, long_pdf):
    """cupsd empties TempDir when it starts, but runs the job again: the wipe then cuts
    that run short, and its copies were left too."""
    daemon = daemon_factory(**{"session.print_quota_pages": "500"})
    printing = print_cut_short_soon(daemon, cupsd, long_pdf)
    cupsd.restart()
    wait_for(lambda: any(cupsd.temp.iterdir()), timeout=30, what="the job running again")
    report = daemon.client().end_session("user")
    assert report["wiped"] is True and report["leftovers"] == {}, report
    assert_cut_short(cupsd, printing)
    assert_cups_holds_nothing(cupsd)


def test_cupsd_killed_mid_print_leaves_no_orphan_document(daemon_factory, cupsd, long_pdf):
    """A cupsd killed before it saved the job leaves the document (d-file) in the spool,
    owned by no job: nothing in CUPS ever deletes it."""
    daemon = daemon_factory(**{"session.print_quota_pages": "500"})
    print_cut_short_soon(daemon, cupsd, long_pdf)
    cupsd.restart(signal.SIGKILL)
    orphans = job_files(cupsd)
    assert any(name.startswith("d") for name in orphans), orphans
    report = daemon.client().end_session("user")
    assert report["wiped"] is True and report["leftovers"] == {}, report
    assert_cups_holds_nothing(cupsd)


# -- the step and the cleaner, without cupsd ------------------------------------------------

def test_clean_empties_tempdir_and_stray_job_files_only(tmp_path):
    spool, temp = tmp_path / "spool", tmp_path / "spool" / "tmp"
    (temp / "gs-dir" / "deeper").mkdir(parents=True)
    (temp / "077536b1c0f1a").write_text("whole PDF")
    (temp / "gs-dir" / "deeper" / "gs_3XHR3s").write_text("page text")
    outside = tmp_path / "outside.txt"
    outside.write_text("not CUPS's")
    (temp / "link").symlink_to(outside)
    for name in ("c00001", "d00001-001", "c00002", "d00002-001", "d00003-002"):
        (spool / name).write_text("job")
    (spool / "job.cache").write_text("kept")  # not a job file
    calls = []
    live = {1}  # cupsd still has job 1: its files stay, the job list reports it
    assert cups_clean.count(spool, temp, live) == 5 + 3  # 2 folders, 2 files, a link
    left = cups_clean.clean(spool, temp, live, lambda: calls.append("stop") or True,
                            lambda: calls.append("start"))
    assert (left, calls) == (0, ["stop", "start"])
    assert list(temp.iterdir()) == [] and outside.read_text() == "not CUPS's"
    assert sorted(p.name for p in spool.iterdir()) == ["c00001", "d00001-001", "job.cache",
                                                        "tmp"]
    # Nothing to delete: cupsd is left alone.
    assert cups_clean.clean(spool, temp, live, lambda: calls.append("stop") or True,
                            lambda: calls.append("start")) == 0
    assert calls == ["stop", "start"]


def test_cups_dirs_come_from_cups_files_conf(tmp_path):
    conf = tmp_path / "cups-files.conf"
    conf.write_text("# comment\nRequestRoot /srv/spool\nTempDir /srv/t\n")
    assert cups_clean.cups_dirs(conf) == (Path("/srv/spool"), Path("/srv/t"))
    conf.write_text("RequestRoot /srv/spool\n")
    assert cups_clean.cups_dirs(conf) == (Path("/srv/spool"), Path("/srv/spool/tmp"))
    assert cups_clean.cups_dirs(tmp_path / "missing") == (Path("/var/spool/cups"),
                                                           Path("/var/spool/cups/tmp"))


def test_auto_is_the_root_unit_on_a_terminal_and_nothing_elsewhere():
    assert cups_clean.cleanup_step(["auto"], under_systemd=False) is None
    step = cups_clean.cleanup_step(["auto"], under_systemd=True)
    assert step.argv == ["systemctl", "start", "plus-kiosk-cups-clean.service"]
    assert step.report == Path("/run/plus-kiosk-cups-clean/report.json")
    assert cups_clean.cleanup_step([], under_systemd=True) is None
    assert cups_clean.cleanup_step(["/bin/x", "y"], under_systemd=True).argv == ["/bin/x", "y"]


class Queue:
    sent = 0


def script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / f"step{len(list(tmp_path.iterdir()))}.sh"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return [str(path)]


def kinds(cleaner) -> dict[str, int]:
    return leftover_counts([f"{cleaner.name}: {item}" for item in cleaner.leftovers()])


def test_the_step_runs_whenever_copies_cannot_be_ruled_out(tmp_path):
    runs = tmp_path / "runs"
    left = tmp_path / "left"
    left.write_text("0")
    command = script(tmp_path, f'echo run >> {runs}\nn=$(cat {left})\n'
                               'echo "{\\"print-copies\\": $n}"\n[ "$n" = 0 ]\n')
    queue = Queue()
    cleaner = cups_clean.PrintCopies(queue, cups_clean.CleanupStep(command))
    ran = lambda: len(runs.read_text().splitlines()) if runs.exists() else 0  # noqa: E731
    cleaner.wipe()  # the first wipe (the daemon's start, --wipe-only): always
    assert (ran(), kinds(cleaner)) == (1, {})
    cleaner.wipe()  # a session that printed nothing: nothing to look for
    assert ran() == 1
    queue.sent += 1
    left.write_text("3")
    cleaner.wipe()
    assert (ran(), kinds(cleaner)) == (2, {"print-copies": 3})
    cleaner.wipe()  # still dirty: looked at again at every wipe until clean
    left.write_text("0")
    cleaner.wipe()
    assert (ran(), kinds(cleaner)) == (4, {})
    cleaner.wipe()
    assert ran() == 4


@pytest.mark.parametrize("body", ["exit 3\n", 'echo "not json"\nexit 1\n',
                                  'echo \'{"print-copies": 0}\'\nexit 1\n'])
def test_a_step_that_fails_is_one_unverified_leftover(tmp_path, body):
    cleaner = cups_clean.PrintCopies(Queue(), cups_clean.CleanupStep(script(tmp_path, body)))
    cleaner.wipe()
    assert kinds(cleaner) == {"print-copies": 1}
    missing = cups_clean.PrintCopies(Queue(), cups_clean.CleanupStep([str(tmp_path / "none")]))
    missing.wipe()
    assert kinds(missing) == {"print-copies": 1}


def test_the_units_report_is_read_only_when_fresh(tmp_path):
    """On a terminal ``systemctl start`` says only whether the step failed; the count is
    in the step's report, and a report left by an older run says nothing."""
    report = tmp_path / "report.json"
    cups_clean.write_report(report, 2)
    assert json.loads(report.read_text()) == {"print-copies": 2}
    assert oct(report.stat().st_mode & 0o777) == "0o644"
    fails = script(tmp_path, "exit 1\n")
    assert cups_clean.CleanupStep(fails, report).run() == 2
    old = time.time() - 60
    os.utime(report, (old, old))
    assert cups_clean.CleanupStep(fails, report).run() is None
    assert cups_clean.CleanupStep(script(tmp_path, "exit 0\n"), report).run() == 0


@pytest.mark.parametrize("active", [("cups.path", "cups.socket", "cups.service",
                                     "plus-kiosk-printer.service"), ()])
def test_the_root_step_stops_and_starts_debians_cups_units_around_the_cleaning(
        tmp_path, monkeypatch, capsys, active):
    """What plus-kiosk-cups-clean.service runs (no systemd here: a stand-in systemctl
    records the calls). At boot cupsd is not up yet: it is neither asked nor started."""
    spool, temp = tmp_path / "spool", tmp_path / "spool" / "tmp"
    temp.mkdir(parents=True)
    (temp / "gs_3XHR3s").write_text("page text")
    (spool / "d00007-001").write_text("the document")
    conf = tmp_path / "cups-files.conf"
    conf.write_text(f"RequestRoot {spool}\nTempDir {temp}\n")
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n'
        f'case "$*" in is-active*) for u in {" ".join(active)}; do '
        '[ "$3" = "$u" ] && exit 0; done; exit 3;; esac\n')
    (bin_dir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("CUPS_SERVER", str(tmp_path / "no-cupsd.sock"))
    report = tmp_path / "run" / "report.json"
    assert cups_clean.main(["--files-conf", str(conf), "--report", str(report)]) == 0
    assert json.loads(report.read_text()) == {"print-copies": 0}
    assert json.loads(capsys.readouterr().out) == {"print-copies": 0}
    assert list(temp.iterdir()) == [] and [p.name for p in spool.iterdir()] == ["tmp"]
    done = [line for line in calls.read_text().splitlines() if not line.startswith("is-active")]
    units = " ".join(active[:3])  # the queue's unit, stopped with cupsd, comes back after it
    assert done == ([f"stop {units}", f"start {units}",
                     "start --no-block plus-kiosk-printer.service"] if active else [])
