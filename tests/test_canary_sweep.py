"""The first promise for the whole machine, not folder by folder (issue #13).

One resident session carries a unique canary into everything a resident can do —
through the real daemon, shell, browser, cupsd and SANE's test scanner, by real clicks —
then the session ends (the real wipe) and ``kiosk.sweep`` searches every writable
place of this test run for the canary, in every encoding a program would store it in.
Zero hits, or the test fails and names each place and encoding.

Where the canary goes:

* a PDF the portal offers (its text, inside compressed streams, and the file name the
  portal suggests), saved by a click in the page, printed in full, and printed again
  and cut short by « Terminer » while cupsd is printing it;
* a page address the browser reports (the portal's path and query carry it);
* a form field typed on the browser's on-page keyboard (sent in the query of /merci);
* a guide search typed on the shell's own touch keyboard;
* the clipboard and the primary selection (xsel on the test Xvfb).

A scanned page cannot carry it: SANE's test backend draws fixed patterns, and a
byte search cannot read text in pixels anyway (a real scan's text is pixels too). So
the scan is followed by what identifies it: it is scanned, printed in full and
shared, and its share link's token and its one-time code are swept for as canaries
of their own.

What is searched: the test's folder (the daemon's data dir, its logs, the home given
to the daemon, shell and browser), the private cupsd's root (spool, spool/tmp, cache,
state, logs), /tmp, /var/tmp, /dev/shm, /run and the journal. Left out, and why:
the cups-pdf output folder — it is the printer's paper, what the resident takes
away; and the two records the tests ask for with ``--record`` (the shell's layout
record and the browser's audit log), which a terminal's units never write.

The same sweep runs after a ``kill -9`` of the daemon mid-print (the restarted daemon
wipes at start-up) and after a cupsd restart mid-print.
"""

from __future__ import annotations

import secrets
import shutil
import string
import tempfile
import time
from pathlib import Path

import portals
import pytest
from harness import Cupsd, Daemon, Stack, click, start_session, wait_for

from kiosk.clipboard import Clipboard
from kiosk.daemon_client import DaemonClient
from kiosk.sweep import Sweep, own_code

SYSTEM_PLACES = ("/tmp", "/var/tmp", "/dev/shm", "/run", "journal:plus-kiosk",
                 "journal:system")
BROWSER_X = 260  # the browser sits right of the shell's column of buttons


def new_canary() -> str:
    """Letters only: both touch keyboards (AZERTY) type them without a shift."""
    return "canary" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(12))


@pytest.fixture(scope="module")
def private_cupsd():
    """This module's own cupsd: its root holds this run's spool only, and restarting it
    disturbs no other test."""
    root = Path(tempfile.mkdtemp(prefix="plus-kiosk-canary-cups-"))
    root.chmod(0o755)  # its filters run as "lp"
    server = Cupsd(root, f"plustest{secrets.token_hex(4)}").start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh home for the daemon, the shell and the browser: whatever they keep
    there (caches, Kivy's logs, Qt's files) is swept; root's own home is not ours."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    return path


def job_state(cupsd: Cupsd, job: int) -> int:
    return cupsd.connection().getJobAttributes(job, requested_attributes=["job-state"])[
        "job-state"]


def wait_printing(cupsd: Cupsd, job: int) -> None:
    """Until cupsd's filters work on ``job`` (IPP job-state 5, processing)."""
    wait_for(lambda: job_state(cupsd, job) == 5, timeout=30, interval=0.01,
             what=f"job {job} printing")


def sweep_places(canaries: dict[str, str], places, exclude) -> list[str]:
    """Each canary's hits as "what: place (encoding)" lines; fails if a place could not
    be searched to the end."""
    found = []
    for what, canary in canaries.items():
        report = Sweep(canary, exclude=[*own_code(), *exclude], time_budget=90).run(
            [str(p) for p in places])
        assert not report.unfinished, f"sweep out of time in {report.unfinished}"
        assert report.files > 0
        found += [f"{what}: {hit.place} ({hit.encoding})" for hit in report.hits]
    return found


