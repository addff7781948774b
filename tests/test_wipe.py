"""The first promise: the next resident never sees anything of the previous one.

Canaries are planted everywhere a session can leave something — files and
strings in every session directory, the daemon's own state, a print job held
in CUPS, a share link, the clipboard and primary selection, a browser that
ignores SIGTERM — then the session ends (or the daemon is killed with -9 and
restarted) and every canary must be gone.
"""

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from harness import free_port, wait_for
from kiosk.clipboard import Clipboard
from kiosk.daemon_client import DaemonError
from kiosk.processes import _start_time, group_members

CANARY = "CANARY-7f3a9c"


def plant(daemon, client, cupsd, tmp_path):
    """Leave traces of a resident everywhere a session can write; return them."""
    session = client.start_session()
    for name, directory in session["dirs"].items():
        base = Path(directory)
        (base / f"{name}.txt").write_text(f"{CANARY} in {name}")
        (base / ".hidden").write_text(CANARY)
        nested = base / "deep" / "deeper"
        nested.mkdir(parents=True)
        (nested / "note.bin").write_bytes(b"\x00" + CANARY.encode() + b"\xff")
        (base / "link").symlink_to(base / f"{name}.txt")
    (daemon.data_dir / ".state" / "stray").write_text(CANARY)
    # A print job that stays in the queue: the printer is paused.
    cupsd.pause()
    pdf = tmp_path / "canary.pdf"
    make_pdf(pdf, [f"{CANARY} page"])
    job = client.print_file(pdf)
    assert job["state"] == "pending"
    scan = client.scan()
    link = client.share(scan["id"])
    clipboard = Clipboard(daemon.display)
    clipboard.write("clipboard", f"{CANARY} password")
    clipboard.write("primary", f"{CANARY} numéro de sécurité sociale")
    browser = client.open_url("https://www.impots.gouv.fr/")
    wait_for(lambda: (Path(session["dirs"]["browser"]) / "history.txt").exists(),
             what="browser writing its history")
    return {"session": session, "job": job["id"], "link": link["url"], "pid": browser["pid"],
            "start": _start_time(browser["pid"])}


def make_pdf(path, pages):
    from reportlab.pdfgen import canvas
    document = canvas.Canvas(str(path))
    for text in pages:
        document.drawString(72, 720, text)
        document.showPage()
    document.save()


def assert_nothing_survived(daemon, cupsd, traces):
    data = daemon.data_dir
    found = subprocess.run(["grep", "-r", "-l", "-a", CANARY, str(data)], capture_output=True,
                           text=True)
    assert found.stdout == "", found.stdout
    old_root = Path(traces["session"]["dirs"]["downloads"]).parent
    assert not old_root.exists()
    # Only the empty layout for the next resident remains.
    remaining = sorted(str(p.relative_to(data)) for p in data.rglob("*"))
    assert all(not (data / p).is_file() for p in remaining), remaining
    assert len(remaining) == 2 + 1 + 5, remaining  # .state, sessions, <root>, 5 dirs
    # CUPS: no job of the session, and no document or control file with the canary.
    assert cupsd.jobs("all") == {}
    spool = subprocess.run(["grep", "-r", "-l", "-a", CANARY, str(cupsd.spool)],
                           capture_output=True, text=True)
    assert spool.stdout == ""
    # The share link is dead.
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(traces["link"], timeout=5)
    assert caught.value.code == 404
    # The clipboard and the primary selection are empty.
    clipboard = Clipboard(daemon.display)
    assert clipboard.read("clipboard") == "" and clipboard.read("primary") == ""
    # The browser (which ignores SIGTERM) and its child are gone.
    assert _start_time(traces["pid"]) is None
    assert group_members(traces["pid"]) == []


def test_ending_a_session_leaves_nothing(daemon, cupsd, tmp_path):
    client = daemon.client()
    try:
        traces = plant(daemon, client, cupsd, tmp_path)
        report = client.end_session("user")
        assert report["wiped"] is True and report["leftovers"] == {}, report
        assert_nothing_survived(daemon, cupsd, traces)
        status = client.status()
        assert (status["state"], status["session"], status["leftovers"]) == ("idle", None, {})
        fresh = client.start_session()
        assert fresh["id"] != traces["session"]["id"]
        assert set(fresh["dirs"].values()).isdisjoint(traces["session"]["dirs"].values())
        assert all(not any(Path(d).iterdir()) for d in fresh["dirs"].values())
    finally:
        cupsd.resume()


