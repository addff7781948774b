"""What a terminal is made of, file by file: the desired state ``kiosk-provision`` keeps.

Each entry says where a file goes, who owns it and which running part must take
it into account when it changes ("daemon", "screen", "cups", …; see
``system.apply_running``). Unit files come from the repository's ``systemd/``
folder, the rest from ``files/`` beside this module.
"""

from __future__ import annotations

import re
import secrets
import stat
import sys
from importlib import resources
from pathlib import Path, PurePosixPath

from kiosk import config as site_config
from kiosk.i18n import _
from kiosk_provision import firewall
from kiosk_provision.site import (
    AGENT_PIN_FILE,
    BROWSER_USER,
    DAEMON_USER,
    PROXY_USER,
    RESIDENT,
)
from kiosk_provision.tree import ProvisionError, Tree

ETC = "/etc/plus-kiosk"
UNIT_DIR = "/etc/systemd/system"
NODE_EXPORTER_UNIT = "prometheus-node-exporter.service"
NODE_EXPORTER_DEFAULTS = "/etc/default/prometheus-node-exporter"
NODE_EXPORTER_USER = "prometheus"
JOURNALD_CONF = "/etc/systemd/journald@plus-kiosk.conf"  # LogNamespace=plus-kiosk
# unit file → what it belongs to, and the target that wants it ("" = started on demand).
UNITS = {
    "plus-kiosk-daemon.service": ("daemon", "multi-user.target"),
    "plus-kiosk-wipe.service": ("daemon", "multi-user.target"),
    "plus-kiosk-shell.service": ("screen", "multi-user.target"),
    "plus-kiosk-browser@.service": ("daemon", ""),
    "plus-kiosk-printer.service": ("printer", "multi-user.target"),
    "home-kiosk.mount": ("screen", "local-fs.target"),
    "var-lib-plus\\x2dkiosk-sessions.mount": ("daemon", "local-fs.target"),
    "plus-kiosk-proxy.service": ("proxy", "multi-user.target"),
    "plus-kiosk-proxy-reload.path": ("proxy", "paths.target"),
    "plus-kiosk-proxy-reload.service": ("proxy", ""),
    "plus-kiosk-firewall.service": ("firewall", "sysinit.target"),
    # CUPS's copies of cut-short prints: their folder in memory, and the root step the
    # daemon's wipe starts (kiosk/printing/cups_clean.py).
    "var-spool-cups-tmp.mount": ("cups", "local-fs.target"),
    "plus-kiosk-cups-clean.service": ("daemon", ""),
}
# Debian's squid.service would listen on every interface (the wifi too) on 3128;
# plus-kiosk-proxy.service runs Squid on loopback with the site's configuration.
MASKED = {"getty@tty1.service": "screen", "ctrl-alt-del.target": "screen",
          "squid.service": "squid"}
# Where CUPS would keep residents' traces: no job history, no job files, no page log
# (an empty format turns it off: it would name users and documents), no advertising
# of the queue on the network.
CUPSD_DIRECTIVES = {
    "PreserveJobHistory": "No",
    "PreserveJobFiles": "No",
    "PageLogFormat": "",
    "Browsing": "No",
    "LogLevel": "warn",
}


def units_dir() -> Path:
    """The unit files: the checkout's systemd/, or the copy an installed package carries."""
    for candidate in (Path(__file__).resolve().parents[2] / "systemd",
                      Path(sys.prefix) / "share" / "plus-kiosk" / "systemd"):
        if (candidate / "plus-kiosk-daemon.service").is_file():
            return candidate
    raise ProvisionError(_("Cannot find the kiosk's unit files (systemd/)."))


def bundled(name: str) -> str:
    return (resources.files("kiosk_provision") / "files" / name).read_text(encoding="utf-8")


def _wanted_by(unit_text: str) -> list[str]:
    return [target for line in unit_text.splitlines() if line.startswith("WantedBy=")
            for target in line.split("=", 1)[1].split()]


