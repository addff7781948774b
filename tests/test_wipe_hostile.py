"""Issue #12, items 3 and 4: a wipe no resident can block, and no process of the browser's
user outlives it.

Real users, never the host's: ``plusw-daemon`` stands for the daemon's unprivileged user
(root would ignore every mode the resident sets) and ``plusw-browser`` for the browser's.
Session folders live on a real tmpfs, as on a terminal (var-lib-plus\\x2dkiosk-sessions.mount).
Users, mounts and processes are removed even when a test fails.
"""

from __future__ import annotations

import errno
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from harness import wait_for
from kiosk import config as site_config
from kiosk.wipe import SESSION_SUBDIRS

DAEMON, BROWSER = "plusw-daemon", "plusw-browser"
ROOT = Path(__file__).resolve().parent.parent
# The throwaway users may not be able to reach the interpreter behind the venv (it can
# live in root's home): Debian's own Python 3.11 with the venv's packages on its path.
PYTHON = "/usr/bin/python3.11" if Path("/usr/bin/python3.11").exists() else sys.executable
PYTHONPATH = f"PYTHONPATH={ROOT}:{Path(sys.prefix, 'lib', 'python3.11', 'site-packages')}"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="makes throwaway users and mounts: root only"),
    pytest.mark.skipif(shutil.which("setpriv") is None or shutil.which("useradd") is None,
                       reason="needs setpriv and useradd"),
]


def processes_of(uid: int) -> list[int]:
    """Living processes of ``uid`` (the test's own look, not the code under test's)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields["State"].split()[0] != "Z" and str(uid) in fields["Uid"].split():
            found.append(int(entry.name))
    return found


def _kill_all(user: str) -> None:
    try:
        uid = pwd.getpwnam(user).pw_uid
    except KeyError:
        return
    for _round in range(50):
        found = processes_of(uid)
        if not found:
            return
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.05)


@pytest.fixture(scope="module")
def users():
    for user in (DAEMON, BROWSER):
        subprocess.run(["userdel", user], capture_output=True)
        subprocess.run(["groupdel", user], capture_output=True)
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", user], check=True)
    # As on a terminal: the browser's user writes into folders of the daemon's group.
    subprocess.run(["usermod", "-a", "-G", DAEMON, BROWSER], check=True)
    try:
        yield {user: pwd.getpwnam(user) for user in (DAEMON, BROWSER)}
    finally:
        for user in (BROWSER, DAEMON):
            _kill_all(user)
            subprocess.run(["userdel", user], capture_output=True)
            subprocess.run(["groupdel", user], capture_output=True)


def as_user(user: str, *argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
                           "--", "env", PYTHONPATH, *argv], capture_output=True, text=True,
                          timeout=120, **kwargs)


def _remove_as_root(path: Path) -> None:
    """shutil.rmtree would hit the recursion limit on the 3,000-level tree; rm does not."""
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


@pytest.fixture
def terminal(users):
    """data_dir owned by the daemon's user, its sessions/ a small tmpfs, as on a terminal."""
    base = Path(tempfile.mkdtemp(prefix="plusw-"))
    base.chmod(0o755)
    data = base / "data"
    sessions = data / "sessions"
    sessions.mkdir(parents=True)
    uid, gid = users[DAEMON].pw_uid, users[DAEMON].pw_gid
    os.chown(data, uid, gid)
    data.chmod(0o750)
    subprocess.run(["mount", "-t", "tmpfs", "-o",
                    f"size=64m,nr_inodes=200k,mode=0750,uid={uid},gid={gid},nosuid,nodev,noexec",
                    "plusw-sessions", str(sessions)], check=True)
    site = base / "site.toml"
    site.write_text(site_config.bundled_config().read_text().replace(
        'x_display = ":0"', 'x_display = ""') + f'\n[browser]\nuser = "{BROWSER}"\n')
    site.chmod(0o644)
    try:
        yield base
    finally:
        _kill_all(BROWSER)
        subprocess.run(["umount", "-l", str(sessions)], check=False)
        _remove_as_root(base)


def wipe_only(base: Path) -> subprocess.CompletedProcess:
    """The boot wipe (plus-kiosk-wipe.service) as the daemon's unprivileged user."""
    return as_user(DAEMON, f"CUPS_SERVER={base}/no-cups.sock", "LANGUAGE=en",
                   PYTHON, "-m", "kiosk.daemon.server", "--config", str(base / "site.toml"),
                   "--data-dir", str(base / "data"), "--socket", str(base / "d.sock"),
                   "--wipe-only")


