"""Real components for the daemon's tests: a private cupsd, Xvfb, a running daemon.

Nothing here is a stand-in: cupsd prints through the cups-pdf backend into a
temporary directory, Xvfb holds a real clipboard, and the daemon is the
installed ``kiosk-daemon`` listening on its Unix socket.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cups

from kiosk.daemon_client import DaemonClient, DaemonError

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "kiosk" / "sites" / "espace-sud.toml"
CUPS_PDF_PPD = Path("/usr/share/ppd/cups-pdf/CUPS-PDF_opt.ppd")


def terminate(process: subprocess.Popen | None, timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if the program has not ended within ``timeout``."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Cupsd:
    root: Path
    instance: str
    process: subprocess.Popen | None = None

    @property
    def socket(self) -> str:
        return str(self.root / "cups.sock")

    @property
    def output(self) -> Path:
        return self.root / "pdf"

    @property
    def spool(self) -> Path:
        return self.root / "spool"

    @property
    def instance_conf(self) -> Path:
        return Path(f"/etc/cups/cups-pdf-{self.instance}.conf")

    @property
    def temp(self) -> Path:
        return self.spool / "tmp"  # TempDir: where the filters write their copies

    @property
    def pid_file(self) -> Path:
        return self.root / "cupsd.pid"

    @property
    def cleanup_command(self) -> list[str]:
        """``[printing] cleanup_command`` for this cupsd: the kiosk's own cleaning step,
        with cupsd stopped and started again in place (same socket) — tests/cupsd_clean.py."""
        return [sys.executable, str(Path(__file__).with_name("cupsd_clean.py")), str(self.root)]

    def launch(self, detach: bool = False) -> subprocess.Popen:
        """cupsd on this root's configuration; its pid in ``pid_file`` (the cleanup
        command restarts it from another process)."""
        Path(self.socket).unlink(missing_ok=True)
        process = subprocess.Popen(
            ["cupsd", "-f", "-c", str(self.root / "cupsd.conf"), "-s",
             str(self.root / "cups-files.conf")], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=detach)
        self.pid_file.write_text(f"{process.pid}\n")
        wait_for(lambda: os.path.exists(self.socket), what="cupsd socket")
        return process

    def start(self) -> "Cupsd":
        for name in ("spool/tmp", "cache", "state", "log", "pdf", "ppd"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        (self.root / "cupsd.conf").write_text(
            f"Listen {self.socket}\nLogLevel info\nBrowsing Off\nWebInterface No\n"
            "DefaultAuthType None\nPreserveJobHistory Yes\nPreserveJobFiles No\n"
            "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
            "<Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n")
        (self.root / "cups-files.conf").write_text(
            f"ServerRoot {self.root}\nRequestRoot {self.spool}\nTempDir {self.spool}/tmp\n"
            f"CacheDir {self.root}/cache\nStateDir {self.root}/state\n"
            f"ErrorLog {self.root}/log/error_log\nAccessLog {self.root}/log/access_log\n"
            f"PageLog {self.root}/log/page_log\n")
        # cups-pdf reads its per-instance settings from /etc/cups, whoever runs cupsd.
        self.instance_conf.write_text(f"Out {self.output}\nAnonDirName {self.output}\nLabel 0\n")
        self.process = self.launch()
        subprocess.run(["lpadmin", "-h", self.socket, "-p", "plus", "-E", "-v",
                        f"cups-pdf:/{self.instance}", "-P", str(CUPS_PDF_PPD)],
                       check=True, capture_output=True)
        return self

    def restart(self, sig: int = signal.SIGTERM) -> None:
        """cupsd stopped (SIGTERM) or killed (SIGKILL: nothing saved) and started again in
        place: same configuration and socket, the queue asserted again."""
        pid = int(self.pid_file.read_text())
        if self.process is not None and pid == self.process.pid:
            self.process.send_signal(sig)
            self.process.wait(timeout=20)
        else:
            os.kill(pid, sig)
            stop_pid(pid)
        if sig == signal.SIGKILL:  # as systemd does with a dead cupsd's cgroup: its filters
            for child in self.filters():
                stop_pid(child, sig=signal.SIGKILL)
        self.process = self.launch()
        subprocess.run(["lpadmin", "-h", self.socket, "-p", "plus", "-E", "-v",
                        f"cups-pdf:/{self.instance}", "-P", str(CUPS_PDF_PPD)],
                       check=True, capture_output=True)

    def filters(self) -> list[int]:
        """The filters and backend of this cupsd's jobs (each in its own process group)."""
        found = []
        for entry in Path("/proc").iterdir():
            try:
                if entry.name.isdigit() and f"cups-pdf:/{self.instance}\0".encode() in \
                        (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
        return found

    def add_unreachable_queue(self, name: str, port: int) -> None:
        """A network printer that does not answer (a closed port on loopback)."""
        subprocess.run(["lpadmin", "-h", self.socket, "-p", name, "-E", "-v",
                        f"socket://127.0.0.1:{port}", "-P", str(CUPS_PDF_PPD)],
                       check=True, capture_output=True)

    def connection(self) -> cups.Connection:
        cups.setServer(self.socket)
        return cups.Connection()

    def jobs(self, which: str = "all") -> dict[int, dict]:
        return self.connection().getJobs(which_jobs=which)

    def pause(self) -> None:
        self.connection().disablePrinter("plus")

    def resume(self) -> None:
        self.connection().enablePrinter("plus")

    def outputs(self) -> list[Path]:
        return sorted(self.output.glob("*.pdf"))

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
        try:  # the cupsd the cleanup command started in its place
            pid = int(self.pid_file.read_text())
        except (OSError, ValueError):
            pid = 0
        if pid and (self.process is None or pid != self.process.pid):
            stop_pid(pid)
        self.instance_conf.unlink(missing_ok=True)


def stop_pid(pid: int, timeout: float = 20.0, sig: int = signal.SIGTERM) -> None:
    """Signal a process that is not our child, and wait until it is gone (or a zombie)."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return

    def gone() -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
        except (OSError, IndexError):
            return True
    wait_for(gone, timeout=timeout, what=f"process {pid} to end")


@dataclass
class Xvfb:
    display: str
    process: subprocess.Popen

    @classmethod
    def start(cls) -> "Xvfb":
        for number in range(90, 140):
            if not Path(f"/tmp/.X11-unix/X{number}").exists() and \
                    not Path(f"/tmp/.X{number}-lock").exists():
                process = subprocess.Popen(["Xvfb", f":{number}", "-screen", "0", "1280x800x24",
                                            "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
                try:
                    wait_for(lambda n=number: Path(f"/tmp/.X11-unix/X{n}").exists(), timeout=10,
                             what="Xvfb")
                except AssertionError:
                    process.kill()
                    continue
                return cls(f":{number}", process)
        raise RuntimeError("no free X display")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


# A stand-in *browser* is still a real process: it ignores SIGTERM, so only
# the wipe's KILL can stop it, and it writes into the session's browser dir.
STUBBORN_BROWSER = """#!{python}
import os, signal, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = os.fork()
if child == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(1)
with open(os.path.join(os.environ["KIOSK_BROWSER_DIR"], "history.txt"), "w") as f:
    f.write("CANARY visited " + sys.argv[-1] + "\\n")
while True:
    time.sleep(1)
"""


@dataclass
class Daemon:
    root: Path
    cupsd: Cupsd
    display: str
    overrides: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def socket(self) -> Path:
        return self.root / "daemon.sock"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def token_file(self) -> Path:
        return self.root / "agent-token"

    @property
    def site_file(self) -> Path:
        return self.root / "site.toml"

    def write_site(self) -> None:
        browser = self.root / "browser"
        browser.write_text(STUBBORN_BROWSER.format(python=sys.executable))
        browser.chmod(0o755)
        values = {
            ("daemon", "socket"): f'"{self.socket}"', ("daemon", "socket_group"): '""',
            ("daemon", "data_dir"): f'"{self.data_dir}"',
            ("daemon", "agent_token_file"): f'"{self.token_file}"',
            ("daemon", "x_display"): f'"{self.display}"',
            ("scanning", "device"): '"test"',
            ("sharing", "listen"): '"127.0.0.1"', ("sharing", "port"): "0",
            ("printing", "cleanup_command"): json_list(self.cupsd.cleanup_command),
            ("records", "path"): f'"{self.root}/records.sqlite"',  # never the terminal's
            ("monitoring", "textfile"): '""',  # nor node_exporter's folder on this machine
        }
        for key, value in self.overrides.items():
            table, name = key.split(".")
            values[(table, name)] = value
        text, table = [], ""
        for line in SITE.read_text().splitlines():
            header = re.match(r"^\[+([a-z_]+)\]+", line)
            if header:
                table = header.group(1)
            match = re.match(r"^([a-z_]+) = ", line)
            if match and (table, match.group(1)) in values:
                line = f"{match.group(1)} = {values.pop((table, match.group(1)))}"
            text.append(line)
        text.append(f'\n[browser]\ncommand = ["{browser}"]')
        for table, name in [key for key in values if key[0] == "browser"]:  # one [browser]
            text.append(f"{name} = {values.pop((table, name))}")
        for (table, name), value in values.items():
            text.append(f"\n[{table}]\n{name} = {value}")
        self.site_file.write_text("\n".join(text) + "\n")
        self.token_file.write_text("agent-secret-token\n")
        self.token_file.chmod(0o600)

    def start(self) -> "Daemon":
        if not self.site_file.exists():
            self.write_site()
        self.log_path = self.root / "daemon.log"
        env = {**os.environ, "CUPS_SERVER": self.cupsd.socket, "LANGUAGE": "fr"}
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "kiosk-daemon"), "--config", str(self.site_file)],
            stdout=subprocess.DEVNULL, stderr=self.log_path.open("a"), env=env)

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError("daemon exited:\n" + self.log_path.read_text())
            try:
                return DaemonClient(self.socket, timeout=2).health() == {"status": "ok"}
            except DaemonError:
                return False

        wait_for(healthy, timeout=30, what="daemon health")
        return self

    def client(self, language: str | None = "fr") -> DaemonClient:
        return DaemonClient(self.socket, language=language)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        terminate(self.process, 20)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path else ""


def free_port() -> int:
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def require(*programs: str) -> None:
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        raise RuntimeError(f"missing programs {missing}: run `make test`, which installs them")


ARTIFACTS = ROOT / "test-artifacts"


def read_log(path: Path) -> list[dict]:
    """A JSON-lines record (the browser's audit log, the shell's record)."""
    from kiosk.browser.audit import read
    return read(path) if path.exists() else []


def wait_entry(path: Path, process: subprocess.Popen | None, stderr_log: Path, predicate,
               what: str, timeout: float, since: int) -> dict:
    """The newest entry of ``path`` after the first ``since`` that matches ``predicate``;
    fails at once, with the program's own output, if the program died meanwhile."""
    def found():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{process.args[0]} exited:\n" + stderr_log.read_text())
        return next((e for e in reversed(read_log(path)[since:]) if predicate(e)), None)
    return wait_for(found, timeout=timeout, what=what)


def screenshot(display: str, name: str) -> Path:
    """Keep what the screen shows (for people to look at) under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    subprocess.run(["import", "-display", display, "-window", "root", str(path)],
                   check=True, capture_output=True, timeout=30)
    return path


def click(display: str, x: int, y: int) -> None:
    # (no --sync: it waits forever when the pointer is already there)
    # Move there in two steps: a window that just appeared learns where the pointer is.
    subprocess.run(["xdotool", "mousemove", str(x + 3), str(y + 3), "sleep", "0.05",
                    "mousemove", str(x), str(y), "sleep", "0.05", "click", "1"],
                   env={**os.environ, "DISPLAY": display}, check=True, timeout=10)


def type_keys(display: str, *keys: str) -> None:
    subprocess.run(["xdotool", "key", *keys], env={**os.environ, "DISPLAY": display},
                   check=True, timeout=10)


def site_for_portal(root: Path, portal_url: str, proxy: str = "", allow: str = "portal.test",
                    **extra: str) -> Path:
    """A site file whose one portal is the fake portal on 127.0.0.1 (through the
    filtering proxy at ``proxy``, "host:port", when one is given; Squid needs the
    portal's port in the ``allow`` rule)."""
    lines = [
        "[site]", 'name = "Test"', 'commune = "Le Marin"', 'kind = "bus"', "",
        "[daemon]", f'socket = "{root}/daemon.sock"', f'data_dir = "{root}/data"', "",
        "[proxy]", f'listen = "{proxy}"', "",
        "[records]", f'path = "{root}/records.sqlite"', "",
        "[monitoring]", 'textfile = ""', "",
        "[filter]", "insecure_http = true  # the fake portals speak plain http", "",
        "[[portal]]", 'id = "test"', 'name = { fr = "Test", gcf = "Tès", en = "Test" }',
        f'start_url = "{portal_url}"', f'allow = ["{allow}"]',
    ]
    for key, value in extra.items():
        lines.insert(0, f"{key} = {value}")
    path = root / "site.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Browser:
    """A real ``kiosk-browser`` process on Xvfb, its audit log read back."""

    root: Path
    display: str
    site: Path
    url: str
    process: subprocess.Popen | None = None
    # Chromium maps every name to 127.0.0.1 itself; off when a proxy must do it.
    resolve_names: bool = True
    control: str = field(default_factory=lambda: f"@plus-kiosk-browser-test-{os.getpid()}-"
                                                 f"{time.monotonic_ns()}")

    @property
    def audit_path(self) -> Path:
        return self.root / "audit.jsonl"

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    def start(self, geometry: str = "0,0,1280,800") -> "Browser":
        self.downloads.mkdir(exist_ok=True)
        (self.root / "scans").mkdir(exist_ok=True)
        env = {**os.environ, "DISPLAY": self.display, "LANGUAGE": "fr",
               "KIOSK_DOWNLOADS_DIR": str(self.downloads),
               "KIOSK_SCANS_DIR": str(self.root / "scans"), "KIOSK_BROWSER_CONTROL": self.control,
               "QTWEBENGINE_CHROMIUM_FLAGS": '"--host-resolver-rules=MAP * 127.0.0.1"'
               if self.resolve_names else ""}
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "kiosk-browser"), "--url", self.url, "--config",
             str(self.site), "--record", str(self.audit_path), "--geometry", geometry,
             "--no-sandbox"], env=env, stdout=subprocess.DEVNULL,
            stderr=(self.root / "browser.log").open("a"))
        self.wait_event(lambda e: e.get("event") == "loaded" and e.get("ok"), "first page")
        return self

    def entries(self) -> list[dict]:
        return read_log(self.audit_path)

    def command(self, word: str) -> None:
        """What the shell's buttons send: « back », « start », « reload »…"""
        import socket
        from kiosk.browser.control import control_address
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(5)
            connection.connect(control_address(self.control))
            connection.sendall(word.encode())
            assert connection.recv(16) == b"ok\n"

    def wait_event(self, predicate, what: str, timeout: float = 30.0, since: int = 0) -> dict:
        """The newest audit entry (after the first ``since`` ones) that matches."""
        return wait_entry(self.audit_path, self.process, self.root / "browser.log", predicate,
                          what, timeout, since)

    def stop(self) -> None:
        terminate(self.process, 15)