def cupsd_conf(text: str) -> str:
    """``text`` with our directives set at top level (other lines untouched)."""
    lines: list[str | None] = list(text.splitlines())
    depth = 0
    seen: set[str] = set()
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("</"):
            depth -= 1
        elif stripped.startswith("<"):
            depth += 1
        elif depth == 0 and stripped and not stripped.startswith("#"):
            key = stripped.split()[0]
            if key in CUPSD_DIRECTIVES:
                lines[index] = None if key in seen else f"{key} {CUPSD_DIRECTIVES[key]}".strip()
                seen.add(key)
    missing = [key for key in CUPSD_DIRECTIVES if key not in seen]
    if missing:
        lines += ["# PLUS kiosk (kiosk-provision): CUPS keeps nothing of the residents."]
        lines += [f"{key} {CUPSD_DIRECTIVES[key]}".strip() for key in missing]
    return "\n".join(line for line in lines if line is not None) + "\n"


def _env_value(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9:/._@%+=,?&~\-\[\]]+", text):
        raise ProvisionError(_("The printer setting {value!r} holds characters a terminal "
                               "cannot pass on.").format(value=text))
    return text


def firewall_rules(tree: Tree, config: site_config.SiteConfig) -> str:
    """The resident's firewall for this tree's users — the shell's and the browser's — (by
    uid: the file is checked and loaded without looking names up, and follows a user made
    again)."""
    if tree.uid(PROXY_USER) is None and not tree.check:  # Debian's base-passwd makes it
        raise ProvisionError(_("The user {user}, whom Squid runs as, does not exist in {root}: "
                               "not a Debian system tree?").format(user=PROXY_USER,
                                                                   root=tree.root))
    # With --check on a fresh tree the resident is not made yet: names stand in.
    def user(name: str) -> str | int:
        uid = tree.uid(name)
        return name if uid is None else uid

    return firewall.nft_rules((user(RESIDENT), user(BROWSER_USER)), user(PROXY_USER),
                              config.proxy.host, config.proxy.port)


def node_exporter(tree: Tree, config: site_config.SiteConfig, mark) -> None:
    """Debian's node_exporter, on the address the site names (loopback by default), serving
    the daemon's textfile: its folder is the daemon's (owner) and node_exporter's (group,
    setgid: the daemon's 0640 files are readable by it); no resident's user can write it."""
    monitoring = config.monitoring
    args = [f"--web.listen-address={monitoring.listen}"]
    if monitoring.textfile:
        folder = str(PurePosixPath(monitoring.textfile).parent)
        args.append(f"--collector.textfile.directory={folder}")
        if tree.uid(NODE_EXPORTER_USER) is None and not tree.check:
            tree.note(_("The user {user} (Debian's prometheus-node-exporter) does not exist in "
                        "{root}: the metrics folder is left for a later run.").format(
                            user=NODE_EXPORTER_USER, root=tree.root))
        else:
            tree.directory(folder, 0o2750, DAEMON_USER, NODE_EXPORTER_USER)
    mark(tree.file(NODE_EXPORTER_DEFAULTS,
                   "# PLUS kiosk (kiosk-provision, from the site file's [monitoring]).\n"
                   f'ARGS="{" ".join(args)}"\n'), "node-exporter")
    mark(tree.symlink(f"{UNIT_DIR}/multi-user.target.wants/{NODE_EXPORTER_UNIT}",
                      f"/lib/systemd/system/{NODE_EXPORTER_UNIT}"), "node-exporter")


