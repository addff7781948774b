"""Users apart (issue #12, item 7): the daemon answers each user only its routes, and the
browser's control socket answers only the daemon's and the shell's users.

Real processes: throwaway system users made here (removed afterwards, even on
failure) stand for the shell's, the browser's and a stranger's; a forked child
of this test drops to each of them (setgroups, setgid, setuid) and talks to a
real daemon, a real control socket and a real browser, whose SO_PEERCRED then
names that user. The forked child needs no file of the checkout: a user made
here could not read this machine's virtualenv.
"""

from __future__ import annotations

import json
import os
import pwd
import select
import shutil
import signal
import sys
import socket
import subprocess
import tempfile
import time
import traceback
from pathlib import Path

import pytest

from kiosk.browser import control
from kiosk.daemon import callers
from kiosk.daemon_client import DaemonClient, DaemonError
from kiosk.i18n import translation

SHELL, BROWSER, STRANGER = "plusu-shell", "plusu-browser", "plusu-other"
GROUP = "plusu-kiosk"  # all three may open the socket file: only SO_PEERCRED tells them apart

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("useradd") is None,
    reason="makes throwaway users: root only")


@pytest.fixture(scope="module")
def users():
    """Three system users in one throwaway group, removed afterwards even on failure."""
    made: list[str] = []
    group_made = False
    try:
        for name in (SHELL, BROWSER, STRANGER):  # a crashed run's leftovers
            subprocess.run(["userdel", name], capture_output=True)
        subprocess.run(["groupdel", GROUP], capture_output=True)
        subprocess.run(["groupadd", "--system", GROUP], check=True, capture_output=True)
        group_made = True
        for name in (SHELL, BROWSER, STRANGER):
            subprocess.run(["useradd", "--system", "--no-create-home", "--gid", GROUP,
                            "--shell", "/usr/sbin/nologin", name], check=True,
                           capture_output=True)
            made.append(name)
        yield {name: pwd.getpwnam(name) for name in made}
    finally:
        for name in made:
            subprocess.run(["userdel", name], capture_output=True)
        if group_made:
            subprocess.run(["groupdel", GROUP], capture_output=True)