def assert_left_on_purpose_is_found(canary: str, where: Path, exclude) -> None:
    """The sweep can fail: a canary left on purpose (as UTF-16, as a program would)
    is found and named, then removed."""
    planted = where / ".left-on-purpose"
    planted.write_bytes(f"note {canary}".encode("utf-16-le"))
    try:
        found = sweep_places({"canary": canary}, [where], exclude)
    finally:
        planted.unlink()
    # (UTF-16-BE text is UTF-16-LE text shifted by one byte: both may be named)
    assert f"canary: {planted} (utf-16-le)" in found, found
    assert all(line.startswith(f"canary: {planted} (utf-16-") for line in found), found


def test_one_session_through_the_shell_leaves_no_canary(tmp_path, home, xvfb, private_cupsd,
                                                        fake_portals):
    canary = new_canary()
    cupsd = private_cupsd
    fake_portals.canary = canary  # in memory: the site file names /canary only
    # The daemon as on a terminal: SANE's test scanner (the harness's Stack already runs
    # the root step that deletes CUPS's own copies of cut-short prints).
    stack = Stack(tmp_path, xvfb.display, cupsd, fake_portals.url("/canary"),
                  extra_site='\n[scanning]\ndevice = "test"\n', idle_warning_seconds=300)
    portals.canary_pdf(canary)  # drawn before the clock of any wait starts
    stack.start()
    client = DaemonClient(tmp_path / "daemon.sock")
    try:
        start_session(stack)
        # A guide search typed on the shell's own touch keyboard.
        mark = len(stack.events())
        stack.tap("help", "home")
        stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "guides", "guides",
                   since=mark)
        stack.tap("guide_search", "guides")
        keyboard = wait_for(lambda: next((e["targets"] for e in reversed(stack.events())
                                          if e["event"] == "layout" and "vkey_q" in
                                          e["targets"]), None), what="the touch keyboard")
        for letter in canary:
            click(stack.display, *keyboard[f"vkey_{letter}"])
            time.sleep(0.1)
        stack.wait(lambda e: e["event"] == "guide_search" and e["query"] == canary,
                   "the search typed", since=mark)
        mark = len(stack.events())
        stack.tap("guides_home", "guides")
        stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "home", "home",
                   since=mark)
        # The portal: its address carries the canary (path and query).
        mark = len(stack.events())
        stack.tap("tile_0", "home")
        stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "portal", "portal",
                   since=mark)
        wait_for(lambda: any(path.startswith(f"/canary/{canary}?q=")
                             for _, path in fake_portals.hits), timeout=30, what="the page")
        # « Scanner », then « Imprimer » the scan in full.
        mark = len(stack.events())
        stack.tap("portal_scan", "portal")
        stack.wait(lambda e: e["event"] == "message" and "1 page" in e["text"], "scan ready",
                   since=mark, timeout=60)
        print_shown_document(stack, cupsd, client, folder="scans")
        # Save the portal's PDF with a click in the page.
        sessions = tmp_path / "data" / "sessions"
        click(stack.display, portals.CANARY_DOWNLOAD[0] + BROWSER_X, portals.CANARY_DOWNLOAD[1])
        wait_for(lambda: any(p.stat().st_size == len(portals.canary_pdf(canary))
                             for p in sessions.glob("*/downloads/*.pdf")),
                 timeout=30, what="the PDF saved in the session")
        # The form field, typed on the on-page keyboard: sent in /merci's query.
        click(stack.display, portals.FORM_FIELD[0] + BROWSER_X, portals.FORM_FIELD[1])
        time.sleep(0.8)
        for key in canary + "↵":
            x, y = portals.keyboard_key(key, screen=(1280 - BROWSER_X, 800))
            click(stack.display, x + BROWSER_X, y)
        wait_for(lambda: ("portal.test", f"/merci?fiscal={canary}") in fake_portals.hits,
                 what="the form sent")
        # « Imprimer » the saved PDF in full.
        print_shown_document(stack, cupsd, client, folder="downloads")
        # A share link for the scan; the clipboard and the primary selection.
        scan = next(d for d in client.documents() if d["folder"] == "scans")
        link = client.share(Path(scan["name"]).stem)
        clipboard = Clipboard(xvfb.display)
        clipboard.write("clipboard", f"mot de passe {canary}")
        clipboard.write("primary", f"{canary} numéro de sécurité sociale")
        # The same PDF again, and « Terminer » while cupsd is printing it.
        job = print_shown_document(stack, cupsd, client, folder="downloads", finish=False)
        wait_printing(cupsd, job)
        mark = len(stack.events())
        stack.tap("portal_finish", "portal")
        ended = stack.wait(lambda e: e["event"] == "ended", "session end", since=mark)
        assert ended["wiped"] is True
    finally:
        stack.stop()
    assert clipboard.read("clipboard") == "" and clipboard.read("primary") == ""
    exclude = [cupsd.output, stack.record, stack.browser_audit]
    places = [tmp_path, home, cupsd.root, *SYSTEM_PLACES]
    token = link["url"].rsplit("/", 1)[1]
    found = sweep_places({"canary": canary, "share token": token, "share code": link["code"]},
                         places, exclude)
    assert found == [], "the resident's traces survived the session:\n" + "\n".join(found)
    assert_left_on_purpose_is_found(canary, home, exclude)


