"""What provisioning asks programs to do: apt, the shadow tools, pip, systemctl.

Every command takes the target into account: the shadow tools get ``--root``
(they write the tree's /etc/passwd, never the host's); apt, pip and systemctl
only ever act on the running system, so with ``--root`` they are left out and
the run says so.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from kiosk.i18n import _
from kiosk_provision.site import BROWSER_USER, DAEMON_USER, RESIDENT
from kiosk_provision.tree import ProvisionError, Tree

VENV = "/opt/plus-kiosk/venv"
# Debian 12 packages of a terminal. The kiosk's own (the Makefile's RUN_DEBS but cups-pdf,
# a demo printer a terminal must not offer):
KIOSK_DEBS = (
    "ca-certificates cups sane-utils libsane1 xsel espeak-ng "
    "fonts-dejavu-core libmtdev1 libgl1 libegl1 libnss3 libasound2 libxkbfile1 "
    "libxcomposite1 libxdamage1 libxrandr2 libxtst6 libxkbcommon-x11-0 libxcb-cursor0 "
    "libxcb-icccm4 libxcb-keysyms1 libxcb-shape0 libxcb-randr0 libxcb-render-util0 "
    "libxcb-image0 libxcb-xkb1 x11-utils poppler-utils").split()
# …and the terminal's: X without a desktop, driverless printing and scanning, polkit
# (the daemon starts the browser unit), what pip needs to build pycups, the filtering
# proxy and the firewall that makes it the browser's only way out.
TERMINAL_DEBS = (
    "xserver-xorg-core xserver-xorg-input-libinput xserver-xorg-video-all xinit "
    "x11-xserver-utils cups-client cups-filters ipp-usb sane-airscan polkitd dbus "
    "python3 python3-venv python3-dev gcc libcups2-dev "
    "squid nftables "
    # node_exporter with its textfile collector: the daemon's health for the agents' office.
    "prometheus-node-exporter").split()
PACKAGES = tuple(dict.fromkeys(KIOSK_DEBS + TERMINAL_DEBS))


def run(command: list[str], what: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise ProvisionError(_("{what} failed: {command}\n{output}").format(
            what=what, command=" ".join(command),
            output=(result.stderr or result.stdout).strip()[-2000:]))
    return result


def systemd_running() -> bool:
    """sd_booted(): false in a chroot, a container without systemd, an image build."""
    return Path("/run/systemd/system").is_dir()


# -- packages ------------------------------------------------------------------------------

def missing_packages(packages: tuple[str, ...] = PACKAGES) -> list[str]:
    result = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${db:Status-Status}\n",
                             *packages], capture_output=True, text=True, check=False)
    installed = {line.split()[0] for line in result.stdout.splitlines()
                 if line.endswith(" installed")}
    return [name for name in packages if name not in installed]


def ensure_packages(tree: Tree) -> None:
    if not tree.is_host:
        tree.note(_("Debian packages are not installed into an image tree; install them "
                    "there: {packages}").format(packages=" ".join(PACKAGES)))
        return
    missing = missing_packages()
    if not missing:
        return
    tree.record("run", "apt-get install " + " ".join(missing))
    if not tree.check:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update"],
                        ["apt-get", "install", "-y", "--no-install-recommends", *missing]):
            result = subprocess.run(command, capture_output=True, text=True, env=env,
                                    check=False, stdin=subprocess.DEVNULL)
            if result.returncode != 0:
                raise ProvisionError(_("{what} failed: {command}\n{output}").format(
                    what=_("Installing Debian packages"), command=" ".join(command),
                    output=result.stderr.strip()[-2000:]))


# -- accounts ------------------------------------------------------------------------------

def _members(tree: Tree, group: str) -> list[str]:
    for line in tree.path("/etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == group and len(fields) > 3:
            return [m for m in fields[3].split(",") if m]
    return []


def _passwd_entry(tree: Tree, user: str) -> list[str] | None:
    for line in tree.path("/etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return fields
    return None


def ensure_accounts(tree: Tree) -> None:
    """The resident (no password, no sudo, home in memory), the browser's own user (locked,
    no home, in the resident group: it writes the session's downloads) and the daemon's."""
    if not tree.path("/etc/passwd").is_file():
        raise ProvisionError(_("{root} has no /etc/passwd: not a Debian system tree.").format(
            root=tree.root))
    root_args = [] if tree.is_host else ["--root", str(tree.root)]
    for group in (RESIDENT, "scanner"):
        if tree.gid(group) is None:
            tree.record("run", f"groupadd --system {group}")
            if not tree.check:
                run(["groupadd", *root_args, "--system", group], _("Creating a group"))
    users = {
        RESIDENT: ["--home-dir", f"/home/{RESIDENT}", "--shell", "/usr/sbin/nologin"],
        BROWSER_USER: ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"],
        DAEMON_USER: ["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"],
    }
    for user, options in users.items():
        entry = _passwd_entry(tree, user)
        if entry is None:
            tree.record("run", f"useradd --system {user}")
            if not tree.check:
                run(["useradd", *root_args, "--system", "--gid", RESIDENT, "--no-create-home",
                     *options, user], _("Creating a user"))
        elif entry[3] != str(tree.gid(RESIDENT)) or entry[5:7] != [options[1], options[3]]:
            tree.record("run", f"usermod {user}")
            if not tree.check:
                run(["usermod", *root_args, "--gid", RESIDENT, *options, user],
                    _("Changing a user"))
    if tree.gid("scanner") is None or DAEMON_USER not in _members(tree, "scanner"):
        tree.record("run", f"usermod --append --groups scanner {DAEMON_USER}")
        if not tree.check:
            run(["usermod", *root_args, "--append", "--groups", "scanner", DAEMON_USER],
                _("Changing a user"))
    for group in ("sudo", "wheel", "adm", "admin"):  # the resident gets no way up
        for user in (RESIDENT, BROWSER_USER):
            if user in (_members(tree, group) if tree.gid(group) is not None else []):
                tree.record("run", f"gpasswd --delete {user} {group}")
                if not tree.check:
                    run(["gpasswd", *root_args, "--delete", user, group], _("Changing a user"))
    for sudoers in [tree.path("/etc/sudoers"), *sorted(tree.path("/etc/sudoers.d").glob("*"))]:
        firsts = {line.split()[0] for line in (sudoers.read_text(errors="replace").splitlines()
                                              if sudoers.is_file() else []) if line.split()}
        for user in (RESIDENT, BROWSER_USER):
            if user in firsts:
                raise ProvisionError(_("{file} gives the resident user {user} sudo rights: "
                                       "remove that line.").format(file=sudoers, user=user))


# -- the package in its virtualenv ---------------------------------------------------------

def source_dir() -> Path | None:
    """The source tree kiosk-provision runs from (a checkout), if any."""
    candidate = Path(__file__).resolve().parents[2]
    return candidate if (candidate / "setup.py").is_file() else None


def source_digest(source: Path) -> str:
    """Changes whenever the code that would be installed changes."""
    digest = hashlib.sha256()
    paths = [source / "setup.py", source / "pyproject.toml"]
    for folder in ("kiosk", "provisioning", "systemd"):
        paths += sorted((source / folder).rglob("*"))
    for path in paths:
        relative = path.relative_to(source)
        if path.is_file() and "__pycache__" not in relative.parts:
            digest.update(str(relative).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def ensure_venv(tree: Tree) -> bool:
    """The package under /opt/plus-kiosk/venv, built from this source; True if (re)built."""
    if not tree.is_host:
        tree.note(_("The virtualenv {venv} is not built into an image tree; run kiosk-provision "
                    "inside the image (chroot) to build it.").format(venv=VENV))
        return False
    if Path(sys.prefix).resolve() == Path(VENV).resolve():
        return False  # running from it: it is there, with this very code
    source = source_dir()
    if source is None:
        raise ProvisionError(_("Cannot find the kiosk's source to install into {venv}.").format(
            venv=VENV))
    stamp = Path(VENV) / ".plus-kiosk-source"
    digest = source_digest(source)
    if stamp.is_file() and stamp.read_text().strip() == digest and \
            Path(VENV, "bin", "kiosk-daemon").is_file():
        return False
    tree.record("run", _("install the kiosk into {venv}").format(venv=VENV))
    if not tree.check:
        if not Path(VENV, "bin", "python").is_file():
            run(["python3", "-m", "venv", VENV], _("Creating the virtualenv"))
        run([f"{VENV}/bin/pip", "install", "--quiet", "--upgrade", "pip"],
            _("Installing the kiosk"))
        run([f"{VENV}/bin/pip", "install", "--quiet", str(source)], _("Installing the kiosk"))
        stamp.write_text(digest + "\n")
    return True


# -- taking changes into account on a running system ---------------------------------------

def apply_running(tree: Tree, changed: set[str]) -> None:
    """Reload or restart what the changed files belong to (only where systemd runs)."""
    if tree.check or not changed:
        return
    if not tree.is_host or not systemd_running():
        tree.note(_("systemd is not running here: the changes take effect at the next boot."))
        return
    steps: list[tuple[str, list[str]]] = [("units", ["systemctl", "daemon-reload"])]
    if "firewall" in changed:  # first: started if new (at boot it comes before the network)
        steps.append(("firewall", ["systemctl", "reload-or-restart",
                                   "plus-kiosk-firewall.service"]))
    if "udev" in changed:
        steps.append(("udev", ["udevadm", "control", "--reload"]))
    if "sysctl" in changed:
        steps.append(("sysctl", ["sysctl", "--system"]))
    if "grub" in changed and Path("/usr/sbin/update-grub").exists():
        steps.append(("grub", ["update-grub"]))
    if "cups" in changed:
        steps.append(("cups", ["systemctl", "restart", "cups.service"]))
    if "printer" in changed or "cups" in changed:
        steps.append(("printer", ["systemctl", "restart", "plus-kiosk-printer.service"]))
    if "squid" in changed:  # just masked: Debian's Squid may be running since its install
        steps.append(("squid", ["systemctl", "stop", "squid.service"]))
    if "proxy" in changed or "squid" in changed:
        steps.append(("proxy", ["systemctl", "restart", "plus-kiosk-proxy.service",
                                "plus-kiosk-proxy-reload.path"]))
    elif "proxy-config" in changed:  # the site's rules: Squid re-reads them, no restart
        steps.append(("proxy", ["systemctl", "reload-or-restart", "plus-kiosk-proxy.service"]))
    if "node-exporter" in changed:
        steps.append(("node-exporter", ["systemctl", "restart",
                                        "prometheus-node-exporter.service"]))
    if "daemon" in changed:
        steps.append(("daemon", ["systemctl", "restart", "plus-kiosk-daemon.service"]))
    if "screen" in changed or "daemon" in changed:
        steps.append(("screen", ["systemctl", "restart", "plus-kiosk-shell.service"]))
    for _reason, command in steps:
        tree.record("run", " ".join(command))
        run(command, _("Applying the changes"))
