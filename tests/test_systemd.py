"""The unit files: systemd-analyze verify on every one, the daemon's exposure ≤ 2.0,
and the properties the issue asks for (notify + watchdog, wipe first, restarts)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kiosk_provision import layout

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "systemd"
SYSTEM_UNITS = next((p for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
                     if (p / "sysinit.target").exists()), None)

pytestmark = [
    pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze"),
    pytest.mark.skipif(os.geteuid() != 0, reason="provisioning chowns files: root only"),
]


def unit(name: str) -> dict[str, list[str]]:
    """key → values (systemd keys may repeat)."""
    values: dict[str, list[str]] = {}
    for line in (UNITS / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A provisioned tree with systemd's own units and the programs the units start."""
    from tests.test_provision import provision, seed_tree, site_file
    tmp = tmp_path_factory.mktemp("image")
    root = seed_tree(tmp / "root")
    result = provision(root, site_file(tmp))
    assert result.returncode == 0, result.stderr
    assert SYSTEM_UNITS is not None
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    for name in layout.UNITS:
        for command in [v for k, vs in unit(name).items() if k.startswith("Exec") for v in vs]:
            program = root / command.lstrip("+-@!:").split()[0].lstrip("/")
            if not program.exists():  # a stand-in: verify checks the program is there
                program.parent.mkdir(parents=True, exist_ok=True)
                program.write_text("#!/bin/sh\n")
                program.chmod(0o755)
    return root


@pytest.mark.parametrize("name", [*layout.UNITS, "plus-kiosk-browser@0123456789ab.service"])
def test_systemd_analyze_verify(image, name):
    result = subprocess.run(["systemd-analyze", "verify", f"--root={image}",
                             f"/etc/systemd/system/{name}"], capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_verify_notices_a_broken_unit(image, tmp_path):
    broken = image / "etc/systemd/system/plus-kiosk-broken.service"
    broken.write_text((UNITS / "plus-kiosk-daemon.service").read_text().replace(
        "/opt/plus-kiosk/venv/bin/kiosk-daemon", "/opt/nowhere/kiosk-daemon"))
    try:
        result = subprocess.run(["systemd-analyze", "verify", f"--root={image}",
                                 "/etc/systemd/system/plus-kiosk-broken.service"],
                                capture_output=True, text=True)
        assert result.returncode != 0 and "not executable" in result.stderr
    finally:
        broken.unlink()


def exposure(path: Path) -> float:
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(path)],
                            capture_output=True, text=True)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    return float(match.group(1))


def test_daemon_exposure_is_at_most_2():
    assert exposure(UNITS / "plus-kiosk-daemon.service") <= 2.0


def test_boot_wipe_is_hardened_too():
    assert exposure(UNITS / "plus-kiosk-wipe.service") <= 2.0


def test_proxy_and_firewall_exposure_is_at_most_2():
    assert exposure(UNITS / "plus-kiosk-proxy.service") <= 2.0
    assert exposure(UNITS / "plus-kiosk-firewall.service") <= 2.0
    assert exposure(UNITS / "plus-kiosk-proxy-reload.service") <= 2.0


def test_proxy_is_squid_as_its_user_config_from_the_site_reloaded_by_sighup():
    proxy = unit("plus-kiosk-proxy.service")
    assert proxy["Type"] == ["notify"] and proxy["Restart"] == ["always"]
    assert proxy["User"] == ["proxy"] and proxy["RuntimeDirectory"] == ["plus-kiosk-proxy"]
    conf = "/run/plus-kiosk-proxy/squid.conf"
    generate = ("+/opt/plus-kiosk/venv/bin/kioskctl proxy-config --config "
                f"/etc/plus-kiosk/kiosk.toml --output {conf}")
    # Only the step reading the root:kiosk site file runs as root.
    assert [c for c in proxy["ExecStartPre"] + proxy["ExecReload"] if c.startswith("+")] \
        == [generate, generate]
    assert proxy["ExecStart"] == [f"/usr/sbin/squid -N -d 0 -f {conf}"]
    assert proxy["ExecReload"][-1] == "/bin/kill -HUP $MAINPID"
    parse = f"/usr/sbin/squid -k parse -f {conf}"  # checked before use
    assert proxy["ExecReload"][1] == proxy["ExecStartPre"][1] == parse
    assert proxy["CapabilityBoundingSet"] == [""] and proxy["NoNewPrivileges"] == ["yes"]
    assert proxy["MemoryDenyWriteExecute"] == ["yes"]
    assert proxy["RestrictAddressFamilies"] == ["AF_INET AF_INET6 AF_UNIX"]
    assert proxy["Conflicts"] == ["squid.service"] and "squid.service" in layout.MASKED
    path = unit("plus-kiosk-proxy-reload.path")
    assert path["PathChanged"] == ["/etc/plus-kiosk/kiosk.toml"]
    assert path["Unit"] == ["plus-kiosk-proxy-reload.service"]
    assert unit("plus-kiosk-proxy-reload.service")["ExecStart"] == [
        "/usr/bin/systemctl try-reload-or-restart plus-kiosk-proxy.service"]