HOSTILE = textwrap.dedent('''
    import os, socket, sys
    top = sys.argv[1]
    os.chdir(top)
    fd = os.open(".", os.O_RDONLY)
    for _ in range(3000):                       # deeper than Python's recursion limit
        os.mkdir("d", dir_fd=fd)
        deeper = os.open("d", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = deeper
    os.close(os.open("leaf", os.O_CREAT | os.O_WRONLY, 0o600, dir_fd=fd))
    os.close(fd)
    os.mkdir("many")
    for i in range(int(sys.argv[2])):           # many files
        os.close(os.open(f"many/{i}", os.O_CREAT | os.O_WRONLY, 0o600))
    os.makedirs("locked/inner")
    for name in ("locked/secret", "locked/inner/secret"):
        open(name, "w").write("CANARY")
        os.chmod(name, 0)
    os.chmod("locked/inner", 0)
    os.chmod("locked", 0)                       # mode 000 folders and files
    os.mkdir("readonly"); open("readonly/f", "w").write("CANARY"); os.chmod("readonly", 0o500)
    os.mkfifo("fifo")
    socket.socket(socket.AF_UNIX).bind("sock")
    open("original", "w").write("CANARY")
    os.link("original", "hardlink")
    os.symlink(sys.argv[3], "outside")          # a link out: must not be followed
    os.symlink("/", "root")
    open(b"\\xff\\n-rf *", "w").write("CANARY")  # not UTF-8, a newline, shell characters
    print("planted")
''')


def plant(user: str, folder: Path, outside: Path, files: int = 1000) -> None:
    result = as_user(user, PYTHON, "-c", HOSTILE, str(folder), str(files), str(outside))
    assert result.returncode == 0 and "planted" in result.stdout, result.stderr


def layout_only(base: Path) -> list[str]:
    """What is in the data directory besides the empty layout for the next resident."""
    listed = subprocess.run(["find", str(base / "data"), "-mindepth", "1", "-printf", "%P\\n"],
                            capture_output=True, text=True, errors="replace").stdout.split("\n")
    roots = [p for p in listed if p.startswith("sessions/") and p.count("/") == 1]
    expected = {".state", "sessions", *roots, *(f"{r}/{s}" for r in roots for s in SESSION_SUBDIRS)}
    return sorted(p for p in listed if p and p not in expected) + ([] if len(roots) == 1
                                                                    else ["roots"])


def test_the_daemons_user_wipes_any_tree_it_owns(terminal):
    """Before: RecursionError in shutil.rmtree: --wipe-only crashed (a traceback, exit 1),
    the mode-000 folders stayed, and the terminal stayed closed."""
    assert wipe_only(terminal).returncode == 0  # the first layout
    data = terminal / "data"
    downloads = next((data / "sessions").iterdir()) / "downloads"
    outside = terminal / "outside.txt"
    outside.write_text("not the resident's")
    # As the direct launcher runs it: the browser as the daemon's own user.
    plant(DAEMON, downloads, outside, files=100_000)
    started = time.monotonic()
    result = wipe_only(terminal)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    assert layout_only(terminal) == []
    assert not downloads.exists()
    assert outside.read_text() == "not the resident's" and Path("/").is_dir()


def test_the_browsers_user_cannot_lock_its_files_in(terminal):
    """A folder of the browser's user with mode 000 cannot be opened by the daemon's user
    (no folder setup changes that: its owner can always chmod it). The daemon reports it
    (counted, by session folder, no name), never crashes; the browser's user, once its
    processes are gone, deletes its own files (ExecStopPost= of the browser unit), and
    then the wipe verifies clean. Before: a crash (recursion) and nothing reported."""
    assert wipe_only(terminal).returncode == 0
    root = next((terminal / "data" / "sessions").iterdir())
    for name in ("downloads", "browser"):  # what BrowserUnits.spawn gives the browser
        (root / name).chmod(0o770)
    outside = terminal / "outside.txt"
    outside.write_text("not the resident's")
    plant(BROWSER, root / "downloads", outside)
    blocked = wipe_only(terminal)
    assert "Traceback" not in blocked.stderr, blocked.stderr
    assert blocked.returncode == 1
    left = [line for line in blocked.stderr.splitlines() if line.startswith("Left after")]
    assert left and all("secret" not in line and "locked" not in line for line in left)
    assert all("downloads" in line for line in left), left  # the kind, no name
    released = as_user(BROWSER, PYTHON, "-m", "kiosk.wipe", str(root / "downloads"),
                       str(root / "browser"))
    assert released.returncode == 0, released.stderr
    result = wipe_only(terminal)
    assert result.returncode == 0, result.stderr
    assert layout_only(terminal) == [] and outside.read_text() == "not the resident's"


def test_anything_going_wrong_inside_the_wipe_is_a_leftover(tmp_path, monkeypatch):
    """Before: the exception left the daemon "wiping" for good (and crashed --wipe-only)."""
    from kiosk import wipe
    from kiosk.session import SessionManager
    manager = SessionManager(tmp_path / "data", page_quota=5, idle_warning_seconds=60,
                             countdown_seconds=10)
    assert manager.wipe("boot").wiped

    def broken(*args):
        raise OSError(errno.EIO, "I/O error", "/secret/Josephine.pdf")

    monkeypatch.setattr(wipe, "count_leftovers" if hasattr(wipe, "count_leftovers") else "sweep",
                        broken)
    report = manager.wipe("user")
    assert not report.wiped and manager.state == "idle"
    assert len(report.leftovers) == 1 and report.leftovers[0].startswith("wipe: ")
    assert report.leftovers[0].endswith("(EIO).")  # translated, with the error's code
    assert "Josephine" not in " ".join(report.leftovers)
    with pytest.raises(Exception) as caught:
        manager.start()
    assert caught.value.code == "leftovers"
    monkeypatch.undo()
    assert manager.wipe("agent").wiped and manager.start()


