"""The daemon's side of the units: the browser as a unit (against a stand-in systemctl),
the boot wipe (--wipe-only), the agent token from LoadCredential=, the shell's heartbeat."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kiosk import config as site_config
from kiosk import processes
from kiosk.daemon import server
from kiosk.shell import heartbeat

# A systemctl that keeps unit states in a JSON file and logs every call.
FAKE_SYSTEMCTL = textwrap.dedent('''\
    #!{python}
    import json, sys, os
    from pathlib import Path
    state_file = Path({state!r})
    state = json.loads(state_file.read_text()) if state_file.exists() else {{}}
    args = sys.argv[1:]
    with open({log!r}, "a") as log:
        log.write(json.dumps(args) + "\\n")
    verb = args[0]
    if verb == "start":
        unit = args[1]
        env = Path({env_dir!r}) / (unit.split("@")[1].split(".")[0] + ".env")
        state[unit] = {{"active": True, "pid": 4242 + len(state), "env": env.read_text()}}
    elif verb == "stop" and not os.environ.get("STUBBORN"):
        names = [a for a in args[1:] if not a.startswith("-")]
        for unit in list(state):
            if any(unit == n or (n.endswith("*.service") and unit.startswith(n[:-9]))
                   for n in names):
                state[unit]["active"] = False
    elif verb == "show":
        print(state[args[-1]]["pid"])
    elif verb == "is-active":
        for unit in args[1:]:
            print("active" if state.get(unit, {{}}).get("active") else "inactive")
    elif verb == "list-units":
        for unit, value in state.items():
            if value["active"]:
                print(unit + " loaded active running PLUS kiosk browser")
    state_file.write_text(json.dumps(state))
''')


@pytest.fixture
def units(tmp_path):
    state, log, env_dir = tmp_path / "units.json", tmp_path / "calls.log", tmp_path / "run"
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(FAKE_SYSTEMCTL.format(python=sys.executable, state=str(state),
                                               log=str(log), env_dir=str(env_dir)))
    systemctl.chmod(0o755)
    launcher = processes.BrowserUnits(tmp_path / "state" / "processes.json", env_dir,
                                      systemctl=str(systemctl))
    launcher.calls = lambda: [json.loads(line) for line in log.read_text().splitlines()]
    launcher.units = lambda: json.loads(state.read_text())
    return launcher


def session_env(tmp_path: Path) -> dict[str, str]:
    dirs = {}
    for name in ("downloads", "scans", "browser"):
        (tmp_path / "session" / name).mkdir(parents=True, exist_ok=True, mode=0o750)
        dirs[name] = str(tmp_path / "session" / name)
    return {"PATH": "/usr/bin", "SECRET_OF_THE_DAEMON": "x", "KIOSK_LANGUAGE": "gcf",
            "KIOSK_DAEMON_SOCKET": "/run/plus-kiosk/daemon.sock",
            "KIOSK_DOWNLOADS_DIR": dirs["downloads"], "KIOSK_SCANS_DIR": dirs["scans"],
            "KIOSK_BROWSER_DIR": dirs["browser"], "KIOSK_BROWSER_CONTROL": "plus-kiosk-ab"}


def test_browser_starts_as_a_unit_with_only_the_session_values(units, tmp_path):
    env = session_env(tmp_path)
    pid = units.spawn(["kiosk-browser", "--url", "https://www.caf.fr/", "--config",
                       "/etc/plus-kiosk/kiosk.toml", "--geometry", "0,80,1280,720"], env=env)
    assert pid == 4242
    (unit, record), = units.units().items()
    assert unit.startswith("plus-kiosk-browser@") and unit.endswith(".service")
    assert record["env"].splitlines() == [
        "KIOSK_URL='https://www.caf.fr/'", "KIOSK_SITE_FILE='/etc/plus-kiosk/kiosk.toml'",
        "KIOSK_GEOMETRY='0,80,1280,720'", "KIOSK_LANGUAGE='gcf'",
        "KIOSK_DAEMON_SOCKET='/run/plus-kiosk/daemon.sock'",
        f"KIOSK_DOWNLOADS_DIR='{env['KIOSK_DOWNLOADS_DIR']}'",
        f"KIOSK_SCANS_DIR='{env['KIOSK_SCANS_DIR']}'",
        f"KIOSK_BROWSER_DIR='{env['KIOSK_BROWSER_DIR']}'", "KIOSK_BROWSER_CONTROL='plus-kiosk-ab'"]
    assert not list((tmp_path / "run").iterdir())  # the address does not stay on disk
    # The resident's browser writes downloads; scans stay read-only to it.
    assert os.stat(env["KIOSK_DOWNLOADS_DIR"]).st_mode & 0o777 == 0o770
    assert os.stat(env["KIOSK_SCANS_DIR"]).st_mode & 0o777 == 0o750
    assert units.pids() == [4242]
    units.stop(4242)
    assert units.pids() == [] and ["stop", unit] in units.calls()


def test_the_shells_user_is_kept_out_of_what_the_browser_writes(units, tmp_path):
    """The shell shares the browser's group (the daemon's socket), not its folders."""
    from kiosk.keepout import refused_uids
    env = {**session_env(tmp_path), "KIOSK_KEEP_OUT_UIDS": "4343"}
    units.spawn(["kiosk-browser", "--url", "https://www.caf.fr/"], env=env)
    assert refused_uids(env["KIOSK_DOWNLOADS_DIR"]) == [4343]
    assert refused_uids(env["KIOSK_BROWSER_DIR"]) == [4343]
    assert os.stat(env["KIOSK_DOWNLOADS_DIR"]).st_mode & 0o777 == 0o770


def test_wipe_stops_every_browser_unit_even_unrecorded_ones(units, tmp_path):
    units.spawn(["kiosk-browser", "--url", "https://www.caf.fr/"], env=session_env(tmp_path))
    (unit,) = units.units()
    units.state_file.unlink()  # a daemon that lost its bookkeeping
    units.wipe()
    assert ["stop", unit] in units.calls()  # found by listing plus-kiosk-browser@*.service
    assert units.leftovers() == []
    assert not any(value["active"] for value in units.units().values())


def test_a_unit_that_will_not_stop_is_a_leftover(units, tmp_path, monkeypatch):
    units.spawn(["kiosk-browser", "--url", "https://www.caf.fr/"], env=session_env(tmp_path))
    monkeypatch.setenv("STUBBORN", "1")
    units.wipe()
    leftovers = units.leftovers()
    assert len(leftovers) == 1 and leftovers[0].endswith(".service still running")


def test_a_failed_start_is_an_oserror_for_the_api(units, tmp_path):
    units.systemctl = "/bin/false"
    with pytest.raises(OSError):
        units.spawn(["kiosk-browser", "--url", "https://www.caf.fr/"], env=session_env(tmp_path))
    assert not list((tmp_path / "run").iterdir())


def test_a_quote_cannot_reach_the_environment_file(units, tmp_path):
    with pytest.raises(OSError):
        units.spawn(["kiosk-browser", "--url", "https://x.fr/'\nKIOSK_URL=evil"],
                    env=session_env(tmp_path))


def test_launcher_choice(tmp_path, monkeypatch):
    state = tmp_path / "p.json"
    assert type(processes.for_launcher("direct", state)) is processes.SessionProcesses
    assert type(processes.for_launcher("auto", state)) is processes.SessionProcesses  # no unit
    monkeypatch.setenv("RUNTIME_DIRECTORY", str(tmp_path / "rt"))
    chosen = processes.for_launcher("systemd", state)
    assert isinstance(chosen, processes.BrowserUnits) and chosen.env_dir == tmp_path / "rt/browser"
    assert site_config.load().browser.launcher == "auto"


def test_wipe_only_cleans_the_data_dir_and_exits(tmp_path, monkeypatch):
    monkeypatch.setenv("CUPS_SERVER", str(tmp_path / "no-cups.sock"))
    data = tmp_path / "data"
    (data / "sessions" / "old" / "downloads").mkdir(parents=True)
    (data / "sessions" / "old" / "downloads" / "avis-impot.pdf").write_text("secret")
    site = tmp_path / "site.toml"
    site.write_text(site_config.bundled_config().read_text().replace(
        'x_display = ":0"', 'x_display = ""'))
    result = subprocess.run([sys.executable, "-m", "kiosk.daemon.server", "--config", str(site),
                             "--data-dir", str(data), "--socket", str(tmp_path / "d.sock"),
                             "--wipe-only"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not list(data.rglob("*.pdf")) and not (data / "sessions" / "old").exists()
    assert not (tmp_path / "d.sock").exists()  # no socket: nobody could connect


def test_agent_token_comes_from_the_credentials_directory(tmp_path, monkeypatch):
    (tmp_path / "agent-token").write_text("s3cret\n")
    config = site_config.load()
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert server._with_credentials(config) is config
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    moved = server._with_credentials(config)
    assert moved.daemon.agent_token_file == str(tmp_path / "agent-token")
    assert moved.source == config.source and moved.portal == config.portal


class FakeClock:
    def __init__(self):
        self.once, self.every = [], []

    def schedule_once(self, callback, delay):
        self.once.append(callback)

    def schedule_interval(self, callback, interval):
        self.every.append((callback, interval))


def test_shell_heartbeat_is_a_clock_callback(tmp_path, monkeypatch):
    address = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(address)
        systemd.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", address)
        monkeypatch.setenv("WATCHDOG_USEC", "30000000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        clock = FakeClock()
        assert heartbeat.install(clock) == 15.0
        (ready,), ((beat, interval),) = clock.once, clock.every
        assert interval == 15.0
        ready(0)
        beat(15.0)
        assert [systemd.recv(64), systemd.recv(64)] == [b"READY=1", b"WATCHDOG=1"]


def test_no_heartbeat_outside_systemd(monkeypatch):
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)
    clock = FakeClock()
    assert heartbeat.install(clock) is None and clock.every == []