def test_no_browser_without_the_firewall_loaded_first():
    firewall = unit("plus-kiosk-firewall.service")
    assert firewall["ExecStart"] == ["/usr/sbin/nft -f /etc/plus-kiosk/firewall.nft"]
    assert firewall["Type"] == ["oneshot"] and firewall["RemainAfterExit"] == ["yes"]
    assert "ExecStop" not in firewall               # stopped, it stays closed
    assert {"network-pre.target", "plus-kiosk-daemon.service", "plus-kiosk-shell.service",
            "plus-kiosk-proxy.service"} <= set(" ".join(firewall["Before"]).split())
    assert firewall["DefaultDependencies"] == ["no"] and firewall["WantedBy"] == ["sysinit.target"]
    browser = unit("plus-kiosk-browser@.service")
    assert browser["Requires"] == ["plus-kiosk-firewall.service"]
    assert browser["Wants"] == ["plus-kiosk-proxy.service"]
    assert {"plus-kiosk-firewall.service", "plus-kiosk-proxy.service"} <= \
        set(" ".join(browser["After"]).split())


def test_browser_reaches_only_localhost_addresses():
    """Chromium connects to loopback and link-local addresses without asking its
    connection gate: the unit's own IP filter keeps link-local (the LAN's autoconf
    printers, 169.254.169.254) out of reach, beside the firewall."""
    browser = unit("plus-kiosk-browser@.service")
    assert browser["IPAddressDeny"] == ["any"] and browser["IPAddressAllow"] == ["localhost"]


def test_daemon_is_notify_watched_restarted_its_own_user():
    daemon = unit("plus-kiosk-daemon.service")
    assert daemon["Type"] == ["notify"] and daemon["Restart"] == ["on-failure"]
    assert int(daemon["WatchdogSec"][0]) > 0
    assert daemon["User"] == ["plus-kiosk"] and daemon["Group"] == ["kiosk"]
    assert daemon["LoadCredential"] == ["agent-token:/etc/plus-kiosk/agent-token"]
    assert "plus-kiosk-wipe.service" in " ".join(daemon["After"])
    assert daemon["CapabilityBoundingSet"] == [""] and daemon["RestrictNamespaces"] == ["yes"]


def test_wipe_runs_before_anything_a_resident_sees():
    wipe = unit("plus-kiosk-wipe.service")
    before = " ".join(wipe["Before"]).split()
    assert {"plus-kiosk-daemon.service", "plus-kiosk-shell.service", "cups.service"} <= set(before)
    assert wipe["Type"] == ["oneshot"] and "--wipe-only" in wipe["ExecStart"][0]
    assert "plus-kiosk-wipe.service" in " ".join(unit("plus-kiosk-shell.service")["After"])


def test_shell_session_restarts_when_dead_or_frozen():
    shell = unit("plus-kiosk-shell.service")
    assert shell["Restart"] == ["always"] and int(shell["WatchdogSec"][0]) > 0
    assert shell["Type"] == ["notify"] and shell["NotifyAccess"] == ["all"]
    assert shell["User"] == ["kiosk"] and shell["TTYPath"] == ["/dev/tty1"]
    assert shell["Conflicts"] == ["getty@tty1.service"]
    assert shell["ExecStart"][0].startswith("/usr/bin/xinit /opt/plus-kiosk/libexec/xsession --")
    assert shell["StartLimitIntervalSec"] == ["0"]  # never gives up


def test_browser_unit_runs_as_its_own_user_with_a_fixed_program():
    """Before: User=kiosk, the shell's user: the daemon and the control socket could not
    tell a compromised browser from the shell."""
    browser = unit("plus-kiosk-browser@.service")
    assert browser["User"] == ["kiosk-browser"] and browser["Group"] == ["kiosk"]
    assert browser["KillMode"] == ["control-group"]
    assert browser["ExecStart"][0].startswith("/opt/plus-kiosk/venv/bin/kiosk-browser --url ")
    assert "--no-sandbox" not in browser["ExecStart"][0]
    # Chromium's sandbox needs user namespaces: nothing here may forbid them. It has no
    # setuid helper, so no new privileges costs it nothing.
    assert "RestrictNamespaces" not in browser and browser["NoNewPrivileges"] == ["yes"]
    assert browser["ProtectProc"] == ["invisible"] and browser["PrivateIPC"] == ["yes"]
    assert "LoadCredential" not in browser   # the agents' PIN is the shell's alone
    rule = (UNITS / "50-plus-kiosk.rules").read_text()
    assert 'subject.user == "plus-kiosk"' in rule and "plus-kiosk-browser@" in rule