def test_kill_9_mid_session_then_restart_leaves_nothing(daemon_factory, cupsd, tmp_path):
    # A fixed share port, so the restarted daemon answers on the old link's address.
    daemon = daemon_factory(**{"sharing.port": str(free_port())})
    client = daemon.client()
    try:
        traces = plant(daemon, client, cupsd, tmp_path)
        daemon.kill9()
        # The browser outlived the daemon: only the restart can stop it.
        assert _start_time(traces["pid"]) == traces["start"]
        daemon.start()
        assert "wipe (boot) verified clean" in daemon.log()
        assert_nothing_survived(daemon, cupsd, traces)
        assert daemon.client().start_session()["id"] != traces["session"]["id"]
    finally:
        cupsd.resume()


def test_agent_reset_needs_the_token_and_kills_the_browser(daemon):
    client = daemon.client()
    client.start_session()
    browser = client.open_url("https://www.caf.fr/")
    for token in ("", "wrong-token", "agent-secret-token-but-longer"):
        with pytest.raises(DaemonError) as caught:
            client.agent_reset(token)
        assert (caught.value.status, caught.value.code) == (401, "unauthorized")
    assert "refused agent reset" in daemon.log()
    assert client.status()["state"] == "active"
    report = client.agent_reset("agent-secret-token")
    assert report["wiped"] and report["reason"] == "agent"
    assert _start_time(browser["pid"]) is None
    assert client.status()["state"] == "idle"


def test_a_leftover_keeps_the_terminal_closed_until_it_is_gone(daemon):
    client = daemon.client()
    session = client.start_session()
    stuck = Path(session["dirs"]["downloads"]) / "stuck.pdf"
    stuck.write_text(CANARY)
    if subprocess.run(["chattr", "+i", str(stuck)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem cannot make a file undeletable (chattr +i)")
    try:
        report = client.end_session("user")
        assert report["wiped"] is False
        assert report["leftovers"]["downloads"] >= 1  # its kind, not its name
        with pytest.raises(DaemonError) as caught:
            client.start_session()
        assert (caught.value.status, caught.value.code) == (409, "leftovers")
        assert "agent" in caught.value.message  # French: "… un agent …"
        assert client.status()["leftovers"]
    finally:
        subprocess.run(["chattr", "-i", str(stuck)], check=True)
    assert client.agent_reset("agent-secret-token")["wiped"] is True
    assert client.start_session()


def test_browser_only_opens_allowed_pages(daemon):
    client = daemon.client()
    with pytest.raises(DaemonError) as caught:
        client.open_url("https://www.impots.gouv.fr/")
    assert caught.value.code == "no_session"
    client.start_session()
    for url in ("https://evil.example/", "file:///etc/passwd",
                "http://impots.gouv.fr@evil.example/"):
        with pytest.raises(DaemonError) as caught:
            client.open_url(url)
        assert (caught.value.status, caught.value.code) == (403, "url_refused")
    opened = client.open_url("https://www.impots.gouv.fr/")
    replaced = client.open_url("https://www.caf.fr/")
    assert _start_time(opened["pid"]) is None  # one browser per session
    assert _start_time(replaced["pid"]) is not None


def test_a_browser_opened_while_the_session_ends_is_not_left_behind(daemon):
    from concurrent.futures import ThreadPoolExecutor
    client = daemon.client()
    client.start_session()
    client.open_url("https://www.caf.fr/")  # the next open has an old browser to stop first

    def open_again():
        try:
            return daemon.client().open_url("https://www.impots.gouv.fr/")["pid"]
        except DaemonError as error:
            return error.code

    with ThreadPoolExecutor(2) as pool:
        opened = pool.submit(open_again)
        time.sleep(0.2)  # the open is busy stopping the old browser…
        report = pool.submit(lambda: daemon.client().end_session("user")).result()
        pid = opened.result()
    if isinstance(pid, int):  # it won the race: then the wipe must have stopped it
        assert _start_time(pid) is None or not report["wiped"]
    else:
        assert pid == "no_session"
    final = daemon.client().end_session("user")
    assert final["wiped"] and final["leftovers"] == {}
    assert browsers_of(daemon) == []


def browsers_of(daemon):
    """Any process still carrying the browser environment of this daemon's sessions."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if b"KIOSK_BROWSER_CONTROL=@plus-kiosk-browser-" in environ and \
                    str(daemon.data_dir).encode() in environ and \
                    _start_time(int(entry.name)) is not None:
                found.append(int(entry.name))
    return found


def test_stopping_the_daemon_wipes_and_stops_the_browser(daemon):
    client = daemon.client()
    session = client.start_session()
    browser = client.open_url("https://www.caf.fr/")
    (Path(session["dirs"]["downloads"]) / "avis.pdf").write_text(CANARY)
    daemon.stop()
    assert _start_time(browser["pid"]) is None
    assert browsers_of(daemon) == []
    assert not Path(session["dirs"]["downloads"]).exists()