def apply(tree: Tree, config: site_config.SiteConfig, site_text: str) -> set[str]:
    """Lay every file down; the set says which running parts must take changes into account."""
    changed: set[str] = set()

    def mark(did_change: bool, part: str) -> None:
        if did_change:
            changed.add(part)

    before = len(tree.changes)
    tree.directory(ETC, 0o750, "root", RESIDENT)
    # The shell and the browser read the site (portals, rules); the PIN hash is not in it.
    if tree.file(f"{ETC}/kiosk.toml", site_text, 0o640, "root", RESIDENT):
        changed |= {"daemon", "screen", "proxy-config"}
    mark(tree.file(firewall.FILE, firewall_rules(tree, config)), "firewall")
    # Made once, root's alone; the daemon gets a copy from systemd (LoadCredential=).
    mark(tree.file(f"{ETC}/agent-token", secrets.token_urlsafe(32) + "\n", 0o600,
                   keep_content=True), "daemon")
    # The agents' PIN hash, root's alone: the shell's unit gets a private copy
    # (LoadCredential=), the browser none. Made empty (no agent menu) until `kioskctl
    # pin-hash` writes it; never overwritten here.
    mark(tree.file(AGENT_PIN_FILE, "", 0o600, keep_content=True), "screen")
    printing = config.printing
    if printing.device_uri:
        mark(tree.file(f"{ETC}/printer.env",
                       f"KIOSK_QUEUE={_env_value(printing.queue)}\n"
                       f"KIOSK_DEVICE_URI={_env_value(printing.device_uri)}\n"
                       f"KIOSK_MODEL={_env_value(printing.model)}\n"), "printer")
    else:
        mark(tree.absent(f"{ETC}/printer.env"), "printer")

    source = units_dir()
    for unit, (part, _target) in UNITS.items():
        text = (source / unit).read_text(encoding="utf-8")
        mark(tree.file(f"{UNIT_DIR}/{unit}", text), part)
        for target in _wanted_by(text):
            mark(tree.symlink(f"{UNIT_DIR}/{target}.wants/{unit}", f"{UNIT_DIR}/{unit}"), part)
    for unit, part in MASKED.items():
        mark(tree.symlink(f"{UNIT_DIR}/{unit}", "/dev/null"), part)

    udev_rule = "/etc/udev/rules.d/90-plus-kiosk-usb-storage.rules"
    if config.devices.usb_storage == "refuse":
        mark(tree.file(udev_rule, (source / "90-plus-kiosk-usb-storage.rules").read_text()),
             "udev")
    else:
        mark(tree.absent(udev_rule), "udev")
    mark(tree.file("/etc/polkit-1/rules.d/50-plus-kiosk.rules",
                   (source / "50-plus-kiosk.rules").read_text()), "daemon")

    tree.directory("/opt/plus-kiosk", 0o755)
    tree.directory("/opt/plus-kiosk/libexec", 0o755)
    mark(tree.file("/opt/plus-kiosk/libexec/xsession", bundled("xsession"), 0o755), "screen")
    mark(tree.file("/etc/X11/xorg.conf.d/10-plus-kiosk.conf", bundled("xorg-plus-kiosk.conf")),
         "screen")
    mark(tree.file("/etc/systemd/logind.conf.d/plus-kiosk.conf",
                   bundled("logind-plus-kiosk.conf")), "screen")
    mark(tree.file("/etc/systemd/system.conf.d/plus-kiosk.conf",
                   bundled("system-plus-kiosk.conf")), "units")
    # The kiosk units' journal namespace: RAM only (names of residents' files, pages…
    # must not outlive the power-off; Debian keeps the main journal on disk).
    mark(tree.file(JOURNALD_CONF, bundled("journald-plus-kiosk.conf")), "units")
    mark(tree.file("/etc/sysctl.d/90-plus-kiosk.conf", bundled("sysctl-plus-kiosk.conf")),
         "sysctl")
    mark(tree.file("/etc/default/grub.d/plus-kiosk.cfg", bundled("grub-plus-kiosk.cfg")), "grub")

    node_exporter(tree, config, mark)

    cupsd = tree.path("/etc/cups/cupsd.conf")
    if cupsd.is_file():
        st = cupsd.stat()  # CUPS's own owner and mode stay
        owner = next((n for n in ("root", "lp") if tree.uid(n) == st.st_uid), "root")
        group = next((n for n in ("root", "lp") if tree.gid(n) == st.st_gid), "root")
        mark(tree.file("/etc/cups/cupsd.conf", cupsd_conf(cupsd.read_text()),
                       stat.S_IMODE(st.st_mode), owner, group), "cups")
    else:
        tree.note(_("CUPS is not installed in {root}: its settings are left for a later "
                    "run.").format(root=tree.root))
    if len(tree.changes) > before:
        changed.add("units")
    return changed