ESCAPER = textwrap.dedent('''
    import os, sys, time
    if os.fork():
        os._exit(0)
    os.setsid()                                  # a new session and process group
    if os.fork():
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    open(sys.argv[1], "w").write(str(os.getpid()))
    while True:                                  # waits for the next resident's files
        for name in os.listdir(sys.argv[2]) if os.path.isdir(sys.argv[2]) else ():
            pass
        time.sleep(0.05)
''')


def escape(pid_file: Path, watched: Path) -> int:
    result = as_user(BROWSER, PYTHON, "-c", ESCAPER, str(pid_file), str(watched))
    assert result.returncode == 0, result.stderr
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), what="the escaped process")
    return int(pid_file.read_text())


def daemon_for(root: Path, cupsd, xvfb):
    """A daemon (harness.Daemon, as root) whose site names the throwaway browser user."""
    from harness import Daemon
    daemon = Daemon(root, cupsd, xvfb.display)
    root.mkdir(exist_ok=True)
    daemon.write_site()
    text = daemon.site_file.read_text()
    assert text.count("\n[browser]\n") == 1, text
    daemon.site_file.write_text(text.replace("\n[browser]\n", f'\n[browser]\nuser = "{BROWSER}"\n'))
    return daemon


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_setsid_child_of_the_browsers_user_does_not_outlive_the_wipe(cupsd, xvfb, users,
                                                                       tmp_path):
    """Before: the double-forked, setsid process was in no group the daemon knew; the wipe
    said "verified clean" and it went on running beside the next resident."""
    daemon = daemon_for(tmp_path / "d", cupsd, xvfb).start()
    spot = Path(tempfile.mkdtemp(prefix="plusw-pid-"))
    spot.chmod(0o777)
    try:
        client = daemon.client()
        session = client.start_session()
        pid = escape(spot / "pid", Path(session["dirs"]["downloads"]))
        assert alive(pid) and os.getsid(pid) not in (os.getsid(0), os.getsid(daemon.process.pid))
        report = client.end_session("user")
        assert report["wiped"] is True, report
        assert not alive(pid)
        assert processes_of(users[BROWSER].pw_uid) == []
        assert client.start_session()
    finally:
        daemon.stop()
        _kill_all(BROWSER)
        shutil.rmtree(spot)


def test_a_survivor_the_daemon_cannot_kill_keeps_the_wipe_unverified(terminal, users):
    """The daemon's user may not signal the browser's: the survivor is reported (exit 1),
    never "verified clean"; once it is gone, the same wipe is clean."""
    spot = terminal / "pids"
    spot.mkdir(mode=0o777)
    spot.chmod(0o777)
    pid = escape(spot / "pid", terminal)
    try:
        result = wipe_only(terminal)
        assert result.returncode == 1, result.stderr
        assert "browser-user" in result.stderr  # the kind of leftover
        assert alive(pid)
    finally:
        _kill_all(BROWSER)
    wait_for(lambda: not alive(pid), what="the survivor's end")
    assert wipe_only(terminal).returncode == 0


def test_the_tmpfs_cap_stops_a_resident_not_the_wipe(cupsd, xvfb, users, tmp_path):
    """The session folders on a tmpfs of a few MB: a resident filling it gets ENOSPC, the
    daemon stays up, the wipe frees it all and the next session opens."""
    root = Path(tempfile.mkdtemp(prefix="plusw-cap-"))
    root.chmod(0o755)
    daemon = daemon_for(root, cupsd, xvfb)
    sessions = daemon.data_dir / "sessions"
    sessions.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755,nosuid,nodev,noexec",
                    "plusw-cap", str(sessions)], check=True)
    try:
        daemon.data_dir.chmod(0o755)
        daemon.start()
        client = daemon.client()
        downloads = Path(client.start_session()["dirs"]["downloads"])
        for folder in (downloads.parent, downloads):
            folder.chmod(0o777)  # the browser's user writes here
        filler = ("import errno, sys\n"
                  "try:\n"
                  "    with open(sys.argv[1], 'wb') as f:\n"
                  "        for _ in range(64): f.write(b'x' * 65536); f.flush()\n"
                  "except OSError as e:\n"
                  "    print(errno.errorcode[e.errno])\n")
        filled = as_user(BROWSER, PYTHON, "-c", filler, str(downloads / "big.bin"))
        assert filled.stdout.strip() == "ENOSPC", filled
        assert client.health() == {"status": "ok"}
        report = client.end_session("user")
        assert report["wiped"] is True, report
        assert client.start_session() and client.health() == {"status": "ok"}
        assert shutil.disk_usage(sessions).used < 256 * 1024
    finally:
        daemon.stop()
        subprocess.run(["umount", "-l", str(sessions)], check=False)
        below = list(sessions.iterdir())
        shutil.rmtree(root, ignore_errors=True)
    assert below == []  # nothing ever reached the disk below the mount