@dataclass
class Stack:
    """Daemon + shell (+ the browser the daemon starts), all real, on one Xvfb screen."""

    root: Path
    display: str
    cupsd: Cupsd
    portal_url: str
    pin: str = "432198"
    extra_site: str = ""
    idle_warning_seconds: int = 10
    shutdown_command: tuple[str, ...] = ("true",)  # never the real power-off in a test
    webmail_url: str = ""  # a « Ma messagerie » portal (on the fake portals' host) if set
    daemon: subprocess.Popen | None = None
    shell: subprocess.Popen | None = None

    @property
    def record(self) -> Path:
        return self.root / "shell.jsonl"

    @property
    def browser_audit(self) -> Path:
        return self.root / "browser.jsonl"

    def write_site(self) -> Path:
        from kiosk.agent_pin import hash_pin
        browser = [str(Path(sys.executable).parent / "kiosk-browser"), "--no-sandbox",
                   "--record", str(self.browser_audit)]
        site = site_for_portal(self.root, self.portal_url)
        text = site.read_text().replace(
            "[daemon]\n", f'[daemon]\nagent_token_file = "{self.root}/token"\n'
                          f'x_display = "{self.display}"\n')
        text += (f"\n[session]\nidle_warning_seconds = {self.idle_warning_seconds}\n"
                 "idle_countdown_seconds = 5\n"
                 f"\n[browser]\ncommand = {json_list(browser)}\n"
                 f'\n[agent]\npin_file = "{self.root}/agent-pin"\n'
                 f"shutdown_command = {json_list(list(self.shutdown_command))}\n"
                 '\n[sharing]\nlisten = "127.0.0.1"\nport = 0\n'
                 # as on a terminal: the root step that deletes CUPS's own copies of
                 # cut-short prints (plus-kiosk-cups-clean.service there; here, in place)
                 + (f"\n[printing]\ncleanup_command = {json_list(self.cupsd.cleanup_command)}\n"
                    if self.cupsd is not None else "")
                 + self.extra_site)
        if self.webmail_url:
            text += ('\n[[portal]]\nid = "webmail"\nicon = "mail"\nname = { fr = "Ma messagerie", '
                     f'gcf = "Mésajri mwen", en = "My e-mail" }}\nstart_url = "{self.webmail_url}"'
                     '\nallow = ["portal.test"]\n')
        site.write_text(text)
        (self.root / "agent-pin").write_text(hash_pin(self.pin, iterations=1000) + "\n")
        return site

    def start(self) -> "Stack":
        site = self.write_site()
        (self.root / "route").write_text("Iface\tDestination\tGateway\n"
                                         "wwan0\t00000000\t0100000A\n")
        env = self.env = {
            **os.environ, "DISPLAY": self.display, "CUPS_SERVER": self.cupsd.socket,
            "LANGUAGE": "fr", "KIOSK_ROUTE_FILE": str(self.root / "route"),
            "QTWEBENGINE_CHROMIUM_FLAGS": '"--host-resolver-rules=MAP * 127.0.0.1"'}
        self.site_file = site
        self.daemon = subprocess.Popen(
            [str(Path(sys.executable).parent / "kiosk-daemon"), "--config", str(site)], env=env,
            stdout=subprocess.DEVNULL, stderr=(self.root / "daemon.log").open("a"))
        wait_for(lambda: (self.root / "daemon.sock").exists(), timeout=30, what="daemon")
        self.start_shell()
        return self

    def start_shell(self) -> None:
        mark = len(self.events()) if self.record.exists() else 0
        self.shell = subprocess.Popen(
            [str(Path(sys.executable).parent / "kiosk-shell"), "--config", str(self.site_file),
             "--size", "1280x800", "--record", str(self.record)], env=self.env,
            stdout=subprocess.DEVNULL, stderr=(self.root / "shell.log").open("a"))
        self.wait(lambda e: e["event"] == "layout" and e["screen"] == "welcome", "welcome",
                  since=mark)

    def events(self) -> list[dict]:
        return read_log(self.record)

    def wait(self, predicate, what: str, timeout: float = 30.0, since: int = 0) -> dict:
        return wait_entry(self.record, self.shell, self.root / "shell.log", predicate, what,
                          timeout, since)

    def target(self, name: str, screen: str | None = None) -> tuple[int, int]:
        for event in reversed(self.events()):
            if event["event"] == "layout" and (screen is None or event["screen"] == screen) \
                    and name in event["targets"]:
                return tuple(event["targets"][name])
        raise AssertionError(f"no {name} on screen")

    def tap(self, name: str, screen: str | None = None) -> None:
        click(self.display, *self.target(name, screen))

    def stop(self) -> None:
        terminate(self.shell)
        terminate(self.daemon)