def as_user(user: pwd.struct_passwd, job, timeout: float = 20.0):
    """Run ``job()`` in a forked child that became ``user``; its JSON-able result."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop to the user, do the job, report, never return
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            assert os.getuid() == user.pw_uid and os.geteuid() == user.pw_uid
            answer = {"result": job()}
        except BaseException:  # noqa: BLE001 (reported to the parent)
            answer = {"error": traceback.format_exc()}
        os.write(writer, json.dumps(answer).encode())
        os._exit(0)
    os.close(writer)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while True:
            ready, _, _ = select.select([reader], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"the child as {user.pw_name} did not answer")
            chunk = os.read(reader, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(reader)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
    answer = json.loads(data)
    assert "error" not in answer, answer.get("error")
    return answer["result"]


# -- the daemon's socket -----------------------------------------------------------------

@pytest.fixture
def daemon(users, cupsd, xvfb):
    """A real daemon whose folder the users made here can reach (pytest's own tmp is
    root's alone); its socket's group is theirs, so only SO_PEERCRED tells them apart."""
    from harness import Daemon
    root = Path(tempfile.mkdtemp(prefix="plusu-daemon-"))
    root.chmod(0o711)
    daemon = Daemon(root, cupsd, xvfb.display, {"daemon.socket_group": f'"{GROUP}"',
                                                "daemon.shell_user": f'"{SHELL}"',
                                                "browser.user": f'"{BROWSER}"'})
    try:
        yield daemon.start()
    finally:
        daemon.stop()
        shutil.rmtree(root, ignore_errors=True)


def ask(daemon, user, method: str, path: str, body=None, language="fr", token=None):
    """(status, error code, message) of one request made as ``user``."""
    socket_path = str(daemon.socket)

    def job():
        client = DaemonClient(socket_path, timeout=10, language=language)
        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            client.request(method, path, json_body=body, headers=headers)
        except DaemonError as error:
            return [error.status, error.code, error.message]
        return [200, "", ""]

    return tuple(as_user(user, job))


def test_each_user_gets_only_its_routes(daemon, users):
    """Before: every user able to open the socket drove the whole API (a compromised
    browser could end sessions, print, scan, share; anyone in the group too)."""
    shell, browser, stranger = users[SHELL], users[BROWSER], users[STRANGER]
    assert ask(daemon, shell, "GET", "/status")[0] == 200
    assert ask(daemon, shell, "POST", "/session/start")[0] == 200
    # The browser: its activity and its page, nothing else.
    assert ask(daemon, browser, "POST", "/session/activity")[0] == 200
    assert ask(daemon, browser, "POST", "/browser/location",
               {"url": "https://www.caf.fr/"})[0] == 200
    for method, path, body in [("GET", "/status", None), ("POST", "/session/end", None),
                               ("POST", "/session/start", None), ("GET", "/documents", None),
                               ("POST", "/scan", {}), ("POST", "/browser/close", None),
                               ("POST", "/browser", {"url": "https://www.caf.fr/"}),
                               ("GET", "/health", None)]:
        assert ask(daemon, browser, method, path, body)[:2] == (403, "caller_refused"), path
    # The shell: its screens' routes, not the browser's report nor the agents' reset.
    assert ask(daemon, shell, "POST", "/session/activity")[0] == 200
    assert ask(daemon, shell, "GET", "/documents")[0] == 200
    assert ask(daemon, shell, "POST", "/browser/location",
               {"url": "https://evil.example/"})[:2] == (403, "caller_refused")
    assert ask(daemon, shell, "POST", "/agent/reset", token="agent-secret-token")[:2] == \
        (403, "caller_refused")
    # Anyone else: nothing at all, not even a 404 for a route that does not exist.
    for method, path in [("GET", "/health"), ("GET", "/status"), ("POST", "/session/activity"),
                         ("POST", "/session/end"), ("GET", "/nothing-here")]:
        assert ask(daemon, stranger, method, path)[:2] == (403, "caller_refused"), path
    # What they tried changed nothing: the session is the shell's, on the page reported.
    status = daemon.client().status()
    assert status["state"] == "active" and status["session"]["location"] == "https://www.caf.fr/"
    # Root (and the daemon's own user): everything; the agents' route still wants its token.
    with pytest.raises(DaemonError) as refused:
        daemon.client().agent_reset("wrong")
    assert refused.value.status == 401
    assert daemon.client().agent_reset("agent-secret-token")["wiped"]


def test_the_refusal_is_json_in_the_residents_language(daemon, users):
    for language in ("fr", "gcf", "en"):
        status, code, message = ask(daemon, users[STRANGER], "GET", "/status", language=language)
        assert (status, code) == (403, "caller_refused")
        assert message == translation(language).gettext(callers.REFUSED)
    assert translation("gcf").gettext(callers.REFUSED) != callers.REFUSED
    assert f"refused api.status to uid {users[STRANGER].pw_uid}" in daemon.log()


def test_a_user_outside_the_socket_group_cannot_even_connect(daemon):
    nobody = pwd.getpwnam("nobody")
    assert ask(daemon, nobody, "GET", "/health")[:2] == (0, "unreachable")


def test_every_route_has_a_decided_owner():
    """A new route is the admin's alone until it is written into callers.ROUTES."""
    from kiosk.daemon.app import api
    from flask import Flask
    app = Flask("probe")
    app.register_blueprint(api)
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint != "static"}
    assert endpoints == set(callers.ROUTES)
    assert callers.ROUTES["api.browser_location"] == {callers.BROWSER}
    assert callers.ROUTES["api.agent_reset"] == frozenset()


def test_callers_from_the_site_file(users):
    from kiosk import config as site_config
    text = site_config.bundled_config().read_text()
    config = site_config.load_text(text.replace('shell_user = "kiosk"', f'shell_user = "{SHELL}"')
                                   + f'\n[browser]\nuser = "{BROWSER}"\n')
    found = callers.Callers.from_config(config)
    peer = lambda user: callers.Peer(1, users[user].pw_uid, users[user].pw_gid)  # noqa: E731
    assert [found.role(peer(name)) for name in (SHELL, BROWSER, STRANGER)] == \
        [callers.SHELL, callers.BROWSER, None]
    assert found.role(callers.Peer(1, 0, 0)) == callers.ADMIN and found.role(None) is None
    assert found.control_uids() == f"{os.getuid()},{users[SHELL].pw_uid}"


# -- the browser's control socket ----------------------------------------------------------