def test_shell_unit_gains_nothing_sees_no_one_and_alone_gets_the_pin():
    """Before: none of these lines; the PIN hash sat in the site file (group kiosk)."""
    shell = unit("plus-kiosk-shell.service")
    assert shell["NoNewPrivileges"] == ["yes"] and shell["ProtectProc"] == ["invisible"]
    assert shell["PrivateIPC"] == ["yes"]  # Xorg runs inside it: MIT-SHM stays shared
    assert shell["LoadCredential"] == ["agent-pin:/etc/plus-kiosk/agent-pin"]
    assert [name for name in layout.UNITS if name != "plus-kiosk-shell.service" and
            "agent-pin" in (UNITS / name).read_text()] == []


POLKIT_HARNESS = """
var polkit = {Result: {YES: "yes", NO: "no"}, rules: [],
              addRule: function(rule) { this.rules.push(rule); }};
%s
var answers = [];
for (var i = 0; i < dukpy.cases.length; i++) {
  var c = dukpy.cases[i];
  var action = {id: c[0], lookup: function(key) { return this.details[key]; },
                details: {unit: c[2], verb: c[3]}};
  answers.push(polkit.rules[0](action, {user: c[1]}) || null);
}
answers;
"""


def test_polkit_rule_lets_the_daemon_start_and_stop_browser_units_only():
    """Evaluated with Duktape, the JavaScript engine of Debian 12's polkit."""
    dukpy = pytest.importorskip("dukpy")
    manage = "org.freedesktop.systemd1.manage-units"
    cases = [
        (manage, "plus-kiosk", "plus-kiosk-browser@0123456789ab.service", "start"),
        (manage, "plus-kiosk", "plus-kiosk-browser@0123456789ab.service", "stop"),
        (manage, "kiosk", "plus-kiosk-browser@0123456789ab.service", "start"),
        (manage, "plus-kiosk", "plus-kiosk-daemon.service", "stop"),
        (manage, "plus-kiosk", "getty@tty2.service", "start"),
        (manage, "plus-kiosk", "plus-kiosk-browser@x.service;evil.service", "start"),
        (manage, "plus-kiosk", "plus-kiosk-browser@0123456789ab.service", "enable"),
        ("org.freedesktop.login1.power-off", "plus-kiosk", None, None),
    ]
    rule = (UNITS / "50-plus-kiosk.rules").read_text()
    answers = dukpy.evaljs(POLKIT_HARNESS % rule, cases=cases)
    assert answers == ["yes", "yes", None, None, None, None, None, None]


def test_usb_storage_rule_is_well_formed():
    """udev's own checker (udevadm verify) only exists from systemd 254: check its syntax."""
    token = r'(ACTION|SUBSYSTEMS?|ENV\{\w+\}|ATTRS?\{\w+\}|DRIVERS?)(==|!=|=)"[^"]*"'
    rules = [line for line in (UNITS / "90-plus-kiosk-usb-storage.rules").read_text().splitlines()
             if line and not line.startswith("#")]
    assert rules
    for line in rules:
        assert all(re.fullmatch(token, part.strip()) for part in line.split(",")), line
    assert 'ATTR{bInterfaceClass}=="08"' in rules[0] and rules[0].endswith('ATTR{authorized}="0"')


def test_units_named_in_the_provisioning_all_exist():
    assert {p.name for pattern in ("*.service", "*.mount", "*.path")
            for p in UNITS.glob(pattern)} == set(layout.UNITS)
    assert sys.version_info >= (3, 11)


# -- issue #12: ceilings, and a journal that forgets (items 5 and 8) ---------------------

KIOSK_UNITS = ("plus-kiosk-daemon.service", "plus-kiosk-shell.service",
               "plus-kiosk-browser@.service", "plus-kiosk-wipe.service",
               "plus-kiosk-proxy.service")