def json_list(items: list[str]) -> str:
    import json
    return json.dumps(items)


SQUID = "/usr/sbin/squid"


@dataclass
class Squid:
    """The real Squid (``squid -N``), configured by ``kiosk.proxy`` from a test site.

    It listens on 127.0.0.1 and a free port (whatever the site's ``[proxy] listen``
    says), resolves ``hosts`` to 127.0.0.1 through its own hosts file, and keeps
    its runtime directory (pid file, cache.log) and its stderr under ``root``: a
    directory outside pytest's private tmp, since Squid works as user ``proxy``.
    ``stop()`` leaves them to be read; ``remove()`` deletes them.

    Each one has its own service name (``-n``): Squid names its shared-memory
    segments after it (/dev/shm/squid-cf__*.shm), so two Squids named "squid" —
    another test's, the system's — refuse to run side by side.
    """

    site: Path
    hosts: tuple[str, ...] = ("portal.test", "evil.test")
    destinations: str = "any"
    root: Path | None = None
    port: int = 0
    process: subprocess.Popen | None = None
    service: str = field(default_factory=lambda: "plustest" + os.urandom(4).hex())
    extra_conf: str = ""   # lines appended to the generated configuration

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime_dir(self) -> Path:
        assert self.root is not None
        return self.root / "run"

    @property
    def stderr_path(self) -> Path:
        assert self.root is not None
        return self.root / "squid.stderr"

    @property
    def conf_path(self) -> Path:
        assert self.root is not None
        return self.root / "squid.conf"

    def start(self) -> "Squid":
        import pwd
        import socket
        import tempfile
        from kiosk import config as site_config
        from kiosk.proxy import squid_config
        require(SQUID)
        self.root = Path(tempfile.mkdtemp(prefix="plus-kiosk-squid-"))
        self.root.chmod(0o755)
        self.runtime_dir.mkdir()
        proxy_user = pwd.getpwnam("proxy")
        os.chown(self.runtime_dir, proxy_user.pw_uid, proxy_user.pw_gid)
        hosts = self.root / "hosts"
        hosts.write_text("127.0.0.1 " + " ".join(self.hosts) + "\n")
        self.port = free_port()
        loaded = site_config.load(self.site)
        loaded = loaded.model_copy(
            update={"proxy": site_config.Proxy(listen=f"127.0.0.1:{self.port}")})
        self.conf_path.write_text(squid_config(loaded, destinations=self.destinations,
                                               hosts_file=str(hosts),
                                               runtime_dir=str(self.runtime_dir))
                                  + self.extra_conf)
        # -d 0: Squid's level-0 lines (start, stop, fatal errors) on stderr too.
        self.process = subprocess.Popen([SQUID, "-N", "-d", "0", "-n", self.service,
                                         "-f", str(self.conf_path)],
                                        stdout=subprocess.DEVNULL,
                                        stderr=self.stderr_path.open("w"))

        def accepting() -> bool:
            if self.process.poll() is not None:
                raise AssertionError("squid exited:\n" + self.stderr_path.read_text())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for(accepting, timeout=20, what="squid")
        return self

    def stop(self) -> None:
        terminate(self.process, 15)

    def remove(self) -> None:
        self.stop()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
        for segment in Path("/dev/shm").glob(f"{self.service}-*"):
            segment.unlink(missing_ok=True)


def start_session(stack: Stack) -> None:
    """Touch the welcome screen until the home screen shows (a session opened)."""
    mark = len(stack.events())
    for _ in range(3):  # a window that has just been mapped may miss its very first click
        click(stack.display, 640, 400)
        try:
            stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "home", "home",
                       since=mark, timeout=5)
            return
        except AssertionError:
            continue
    raise AssertionError("the welcome screen did not open a session")