def send_word(name: str, word: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(5)
        connection.connect(control.control_address(name))
        try:
            connection.sendall(word.encode())
            return connection.recv(16).decode()
        except (BrokenPipeError, ConnectionResetError):  # closed unread: refused
            return ""


def test_control_socket_answers_only_the_daemon_and_the_shell(users):
    name = f"@plusu-control-{os.getpid()}-{time.monotonic_ns()}"
    server = control.listen(name)
    heard: list[str] = []
    allowed = control.allowed_uids(f"{os.getuid()},{users[SHELL].pw_uid}")
    control.answer_forever(server, allowed, heard.append, lambda text: text == "0,0,640,400")
    try:
        for user in (STRANGER, BROWSER):
            assert as_user(users[user], lambda: send_word(name, "geometry 0,0,640,400")) == ""
            assert as_user(users[user], lambda: send_word(name, "raise")) == ""
        assert heard == []
        assert as_user(users[SHELL], lambda: send_word(name, "geometry 0,0,640,400")) == "ok\n"
        assert send_word(name, "raise") == "ok\n"  # the daemon's (here root's) own user
        assert heard == ["geometry 0,0,640,400", "raise"]
    finally:
        server.close()
    assert control.allowed_uids("") == {0, os.getuid()}
    assert control.allowed_uids("1001, x,1002") == {0, os.getuid(), 1001, 1002}


def test_a_stranger_cannot_lay_the_real_browser_over_the_shell(users, tmp_path, xvfb,
                                                                fake_portals, monkeypatch):
    """Before: any local user could connect to the abstract socket and resize or raise the
    browser — over « Terminer ». Now only the uids the daemon passed are heard."""
    from harness import Browser, site_for_portal
    monkeypatch.setenv(control.CONTROL_UIDS, f"{users[SHELL].pw_uid}")
    site = site_for_portal(tmp_path, fake_portals.url("/"))
    browser = Browser(tmp_path, xvfb.display, site, fake_portals.url("/")).start(
        geometry="0,0,640,400")
    try:
        name = browser.control
        for user in (STRANGER, BROWSER):
            assert as_user(users[user], lambda: send_word(name, "geometry 0,0,1280,800")) == ""
            assert as_user(users[user], lambda: send_word(name, "raise")) == ""
        assert as_user(users[SHELL], lambda: send_word(name, "geometry 0,0,800,600")) == "ok\n"
        browser.wait_event(lambda e: e.get("event") == "command", "the shell's word")
        commands = [e["word"] for e in browser.entries() if e.get("event") == "command"]
        assert commands == ["geometry 0,0,800,600"]
    finally:
        browser.stop()


# -- PrivateIPC= in the browser's unit ------------------------------------------------------

RED_PAGE = b"<!doctype html><title>red</title><body style='margin:0;background:#ff0000'>x</body>"


def test_the_browser_draws_from_its_own_ipc_namespace(tmp_path, xvfb):
    """The unit's PrivateIPC=yes puts the browser in a System V IPC namespace the X server
    is not in (MIT-SHM's old segments cannot be shared): its page must still be drawn."""
    import http.server
    import threading
    from harness import read_log, site_for_portal, wait_for

    class Red(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(RED_PAGE)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Red)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://portal.test:{server.server_port}/"
    audit = tmp_path / "audit.jsonl"
    env = {**os.environ, "DISPLAY": xvfb.display,
           "QTWEBENGINE_CHROMIUM_FLAGS": '"--host-resolver-rules=MAP * 127.0.0.1"'}
    browser = subprocess.Popen(
        ["unshare", "--ipc", str(Path(sys.executable).parent / "kiosk-browser"), "--url", url,
         "--config", str(site_for_portal(tmp_path, url)), "--record", str(audit),
         "--geometry", "0,0,400,300", "--no-sandbox"], env=env,
        stderr=(tmp_path / "browser.log").open("w"))
    try:
        wait_for(lambda: audit.exists() and any(e.get("event") == "loaded" and e.get("ok")
                                                for e in read_log(audit)), 60, what="page")

        def pixel() -> str:
            return subprocess.run(["import", "-display", xvfb.display, "-window", "root",
                                   "-crop", "1x1+200+150", "txt:-"], capture_output=True,
                                  text=True, timeout=30).stdout

        wait_for(lambda: "#FFFF00000000" in pixel() or "#FF0000" in pixel(), 20,
                 what="the red page on the screen")
        assert Path(f"/proc/{browser.pid}/ns/ipc").stat().st_ino != \
            Path("/proc/self/ns/ipc").stat().st_ino
    finally:
        browser.terminate()
        browser.wait(15)
        server.shutdown()
