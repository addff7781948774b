"""Opt-in, slow (``make test-provision``): provisioning for real inside a debootstrap chroot.

A minimal Debian 12 is bootstrapped once into build/ (kept for later runs), copied, and
the kiosk's committed source (HEAD) is provisioned in it exactly as a technician would on a
blank machine (provisioning/bootstrap.sh): Debian packages, users, the virtualenv with
the whole kiosk, files and units. Then a second run must find nothing to do, and the
installed units must pass systemd-analyze verify against the real programs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "build" / "debootstrap-base"
MIRROR = os.environ.get("KIOSK_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SITE = "/usr/local/src/plus-kiosk/kiosk/sites/espace-sud.toml"

pytestmark = pytest.mark.skipif(os.environ.get("KIOSK_DEBOOTSTRAP") != "1",
                                reason="slow: run with make test-provision")


def sh(*command: str, timeout: int = 3600, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(list(command), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def chroot(tmp_path_factory):
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("needs root and debootstrap")
    if not (BASE / "etc" / "os-release").exists():
        shutil.rmtree(BASE, ignore_errors=True)
        BASE.parent.mkdir(exist_ok=True)
        sh("debootstrap", "--variant=minbase", "bookworm", str(BASE), MIRROR)
    target = ROOT / "build" / "debootstrap-run"
    shutil.rmtree(target, ignore_errors=True)
    sh("cp", "-a", str(BASE), str(target))
    source = target / "usr/local/src/plus-kiosk"
    source.mkdir(parents=True)
    subprocess.run(f"git -C {ROOT} archive HEAD | tar -x -C {source}", shell=True, check=True)
    shutil.copy("/etc/resolv.conf", target / "etc/resolv.conf")
    # The host's certificate authorities: its way to PyPI may go through a TLS proxy.
    shutil.copy("/etc/ssl/certs/ca-certificates.crt", target / "etc/host-ca.crt")
    mounts = []
    for kind, where in (("proc", "proc"), ("sysfs", "sys"), ("devtmpfs", "dev")):
        sh("mount", "-t", kind, kind, str(target / where))
        mounts.append(target / where)
    try:
        yield target
    finally:
        for mount in reversed(mounts):
            sh("umount", "-l", str(mount), check=False)


def provision(target: Path, *extra: str) -> subprocess.CompletedProcess:
    host_ca = "/etc/host-ca.crt"  # for pip and for its build-isolation subprocesses
    return sh("chroot", str(target), "env", f"PIP_CERT={host_ca}", f"REQUESTS_CA_BUNDLE={host_ca}",
              f"SSL_CERT_FILE={host_ca}", "PIP_FIND_LINKS=",
              "/usr/local/src/plus-kiosk/provisioning/bootstrap.sh",
              "--site", SITE, "--lang", "en", *extra, check=False)


def test_provisioning_inside_a_debootstrap_chroot(chroot):
    first = provision(chroot)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "apt-get install" in first.stdout and "install the kiosk into" in first.stdout
    assert "systemd is not running here" in first.stdout

    second = provision(chroot)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Nothing to do" in second.stdout, second.stdout
    check = provision(chroot, "--check")
    assert check.returncode == 0 and "Nothing to do" in check.stdout, check.stdout

    for user in ("kiosk", "plus-kiosk"):
        assert sh("chroot", str(chroot), "getent", "passwd", user).stdout
    assert sh("chroot", str(chroot), "/opt/plus-kiosk/venv/bin/kioskctl", "--lang", "en",
              "check-config", "/etc/plus-kiosk/kiosk.toml").returncode == 0
    for unit in ("plus-kiosk-daemon.service", "plus-kiosk-wipe.service",
                 "plus-kiosk-shell.service", "plus-kiosk-printer.service", "home-kiosk.mount",
                 "plus-kiosk-browser@0123456789ab.service"):
        result = sh("systemd-analyze", "verify", f"--root={chroot}",
                    f"/etc/systemd/system/{unit}", check=False)
        assert result.returncode == 0, unit + result.stderr
    cupsd = (chroot / "etc/cups/cupsd.conf").read_text()
    assert "PreserveJobHistory No" in cupsd and "Browsing No" in cupsd
