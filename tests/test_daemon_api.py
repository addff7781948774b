"""The daemon's API over its Unix socket: reachability, JSON errors, lifecycle, kioskctl."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.daemon_client import DaemonError
from kiosk.session import SessionManager


def test_reachable_only_through_a_0660_unix_socket(daemon):
    mode = daemon.socket.stat().st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660
    # The only TCP listener of the daemon is the share-link listener.
    inodes = set()
    for fd in Path(f"/proc/{daemon.process.pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                listening.append(int(fields[1].split(":")[1], 16))
    client = daemon.client()
    client.start_session()
    link = client.share(client.scan()["id"])["url"]
    share_port = int(link.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    assert listening == [share_port]  # the share listener, and nothing else


def test_socket_belongs_to_the_kiosk_users_group(daemon_factory):
    import grp
    daemon = daemon_factory(**{"daemon.socket_group": '"lp"'})
    assert daemon.socket.stat().st_gid == grp.getgrnam("lp").gr_gid


def test_health_status_and_lifecycle(daemon):
    client = daemon.client()
    assert client.health() == {"status": "ok"}
    status = client.status()
    assert set(status) >= {"state", "session", "printer", "scanner", "devices", "leftovers"}
    assert (status["state"], status["session"]) == ("idle", None)
    session = client.start_session()
    assert set(session) == {"id", "started_at", "pages_printed", "page_quota", "location", "dirs"}
    assert session["page_quota"] == 20 and session["pages_printed"] == 0
    assert set(session["dirs"]) >= {"downloads", "scans"}
    assert all(Path(d).is_dir() for d in session["dirs"].values())
    with pytest.raises(DaemonError) as caught:
        client.start_session()
    assert (caught.value.status, caught.value.code) == (409, "session_active")
    assert client.activity() == "active"
    report = client.end_session("idle")
    assert report["wiped"] and report["reason"] == "idle" and report["duration_ms"] >= 0
    with pytest.raises(DaemonError) as caught:
        client.activity()
    assert caught.value.code == "no_session"


@pytest.mark.parametrize("method, path, body, status, code", [
    ("GET", "/nothing-here", None, 404, "not_found"),
    ("GET", "/session/start", None, 405, "method_not_allowed"),
    ("DELETE", "/status", None, 405, "method_not_allowed"),
    ("POST", "/session/end", b"{not json", 400, "bad_json"),
    ("POST", "/session/end", b"[1, 2]", 400, "bad_json"),
    ("POST", "/session/end", b'{"reason": "bored"}', 400, "bad_reason"),
    ("POST", "/share", b'{"scan_id": 5}', 400, "bad_scan_id"),
])
def test_errors_are_json_never_html(daemon, method, path, body, status, code):
    client = daemon.client()
    with pytest.raises(DaemonError) as caught:
        client.request(method, path, raw=body, content_type="application/json" if body else None)
    error = caught.value
    assert (error.status, error.code) == (status, code)
    assert error.message and "<" not in error.message and "Traceback" not in error.message
    assert set(error.body) >= {"error", "message"}


def test_error_messages_follow_the_residents_language(daemon):
    messages = {}
    for language in ("fr", "gcf", "en"):
        with pytest.raises(DaemonError) as caught:
            daemon.client(language=language).activity()
        messages[language] = caught.value.message
    assert messages["fr"].startswith("Aucune session")
    assert messages["gcf"].startswith("Pani pon sésyon")
    assert messages["en"].startswith("No session")
    with pytest.raises(DaemonError) as caught:
        daemon.client(language=None).activity()
    assert caught.value.message == messages["fr"]  # the site's default language


def test_openapi_document_lists_every_route(daemon):
    document = daemon.client().request("GET", "/openapi.json")
    assert document["openapi"].startswith("3.")
    paths = set(document["paths"])
    assert {"/api/v1/health", "/api/v1/status", "/api/v1/session/start",
            "/api/v1/session/activity", "/api/v1/session/end", "/api/v1/print",
            "/api/v1/print/{job_id}", "/api/v1/scan", "/api/v1/scan/{scan_id}.pdf",
            "/api/v1/share", "/api/v1/agent/reset"} <= paths


def kioskctl(daemon, *args):
    return subprocess.run([str(Path(sys.executable).parent / "kioskctl"), "--lang", "en", *args,
                           "--config", str(daemon.site_file)],
                          capture_output=True, text=True, timeout=60)


def test_kioskctl_status_and_reset(daemon, tmp_path):
    client = daemon.client()
    client.start_session()
    result = kioskctl(daemon, "status")
    assert result.returncode == 0, result.stderr
    assert "State: active" in result.stdout and "Printer plus:" in result.stdout
    wrong = tmp_path / "wrong-token"
    wrong.write_text("nope")
    result = kioskctl(daemon, "reset", "--token-file", str(wrong))
    assert result.returncode == 1 and "agent token" in result.stderr
    assert client.status()["state"] == "active"
    result = kioskctl(daemon, "reset")
    assert result.returncode == 0, result.stderr
    assert "wiped" in result.stdout
    assert client.status()["state"] == "idle"
    daemon.stop()
    result = kioskctl(daemon, "status")
    assert result.returncode == 2 and "does not answer" in result.stderr


def test_a_second_daemon_on_the_same_socket_refuses_to_start(daemon):
    result = subprocess.run([str(Path(sys.executable).parent / "kiosk-daemon"), "--config",
                             str(daemon.site_file)], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "LANGUAGE": "en"})
    assert result.returncode == 2 and "already listens" in result.stderr
    assert daemon.client().health() == {"status": "ok"}


def test_daemon_stops_cleanly_on_sigterm(daemon):
    daemon.client().start_session()
    daemon.process.terminate()
    assert daemon.process.wait(timeout=10) == 0
    assert not daemon.socket.exists()


# -- the state machine, on its own clock -------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_idle_warning_countdown_and_end(tmp_path):
    clock = Clock()
    manager = SessionManager(tmp_path, page_quota=5, idle_warning_seconds=120,
                             countdown_seconds=30, clock=clock)
    manager.wipe("boot")
    manager.start()
    clock.now += 119
    assert manager.tick() is None and manager.state == "active"
    clock.now += 1
    manager.tick()
    assert manager.state == "warning" and manager.countdown_left() == 30
    clock.now += 20
    manager.tick()
    assert manager.countdown_left() == 10
    assert manager.activity() == "active" and manager.countdown_left() is None
    clock.now += 120
    manager.tick()
    clock.now += 30
    report = manager.tick()
    assert report is not None and report.reason == "idle" and report.wiped
    assert (manager.state, manager.session) == ("idle", None)


def test_a_resident_waiting_for_help_is_not_wiped_by_the_idle_clock_too_soon(tmp_path):
    from kiosk.session import HELP_WAIT_SECONDS
    clock = Clock()
    manager = SessionManager(tmp_path, page_quota=5, idle_warning_seconds=120,
                             countdown_seconds=30, clock=clock)
    manager.wipe("boot")
    manager.start()
    manager.session.help_asked = True
    clock.now += 600
    assert manager.tick() is None and manager.state == "active"  # still waiting for the agent
    clock.now += HELP_WAIT_SECONDS - 600
    manager.tick()
    assert manager.state == "warning"  # nobody came back: the usual warning, then the wipe
    clock.now += 30
    report = manager.tick()
    assert report is not None and report.reason == "idle" and report.wiped


def test_no_session_before_the_first_wipe(tmp_path):
    manager = SessionManager(tmp_path, page_quota=5, idle_warning_seconds=60,
                             countdown_seconds=30)
    with pytest.raises(Exception) as caught:
        manager.start()
    assert getattr(caught.value, "code", "") == "leftovers"
    (tmp_path / "sessions" / "someone-else").mkdir(parents=True)
    (tmp_path / "sessions" / "someone-else" / "avis.pdf").write_text("x")
    assert manager.wipe("boot").wiped
    assert not (tmp_path / "sessions" / "someone-else").exists()
    assert manager.start()
