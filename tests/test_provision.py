"""kiosk-provision into an image tree: files, owners, modes; idempotence; --check; errors."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from kiosk_provision import cli, layout, system
from kiosk_provision.tree import Tree

from kiosk.config import bundled_config

ROOT = Path(__file__).resolve().parent.parent
PROVISION = [sys.executable, "-m", "kiosk_provision"]
CUPSD_CONF = """LogLevel warn
PageLogFormat
Listen localhost:631
Browsing Yes
<Location />
  Order allow,deny
  PreserveJobHistory Yes
</Location>
"""

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="provisioning chowns files: root only")


def seed_tree(root: Path) -> Path:
    """The few files of a Debian 12 image that provisioning builds on."""
    (root / "etc" / "cups").mkdir(parents=True)
    (root / "etc" / "os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n')
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n"
                                         "lp:x:7:7:lp:/var/spool/lpd:/usr/sbin/nologin\n"
                                         "proxy:x:13:13:proxy:/bin:/usr/sbin/nologin\n"
                                         # Debian's prometheus-node-exporter makes it
                                         "prometheus:x:105:107::/var/lib/prometheus:"
                                         "/usr/sbin/nologin\n")
    (root / "etc" / "group").write_text("root:x:0:\nlp:x:7:\nproxy:x:13:\nsudo:x:27:\n"
                                        "prometheus:x:107:\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\nlp:*:19000:0:99999:7:::\n"
                                         "proxy:*:19000:0:99999:7:::\n"
                                         "prometheus:!:19000::::::\n")
    (root / "etc" / "gshadow").write_text("root:*::\nlp:*::\nproxy:*::\nsudo:*::\n"
                                          "prometheus:!::\n")
    (root / "etc" / "cups" / "cupsd.conf").write_text(CUPSD_CONF)
    return root


def site_file(tmp_path: Path, **replace: str) -> Path:
    text = bundled_config().read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def provision(root: Path, site: Path, *extra: str, lang: str = "en") -> subprocess.CompletedProcess:
    return subprocess.run([*PROVISION, "--site", str(site), "--root", str(root), "--lang", lang,
                           *extra], capture_output=True, text=True, timeout=120)


def snapshot(root: Path) -> dict[str, tuple]:
    state = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else \
            (os.readlink(path) if path.is_symlink() else None)
        state[str(path.relative_to(root))] = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid,
                                              content)
    return state


def ids(root: Path, table: str) -> dict[str, list[str]]:
    return {line.split(":")[0]: line.split(":")
            for line in (root / "etc" / table).read_text().splitlines()}


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("provisioned")
    root = seed_tree(tmp / "root")
    site = site_file(tmp)
    first = provision(root, site)
    assert first.returncode == 0, first.stderr
    return root, site, first


def owner(root: Path, path: str) -> tuple[str, str, int]:
    st = (root / path.lstrip("/")).stat()
    users = {int(f[2]): name for name, f in ids(root, "passwd").items()}
    groups = {int(f[2]): name for name, f in ids(root, "group").items()}
    return users[st.st_uid], groups[st.st_gid], stat.S_IMODE(st.st_mode)


def test_users_resident_without_sudo_and_daemon_in_the_resident_group(provisioned):
    root, _, _ = provisioned
    passwd, group, shadow = ids(root, "passwd"), ids(root, "group"), ids(root, "shadow")
    kiosk_gid = group["kiosk"][2]
    assert passwd["kiosk"][3] == kiosk_gid and passwd["kiosk"][5:] == ["/home/kiosk",
                                                                       "/usr/sbin/nologin"]
    assert passwd["plus-kiosk"][3] == kiosk_gid and passwd["plus-kiosk"][6] == "/usr/sbin/nologin"
    assert int(passwd["kiosk"][2]) < 1000 and int(passwd["plus-kiosk"][2]) < 1000
    assert shadow["kiosk"][1].startswith("!") and shadow["plus-kiosk"][1].startswith("!")
    assert "plus-kiosk" in group["scanner"][3].split(",")
    assert "kiosk" not in group["sudo"][3].split(",")
    # Never the host's: the tree's users only.
    assert subprocess.run(["getent", "passwd", "plus-kiosk"], capture_output=True).returncode != 0


def test_files_owners_and_modes(provisioned):
    root, site, _ = provisioned
    assert owner(root, "/etc/plus-kiosk") == ("root", "kiosk", 0o750)
    assert owner(root, "/etc/plus-kiosk/kiosk.toml") == ("root", "kiosk", 0o640)
    assert (root / "etc/plus-kiosk/kiosk.toml").read_text() == site.read_text()
    assert owner(root, "/etc/plus-kiosk/agent-token") == ("root", "root", 0o600)
    assert len((root / "etc/plus-kiosk/agent-token").read_text().strip()) >= 40
    for unit in layout.UNITS:
        assert owner(root, f"/etc/systemd/system/{unit}") == ("root", "root", 0o644)
        assert (root / "etc/systemd/system" / unit).read_text() == \
            (ROOT / "systemd" / unit).read_text()
    assert owner(root, "/opt/plus-kiosk/libexec/xsession") == ("root", "root", 0o755)
    assert owner(root, "/etc/polkit-1/rules.d/50-plus-kiosk.rules") == ("root", "root", 0o644)
    assert (root / "etc/udev/rules.d/90-plus-kiosk-usb-storage.rules").is_file()
    assert not (root / "etc/plus-kiosk/printer.env").exists()  # the bundled site has no URI


def test_units_enabled_and_escape_hatches_masked(provisioned):
    root, _, _ = provisioned
    units = root / "etc/systemd/system"
    for wants, unit in [("multi-user.target.wants", "plus-kiosk-daemon.service"),
                        ("multi-user.target.wants", "plus-kiosk-wipe.service"),
                        ("multi-user.target.wants", "plus-kiosk-shell.service"),
                        ("local-fs.target.wants", "home-kiosk.mount")]:
        assert os.readlink(units / wants / unit) == f"/etc/systemd/system/{unit}"
    assert os.readlink(units / "getty@tty1.service") == "/dev/null"
    assert os.readlink(units / "ctrl-alt-del.target") == "/dev/null"
    assert not (units / "multi-user.target.wants" / "plus-kiosk-browser@.service").exists()
    assert "kernel.sysrq = 0" in (root / "etc/sysctl.d/90-plus-kiosk.conf").read_text()
    xorg = (root / "etc/X11/xorg.conf.d/10-plus-kiosk.conf").read_text()
    assert '"DontVTSwitch" "true"' in xorg and '"DontZap" "true"' in xorg
    assert '"BlankTime" "0"' in xorg
    assert "NAutoVTs=0" in (root / "etc/systemd/logind.conf.d/plus-kiosk.conf").read_text()
    assert "CtrlAltDelBurstAction=none" in \
        (root / "etc/systemd/system.conf.d/plus-kiosk.conf").read_text()
    assert "consoleblank=0" in (root / "etc/default/grub.d/plus-kiosk.cfg").read_text()


def test_cups_keeps_nothing_of_the_residents(provisioned):
    root, _, _ = provisioned
    conf = (root / "etc/cups/cupsd.conf").read_text()
    top = [line for line in conf.splitlines() if line and not line.startswith((" ", "#", "<"))]
    assert "PreserveJobHistory No" in top and "PreserveJobFiles No" in top
    assert "PageLogFormat" in top and "Browsing No" in top and "Browsing Yes" not in conf
    assert "  PreserveJobHistory Yes" in conf  # inside a section: not ours to touch
    assert "Listen localhost:631" in conf


def test_second_run_changes_nothing_and_says_so(provisioned):
    root, site, _ = provisioned
    before = snapshot(root)
    again = provision(root, site)
    assert again.returncode == 0, again.stderr
    assert "Nothing to do" in again.stdout
    assert snapshot(root) == before  # the agent token too: made once


def test_check_on_the_result_reports_nothing_to_do(provisioned):
    root, site, _ = provisioned
    check = provision(root, site, "--check", lang="fr")
    assert check.returncode == 0, check.stderr
    assert "Rien à faire" in check.stdout


def test_check_on_a_fresh_tree_lists_changes_and_changes_nothing(tmp_path):
    root = seed_tree(tmp_path / "root")
    before = snapshot(root)
    check = provision(root, site_file(tmp_path), "--check")
    assert check.returncode == 1, check.stderr
    assert "useradd --system kiosk" in check.stdout
    assert "+ /etc/systemd/system/plus-kiosk-daemon.service" in check.stdout
    assert "+ /etc/plus-kiosk/firewall.nft" in check.stdout
    assert re.search(r"\d+ change\(s\) would be made", check.stdout)
    assert snapshot(root) == before


def test_site_changes_are_applied_and_only_they(tmp_path):
    root = seed_tree(tmp_path / "root")
    assert provision(root, site_file(tmp_path)).returncode == 0
    token = (root / "etc/plus-kiosk/agent-token").read_text()
    with socket.socket() as printer:  # something that answers like a network printer
        printer.bind(("127.0.0.1", 0))
        printer.listen()
        uri = f"ipp://127.0.0.1:{printer.getsockname()[1]}/ipp/print"
        site = site_file(tmp_path, **{'usb_storage = "refuse"': 'usb_storage = "allow"',
                                      'queue = "plus"': f'queue = "plus"\ndevice_uri = "{uri}"'})
        result = provision(root, site)
    assert result.returncode == 0, result.stderr
    changed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert changed == {"/etc/plus-kiosk/kiosk.toml", "/etc/plus-kiosk/printer.env",
                       "/etc/udev/rules.d/90-plus-kiosk-usb-storage.rules"}
    assert not (root / "etc/udev/rules.d/90-plus-kiosk-usb-storage.rules").exists()
    assert f"KIOSK_DEVICE_URI={uri}\n" in (root / "etc/plus-kiosk/printer.env").read_text()
    assert (root / "etc/plus-kiosk/agent-token").read_text() == token


def test_firewall_rules_installed_for_the_tree_users_and_valid(provisioned):
    root, _, _ = provisioned
    assert owner(root, "/etc/plus-kiosk/firewall.nft") == ("root", "root", 0o644)
    rules = (root / "etc/plus-kiosk/firewall.nft").read_text()
    kiosk_uid, proxy_uid = ids(root, "passwd")["kiosk"][2], ids(root, "passwd")["proxy"][2]
    assert f"meta skuid {{ {kiosk_uid}, " in rules    # the browser's own user beside it
    assert f"meta skuid {proxy_uid} accept" in rules
    if shutil.which("nft") and shutil.which("unshare"):   # checked, never loaded here
        check = subprocess.run(["unshare", "--net", "nft", "-c", "-f",
                                str(root / "etc/plus-kiosk/firewall.nft")],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def test_proxy_and_firewall_units_enabled_and_debian_squid_masked(provisioned):
    root, _, _ = provisioned
    units = root / "etc/systemd/system"
    for wants, unit in [("sysinit.target.wants", "plus-kiosk-firewall.service"),
                        ("multi-user.target.wants", "plus-kiosk-proxy.service"),
                        ("paths.target.wants", "plus-kiosk-proxy-reload.path")]:
        assert os.readlink(units / wants / unit) == f"/etc/systemd/system/{unit}"
    assert os.readlink(units / "squid.service") == "/dev/null"
    assert not (units / "multi-user.target.wants" / "plus-kiosk-proxy-reload.service").exists()


def test_a_new_proxy_port_rewrites_the_firewall(tmp_path):
    root = seed_tree(tmp_path / "root")
    assert provision(root, site_file(tmp_path)).returncode == 0
    result = provision(root, site_file(tmp_path, **{'listen = "127.0.0.1:3128"':
                                                    'listen = "127.0.0.1:3129"'}))
    assert result.returncode == 0, result.stderr
    changed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert changed == {"/etc/plus-kiosk/kiosk.toml", "/etc/plus-kiosk/firewall.nft"}
    assert "tcp dport 3129" in (root / "etc/plus-kiosk/firewall.nft").read_text()


def test_running_terminal_loads_the_firewall_first_and_follows_the_site(monkeypatch):
    """What apply_running asks systemd, in order (a stand-in for the commands)."""
    commands: list[str] = []
    monkeypatch.setattr(system, "run", lambda command, what: commands.append(" ".join(command)))
    monkeypatch.setattr(system, "systemd_running", lambda: True)
    system.apply_running(Tree(Path("/")), {"units", "firewall", "squid", "proxy", "daemon"})
    assert commands.index("systemctl reload-or-restart plus-kiosk-firewall.service") \
        < commands.index("systemctl stop squid.service") \
        < commands.index("systemctl restart plus-kiosk-proxy.service "
                         "plus-kiosk-proxy-reload.path") \
        < commands.index("systemctl restart plus-kiosk-daemon.service")
    commands.clear()
    system.apply_running(Tree(Path("/")), {"units", "proxy-config", "daemon", "screen"})
    assert "systemctl reload-or-restart plus-kiosk-proxy.service" in commands
    assert not [c for c in commands if "firewall" in c or "squid.service" in c]



# -- users apart (issue #12, item 7) ----------------------------------------------------------

def test_the_browser_has_its_own_locked_user_in_the_resident_group(provisioned):
    """Before: no kiosk-browser; the browser ran as the shell's user."""
    root, _, _ = provisioned
    passwd, group, shadow = ids(root, "passwd"), ids(root, "group"), ids(root, "shadow")
    browser = passwd["kiosk-browser"]
    assert browser[3] == group["kiosk"][2]       # writes the session's downloads
    assert browser[5:] == ["/nonexistent", "/usr/sbin/nologin"]
    assert not (root / "nonexistent").exists() and int(browser[2]) < 1000
    assert shadow["kiosk-browser"][1].startswith("!")  # locked
    assert browser[2] not in {passwd[name][2] for name in ("kiosk", "plus-kiosk")}
    assert not [g for g in ("sudo", "scanner") if "kiosk-browser" in group[g][3].split(",")]
    assert "+SI:localuser:kiosk-browser" in \
        (root / "opt/plus-kiosk/libexec/xsession").read_text()   # its window on the screen