def _bytes(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([KMG]?)", value).groups()
    return int(number) * {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}[unit]


@pytest.mark.parametrize("name", KIOSK_UNITS)
def test_each_kiosk_unit_has_a_memory_and_a_task_ceiling(name):
    values = unit(name)
    assert len(values.get("MemoryMax", [])) == 1 and len(values.get("TasksMax", [])) == 1, name
    assert 128 << 20 <= _bytes(values["MemoryMax"][0]) <= 4 << 30
    assert 16 <= int(values["TasksMax"][0]) <= 1024


def test_a_bomb_killed_in_the_daemons_cgroup_does_not_stop_the_daemon():
    """The kernel's OOM killer takes the largest process of the unit (a confined
    parser); the default OOMPolicy=stop would then stop the daemon and end the session."""
    daemon = unit("plus-kiosk-daemon.service")
    assert daemon["OOMPolicy"] == ["continue"]
    children = 2 * 512 << 20  # kiosk/printing/confined.py: SLOTS × CHILD_MEMORY_BYTES
    from kiosk.printing import confined
    assert confined.SLOTS * confined.CHILD_MEMORY_BYTES == children
    assert _bytes(daemon["MemoryMax"][0]) > children


@pytest.mark.parametrize("name", KIOSK_UNITS)
def test_kiosk_units_log_to_the_volatile_namespace(name):
    assert unit(name)["LogNamespace"] == ["plus-kiosk"]


def test_the_namespace_journal_is_provisioned_volatile(image):
    import configparser
    conf = configparser.ConfigParser()
    conf.optionxform = str
    conf.read_string((image / layout.JOURNALD_CONF.lstrip("/")).read_text())
    journal = conf["Journal"]
    assert journal["Storage"] == "volatile"  # RAM only: nothing survives the power-off
    assert all(journal[key] == "no" for key in ("ForwardToSyslog", "ForwardToKMsg",
                                                 "ForwardToConsole", "ForwardToWall"))
    assert layout.JOURNALD_CONF == "/etc/systemd/journald@plus-kiosk.conf"


# -- issue #13: CUPS's own copies of cut-short prints ---------------------------------------

def test_cups_temporary_folder_is_a_capped_tmpfs_with_debians_owner_and_mode():
    """cupsd resets TempDir to root:lp 1770 at start (Debian ships it so): anything else
    would be fought over; in memory, a power cut leaves no copy on disk."""
    mount = unit("var-spool-cups-tmp.mount")
    assert mount["Where"] == ["/var/spool/cups/tmp"] and mount["Type"] == ["tmpfs"]
    options = mount["Options"][0].split(",")
    assert {"mode=1770", "X-mount.owner=root", "X-mount.group=lp", "nosuid", "nodev",
            "noexec"} <= set(options)
    assert any(o.startswith("size=") for o in options)
    assert any(o.startswith("nr_inodes=") for o in options)
    assert {"cups.service", "plus-kiosk-wipe.service"} <= set(" ".join(mount["Before"]).split())
    assert mount["WantedBy"] == ["local-fs.target"]


def test_cups_clean_step_is_the_module_its_report_where_the_daemon_reads_it():
    from kiosk.printing import cups_clean
    clean = unit(cups_clean.CLEAN_UNIT)
    assert clean["Type"] == ["oneshot"] and "User" not in clean  # root, for lp's files
    assert clean["ExecStart"] == [
        f"/opt/plus-kiosk/venv/bin/python -m kiosk.printing.cups_clean --report "
        f"{cups_clean.REPORT_FILE}"]
    assert clean["RuntimeDirectory"] == [cups_clean.REPORT_FILE.parent.name]
    assert clean["RuntimeDirectoryPreserve"] == ["yes"]  # read after the oneshot ended
    # Never ordered after cupsd: the boot wipe (Before=cups.service) starts it.
    assert "cups.service" not in " ".join(clean.get("After", []) + clean.get("Requires", []))
    assert clean["RequiresMountsFor"] == ["/var/spool/cups/tmp"]
    assert clean["CapabilityBoundingSet"] == ["CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER"]
    assert set(clean["ReadWritePaths"][0].split()) == {"/var/spool/cups", "/var/spool/cups/tmp"}
    assert layout.UNITS[cups_clean.CLEAN_UNIT][1] == ""  # started on demand only


def test_cups_clean_step_exposure_is_low():
    assert exposure(UNITS / "plus-kiosk-cups-clean.service") <= 1.5


def test_polkit_rule_lets_the_daemon_start_the_cups_clean_step_only():
    dukpy = pytest.importorskip("dukpy")
    manage = "org.freedesktop.systemd1.manage-units"
    cases = [
        (manage, "plus-kiosk", "plus-kiosk-cups-clean.service", "start"),
        (manage, "plus-kiosk", "plus-kiosk-cups-clean.service", "stop"),
        (manage, "plus-kiosk", "plus-kiosk-cups-clean.service", "enable"),
        (manage, "kiosk", "plus-kiosk-cups-clean.service", "start"),
        (manage, "kiosk-browser", "plus-kiosk-cups-clean.service", "start"),
        (manage, "plus-kiosk", "cups.service", "stop"),
        (manage, "plus-kiosk", "cups.service", "start"),
        (manage, "plus-kiosk", "plus-kiosk-cups-clean.service.d", "start"),
        (manage, "plus-kiosk", "plus-kiosk-browser@0123456789ab.service", "kill"),
    ]
    rule = (UNITS / "50-plus-kiosk.rules").read_text()
    answers = dukpy.evaljs(POLKIT_HARNESS % rule, cases=cases)
    assert answers == ["yes", None, None, None, None, None, None, None, "yes"]