def print_shown_document(stack, cupsd, client, folder, finish=True):
    """« Imprimer », check the newest document is from ``folder``, print it, go back to
    the page; with ``finish``, first wait until it is out of the printer. The job's id."""
    assert client.documents()[0]["folder"] == folder
    mark = len(stack.events())
    stack.tap("portal_print", "portal")
    stack.wait(lambda e: e["event"] == "preview", "the document's preview", since=mark)
    stack.wait(lambda e: e["event"] == "layout" and "document_print" in e["targets"],
               "the print button", since=mark)
    before = set(cupsd.jobs("all"))
    stack.tap("document_print", "documents")
    job = min(wait_for(lambda: set(cupsd.jobs("all")) - before, timeout=20, what="the job"))
    if finish:
        wait_for(lambda: job_state(cupsd, job) == 9, timeout=60, what="the print finished")
    mark = len(stack.events())
    stack.tap("documents_back", "documents")
    stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "portal", "the page",
               since=mark)
    return job


def start_daemon_session(tmp_path, cupsd, xvfb, canary):
    """A daemon (the harness's, its browser a stand-in), a session, the canary PDF saved
    in it as a download would be, printing; the clipboard holds the canary too."""
    daemon = Daemon(tmp_path / "d", cupsd, xvfb.display)
    daemon.root.mkdir()
    daemon.start()
    client = daemon.client()
    session = client.start_session()
    name = f"avis-{canary}.pdf"
    (Path(session["dirs"]["downloads"]) / name).write_bytes(portals.canary_pdf(canary))
    job = client.print_document("downloads", name)["job"]["id"]
    Clipboard(xvfb.display).write("clipboard", canary)
    wait_printing(cupsd, job)
    return daemon, client


def sweep_after(tmp_path, home, cupsd, canary):
    exclude = [cupsd.output]
    found = sweep_places({"canary": canary}, [tmp_path, home, cupsd.root, *SYSTEM_PLACES],
                         exclude)
    assert found == [], "the resident's traces survived:\n" + "\n".join(found)
    assert_left_on_purpose_is_found(canary, cupsd.spool, exclude)


def test_kill_9_of_the_daemon_mid_print_leaves_no_canary(tmp_path, home, xvfb, private_cupsd):
    canary = new_canary()
    daemon, _client = start_daemon_session(tmp_path, private_cupsd, xvfb, canary)
    job = max(private_cupsd.jobs("not-completed"))
    try:
        daemon.kill9()
        assert job_state(private_cupsd, job) == 5  # still printing when the daemon restarts
        daemon.start()  # its start-up wipe runs before the socket exists
        assert "wipe (boot) verified clean" in daemon.log()
        assert Clipboard(xvfb.display).read("clipboard") == ""
    finally:
        daemon.stop()
    sweep_after(tmp_path, home, private_cupsd, canary)


def test_cupsd_restart_mid_print_leaves_no_canary(tmp_path, home, xvfb, private_cupsd):
    canary = new_canary()
    daemon, client = start_daemon_session(tmp_path, private_cupsd, xvfb, canary)
    job = max(private_cupsd.jobs("not-completed"))
    try:
        private_cupsd.stop()
        private_cupsd.start()
        wait_printing(private_cupsd, job)  # cupsd takes the job up again…
        report = client.end_session("user")  # …and the session ends while it prints
        assert report["wiped"] is True, report
    finally:
        daemon.stop()
    sweep_after(tmp_path, home, private_cupsd, canary)