def test_the_agent_pin_is_roots_alone_and_never_overwritten(provisioned, tmp_path):
    """Before: the hash was [agent] pin_hash in kiosk.toml, readable by group kiosk."""
    root, site, _ = provisioned
    assert owner(root, "/etc/plus-kiosk/agent-pin") == ("root", "root", 0o600)
    assert "pin_hash" not in (root / "etc/plus-kiosk/kiosk.toml").read_text()
    pin = root / "etc/plus-kiosk/agent-pin"
    before = pin.read_text()
    try:
        pin.write_text("pbkdf2_sha256$1000$c2FsdA==$ZGlnZXN0\n")   # kioskctl pin-hash's
        again = provision(root, site)
        assert again.returncode == 0 and "Nothing to do" in again.stdout, again.stderr
        assert pin.read_text() == "pbkdf2_sha256$1000$c2FsdA==$ZGlnZXN0\n"
    finally:
        pin.write_text(before)


def test_the_firewall_holds_the_browsers_user_and_the_shells(provisioned):
    """Before: only the shell's uid: a browser with its own user would have gone round it."""
    root, _, _ = provisioned
    rules = (root / "etc/plus-kiosk/firewall.nft").read_text()
    passwd = ids(root, "passwd")
    users = "{ " + passwd["kiosk"][2] + ", " + passwd["kiosk-browser"][2] + " }"
    assert f"meta skuid {users} ip daddr 127.0.0.1 tcp dport 3128" in rules
    assert f"meta skuid {users} meta l4proto tcp" in rules


