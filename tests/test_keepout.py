"""The shell's user shares the resident group with the browser's (the daemon's socket)
but may not write where the browser writes: a folder it filled with entries only it
can unlock would keep the wipe from verifying clean (issue #12, item 3).

Real users: two throwaway users in one throwaway group, a folder of that group in
mode 0770; the one refused by the ACL cannot create anything, the other can.
"""

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from kiosk.keepout import acl_bytes, keep_out, refused_uids

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("useradd") is None,
    reason="needs root, setpriv and useradd (it creates throwaway users)")


@pytest.fixture
def two_users():
    tag = uuid.uuid4().hex[:6]
    group, shell, browser = f"plusk-{tag}", f"pluskshell{tag}", f"pluskweb{tag}"
    subprocess.run(["groupadd", "--system", group], check=True)
    try:
        for user in (shell, browser):
            subprocess.run(["useradd", "--system", "--gid", group, "--no-create-home",
                            "--shell", "/usr/sbin/nologin", user], check=True)
        yield group, shell, browser
    finally:
        for user in (shell, browser):
            subprocess.run(["userdel", user], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)


def create_as(user: str, group: str, path: Path) -> int:
    return subprocess.run(["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups",
                           "touch", str(path)], capture_output=True).returncode


def test_the_refused_user_cannot_write_while_its_group_can(two_users):
    import grp
    import pwd
    group, shell, browser = two_users
    base = Path(tempfile.mkdtemp(prefix="plus-kiosk-keepout-"))
    try:
        base.chmod(0o755)
        downloads = base / "downloads"
        downloads.mkdir()
        os.chown(downloads, 0, grp.getgrnam(group).gr_gid)
        downloads.chmod(0o770)
        assert create_as(shell, group, downloads / "before") == 0   # today: the shell writes there
        (downloads / "before").unlink()
        keep_out(downloads, [pwd.getpwnam(shell).pw_uid])
        assert create_as(shell, group, downloads / "locked") != 0
        assert not (downloads / "locked").exists()
        assert create_as(browser, group, downloads / "avis.pdf") == 0
        assert refused_uids(downloads) == [pwd.getpwnam(shell).pw_uid]
        assert oct(downloads.stat().st_mode & 0o777) == "0o770"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_acl_keeps_the_folders_mode_and_refuses_only_named_users():
    data = acl_bytes(0o770, [1001, 1000, 1001])
    assert data[:4] == b"\x02\x00\x00\x00"
    entries = [data[i:i + 8] for i in range(4, len(data), 8)]
    assert len(entries) == 6   # owner, two refused users (sorted, once each), group, mask, other
    assert entries[1][4:] == (1000).to_bytes(4, "little") and entries[1][2:4] == b"\x00\x00"
    assert entries[-1][2:4] == b"\x00\x00" and entries[0][2:4] == b"\x07\x00"