@pytest.mark.parametrize("replace, expected", [
    ({"[proxy]\n": '[browser]\nuser = "nobody"\n\n[proxy]\n'},
     "[browser] user must be 'kiosk-browser'"),
    ({'shell_user = "kiosk" ': 'shell_user = "someone" '}, "shell_user must be 'kiosk'"),
    ({"[proxy]\n": '[agent]\npin_file = "/tmp/pin"\n\n[proxy]\n'},
     "[agent] pin_file must be '/etc/plus-kiosk/agent-pin'"),
])
def test_error_site_file_moving_the_users_or_the_pin(tmp_path, capsys, replace, expected):
    code, output = run_in_process(capsys, "--site", str(site_file(tmp_path, **replace)),
                                  "--root", str(seed_tree(tmp_path / "root")))
    assert code == 2 and expected in output, output

# -- clear errors ------------------------------------------------------------------------

def run_in_process(capsys, *argv: str) -> tuple[int, str]:
    code = cli.main(["--lang", "en", *argv])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_error_not_root(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    code, output = run_in_process(capsys, "--site", str(site_file(tmp_path)),
                                  "--root", str(seed_tree(tmp_path / "root")))
    assert code == 2 and "must run as root" in output


def test_error_not_debian(tmp_path, capsys):
    root = seed_tree(tmp_path / "root")
    (root / "etc/os-release").write_text('ID=fedora\nPRETTY_NAME="Fedora Linux 40"\n')
    code, output = run_in_process(capsys, "--site", str(site_file(tmp_path)), "--root", str(root))
    assert code == 2 and "not Debian (Fedora Linux 40)" in output
    assert not (root / "etc/plus-kiosk").exists()


def test_error_missing_site_file(tmp_path, capsys):
    code, output = run_in_process(capsys, "--site", str(tmp_path / "nowhere.toml"),
                                  "--root", str(seed_tree(tmp_path / "root")))
    assert code == 2 and f"site file {tmp_path / 'nowhere.toml'} does not exist" in output


def test_error_site_file_unfit_for_the_units(tmp_path, capsys):
    site = site_file(tmp_path, **{'data_dir = "/var/lib/plus-kiosk"': 'data_dir = "/srv/kiosk"'})
    code, output = run_in_process(capsys, "--site", str(site),
                                  "--root", str(seed_tree(tmp_path / "root")))
    assert code == 2 and "data_dir must be '/var/lib/plus-kiosk'" in output


def test_error_site_file_without_the_proxy(tmp_path, capsys):
    site = site_file(tmp_path, **{'listen = "127.0.0.1:3128"': 'listen = ""'})
    root = seed_tree(tmp_path / "root")
    code, output = run_in_process(capsys, "--site", str(site), "--root", str(root))
    assert code == 2 and "[proxy] listen cannot be empty" in output
    assert not (root / "etc/plus-kiosk").exists()


def test_error_tree_without_squids_user(tmp_path, capsys):
    root = seed_tree(tmp_path / "root")
    for table in ("passwd", "shadow"):
        path = root / "etc" / table
        path.write_text("".join(line + "\n" for line in path.read_text().splitlines()
                                if not line.startswith("proxy:")))
    code, output = run_in_process(capsys, "--site", str(site_file(tmp_path)), "--root", str(root))
    assert code == 2 and "The user proxy, whom Squid runs as, does not exist" in output


def test_error_invalid_site_file_names_the_line(tmp_path, capsys):
    site = site_file(tmp_path, **{"print_quota_pages = 20": "print_quota = 20"})
    code, output = run_in_process(capsys, "--site", str(site),
                                  "--root", str(seed_tree(tmp_path / "root")))
    assert code == 2 and "session.print_quota" in output and "print_quota_pages" in output


def test_error_printer_that_does_not_answer(tmp_path, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    site = site_file(tmp_path, **{'queue = "plus"':
                                  f'queue = "plus"\ndevice_uri = "ipp://127.0.0.1:{port}/ipp"'})
    root = seed_tree(tmp_path / "root")
    code, output = run_in_process(capsys, "--site", str(site), "--root", str(root))
    assert code == 2 and f"printer ipp://127.0.0.1:{port}/ipp does not answer" in output
    assert not (root / "etc/plus-kiosk").exists()


def test_local_printer_backends_are_not_probed(cupsd):
    from kiosk_provision import site
    site.check_printer("cups-pdf:/")
    site.check_printer("usb://HP/LaserJet?serial=1")
    assert site.printer_address("ipps://printer.local/ipp/print") == ("printer.local", 631)
    assert site.printer_address("socket://10.0.0.5") == ("10.0.0.5", 9100)


# -- consistency ---------------------------------------------------------------------------

def test_terminal_packages_include_what_the_kiosk_runs_on():
    makefile = (ROOT / "Makefile").read_text()
    run_debs = re.search(r"^RUN_DEBS\s*:=(.*?)\n\S", makefile, re.S | re.M).group(1)
    wanted = set(run_debs.replace("\\", " ").split()) - {"printer-driver-cups-pdf"}
    assert wanted <= set(system.PACKAGES)
    assert "printer-driver-cups-pdf" not in system.PACKAGES  # it would offer a PDF "printer"


def test_session_script_is_valid_shell_and_hands_over_the_watchdog():
    script = ROOT / "provisioning/kiosk_provision/files/xsession"
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    text = script.read_text()
    assert "WATCHDOG_PID=$$" in text and "exec /opt/plus-kiosk/venv/bin/kiosk-shell" in text


def test_every_provisioning_message_is_translated():
    from babel.messages.extract import extract_from_dir
    from babel.messages.pofile import read_po
    messages = {m for _, _, m, _, _ in extract_from_dir(
        str(ROOT / "provisioning"), method_map=[("**.py", "python")], keywords={"_": None})}
    assert len(messages) > 15
    for language in ("fr", "gcf"):
        catalog = read_po((ROOT / f"kiosk/locale/{language}/LC_MESSAGES/kiosk.po").open("rb"))
        missing = [m for m in messages if not (catalog.get(m) and catalog.get(m).string)]
        assert not missing, f"{language}: {missing}"


def test_cups_copies_folder_in_memory_and_the_clean_step_installed(provisioned):
    """Issue #13: CUPS's temporary folder is a tmpfs mounted at boot; the root step that
    empties it is installed, started on demand only (by the wipe, through polkit)."""
    root, _, _ = provisioned
    units = root / "etc/systemd/system"
    mount, step = "var-spool-cups-tmp.mount", "plus-kiosk-cups-clean.service"
    for name in (mount, step):
        assert owner(root, f"/etc/systemd/system/{name}") == ("root", "root", 0o644)
        assert (units / name).read_text() == (ROOT / "systemd" / name).read_text()
    assert os.readlink(units / "local-fs.target.wants" / mount) == f"/etc/systemd/system/{mount}"
    assert not list(units.glob(f"*.wants/{step}"))
    rule = (root / "etc/polkit-1/rules.d/50-plus-kiosk.rules").read_text()
    assert 'action.lookup("unit") == "plus-kiosk-cups-clean.service"' in rule
    conf = (root / "etc/cups/cupsd.conf").read_text()  # the directives stay
    assert all(f"{key} {value}".strip() in conf for key, value in layout.CUPSD_DIRECTIVES.items())


def test_node_exporter_serves_the_daemons_textfile_on_the_sites_address(provisioned, tmp_path):
    root, _, _ = provisioned
    assert "prometheus-node-exporter" in system.PACKAGES
    # The daemon writes (owner), node_exporter reads (group, inherited by the daemon's
    # 0640 files through setgid); the resident's users neither.
    assert owner(root, "/var/lib/prometheus/node-exporter") == ("plus-kiosk", "prometheus",
                                                               0o2750)
    assert ids(root, "group")["prometheus"][3] == ""
    defaults = (root / "etc/default/prometheus-node-exporter").read_text()
    assert 'ARGS="--web.listen-address=127.0.0.1:9100 ' \
        '--collector.textfile.directory=/var/lib/prometheus/node-exporter"' in defaults
    wants = root / "etc/systemd/system/multi-user.target.wants/prometheus-node-exporter.service"
    assert os.readlink(wants) == "/lib/systemd/system/prometheus-node-exporter.service"
    unit = (ROOT / "systemd" / "plus-kiosk-daemon.service").read_text()
    assert "ReadWritePaths=-/var/lib/prometheus/node-exporter\n" in unit
    # The agents' network address, from the site file; "" turns the kiosk's metrics off.
    site = site_file(tmp_path, **{'textfile = "/var/lib/prometheus/node-exporter/plus_kiosk.prom"':
                                  'textfile = ""\nlisten = "192.168.10.20:9100"'})
    again = provision(root, site)
    assert again.returncode == 0, again.stderr
    assert (root / "etc/default/prometheus-node-exporter").read_text().endswith(
        'ARGS="--web.listen-address=192.168.10.20:9100"\n')
    assert "prometheus-node-exporter" in again.stdout


def test_node_exporter_everywhere_is_refused(tmp_path, capsys):
    site = site_file(tmp_path, **{'textfile = "/var/lib/prometheus/node-exporter/plus_kiosk.prom"':
                                  'textfile = ""\nlisten = ":9100"'})
    result = provision(seed_tree(tmp_path / "root"), site)
    assert result.returncode != 0 and "monitoring.listen" in result.stderr + result.stdout


def test_a_tree_without_node_exporters_user_is_told_not_broken(tmp_path):
    root = seed_tree(tmp_path / "root")
    for table in ("passwd", "group", "shadow", "gshadow"):
        path = root / "etc" / table
        path.write_text("".join(line + "\n" for line in path.read_text().splitlines()
                                if not line.startswith("prometheus:")))
    result = provision(root, site_file(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "prometheus" in result.stdout and not (root / "var/lib/prometheus").exists()
