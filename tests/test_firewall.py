"""The resident's firewall, proven in a private network namespace.

Two throwaway users stand in for the resident (``kiosk``) and Squid's ``proxy``;
the real users of this machine are never touched. Everything network happens
inside ``unshare --net`` (plus a PID namespace, so every process dies with it):
loopback, a private address 10.203.0.1 and fd00:203::1 on an interface of that
namespace, listeners that record what reaches them, the rules loaded with
``nft -f`` there. The host's network and firewall are never touched.

The same probes run before and after the rules are loaded: before, the resident
reaches everything (so these tests can fail); after, only the proxy's port.
This file is also the program run inside the namespace (``scenario``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "provisioning"))
from kiosk_provision.firewall import TABLE, nft_rules  # noqa: E402

RESIDENT, PROXY = "plusfw-resident", "plusfw-proxy"
LAN4, LAN6 = "10.203.0.1", "fd00:203::1"
PROXY_PORT = 3128
# name → (kind, address, port)
TCP_TARGETS = {
    "proxy": ("127.0.0.1", PROXY_PORT),
    "lan": (LAN4, 8080),
    "lan_https": (LAN4, 443),
    "cups": ("127.0.0.1", 631),
    "share": ("127.0.0.1", 8470),
    "other_loopback_ip": ("127.0.0.2", PROXY_PORT),   # the proxy's port, another address
    "lan6": (LAN6, 8080),
    "loopback6": ("::1", PROXY_PORT),
}
UDP_TARGETS = {
    "dns_lan": (LAN4, 53),
    "dns_loopback": ("127.0.0.1", 53),
    "dns_resolved": ("127.0.0.53", 53),
    "udp_lan": (LAN4, 5000),
    "dns_lan6": (LAN6, 53),
}
TOOLS = ("unshare", "nft", "setpriv", "ip", "useradd", "userdel")


def needs_root_and_tools():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    return pytest.mark.skipif(
        os.geteuid() != 0 or bool(missing),
        reason="needs root (namespaces, users, nft)" if os.geteuid() != 0
        else f"needs {', '.join(missing)}")


# -- the rule set as text ------------------------------------------------------------------

def test_rules_are_one_table_replaced_atomically():
    text = nft_rules("kiosk", "proxy", "127.0.0.1", 3128)
    lines = [line.strip() for line in text.splitlines()]
    # Declared, deleted, defined: loading twice never fails and never doubles a rule.
    assert lines.index(f"table inet {TABLE} {{}}") < lines.index(f"delete table inet {TABLE}") \
        < lines.index(f"table inet {TABLE} {{")
    assert "flush ruleset" not in text           # other tables are not ours
    assert 'meta skuid "kiosk" ip daddr 127.0.0.1 tcp dport 3128' in text
    statements = [line for line in lines if line and not line.startswith("#")]
    assert not [line for line in statements if " log" in line]   # counts, never addresses
    assert "ip6 daddr ::1 tcp dport 8080" in nft_rules(1000, 13, "[::1]", 8080)


@pytest.mark.parametrize("args", [("kiosk", "proxy", "192.168.1.20", 3128),
                                  ("kiosk", "proxy", "0.0.0.0", 3128),
                                  ("kiosk", "kiosk", "127.0.0.1", 3128),
                                  ("kiosk", "proxy", "127.0.0.1", 0),
                                  ('ki"osk', "proxy", "127.0.0.1", 3128)])
def test_rules_refuse_what_would_open_a_hole(args):
    with pytest.raises(ValueError):
        nft_rules(*args)


@needs_root_and_tools()
def test_nft_accepts_the_file(tmp_path):
    """nft -c parses and checks against the kernel, committing nothing (in a private
    namespace all the same)."""
    for host in ("127.0.0.1", "::1"):
        rules = tmp_path / "firewall.nft"
        rules.write_text(nft_rules(0, 65534, host, 3128))
        result = subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(rules)],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
    rules.write_text(nft_rules(0, 65534, "127.0.0.1", 3128).replace("tcp dport", "tcp dprt"))
    assert subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(rules)],
                          capture_output=True).returncode != 0


# -- the proof in a namespace ----------------------------------------------------------------

@pytest.fixture(scope="module")
def users():
    """Two system users made for this test, removed afterwards even on failure."""
    made = []
    try:
        for name in (RESIDENT, PROXY):
            subprocess.run(["userdel", name], capture_output=True)  # a crashed run's leftover
            subprocess.run(["useradd", "--system", "--no-create-home", "--user-group",
                            "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
            made.append(name)
        import pwd
        yield {name: (pwd.getpwnam(name).pw_uid, pwd.getpwnam(name).pw_gid) for name in made}
    finally:
        for name in made:
            subprocess.run(["userdel", name], capture_output=True)


def in_namespace(*argv: str, timeout: float = 120) -> dict:
    """Run this file's scenario in fresh network and PID namespaces; its JSON answer."""
    result = subprocess.run(
        ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "--mount",
         sys.executable, "-I", __file__, *argv],
        capture_output=True, text=True, timeout=timeout, cwd="/")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def proof(users, tmp_path_factory):
    rules = tmp_path_factory.mktemp("fw") / "firewall.nft"
    rules.write_text(nft_rules(users[RESIDENT][0], users[PROXY][0], "127.0.0.1", PROXY_PORT))
    rules.chmod(0o644)
    ids = [f"{uid}:{gid}" for uid, gid in (users[RESIDENT], users[PROXY])]
    return in_namespace("scenario", str(rules), *ids)


@needs_root_and_tools()
def test_without_the_rules_the_resident_reaches_everything(proof):
    """The control: the probes can tell an open network from a closed one."""
    before = proof["open"]["resident"]
    assert all(before["tcp"][name] == "connected" for name in TCP_TARGETS), before["tcp"]
    assert set(proof["open"]["heard"]["resident"]) >= set(UDP_TARGETS)
    assert before["ping"] == "answered"


@needs_root_and_tools()
def test_the_resident_reaches_the_proxy_and_nothing_else(proof):
    after = proof["closed"]["resident"]
    assert after["tcp"]["proxy"] == "connected"
    refused = {name: result for name, result in after["tcp"].items() if name != "proxy"}
    assert set(refused.values()) == {"ECONNREFUSED"}, refused   # a reset: no waiting
    assert all(after["seconds"][name] < 1.0 for name in refused), after["seconds"]
    assert after["ping"] != "answered"


@needs_root_and_tools()
def test_no_datagram_of_the_resident_arrives_dns_included(proof):
    assert proof["closed"]["heard"]["resident"] == []
    # A connected UDP socket learns it at once too (the ICMP error of the reject).
    errors = proof["closed"]["resident"]["udp"]
    assert all(result != "sent" for result in errors.values()), errors


@needs_root_and_tools()
def test_the_proxy_user_and_root_are_not_restricted(proof):
    for user in ("proxy", "root"):
        closed = proof["closed"][user]
        assert all(result == "connected" for result in closed["tcp"].values()), (user, closed)
        assert sorted(proof["closed"]["heard"][user]) == sorted(UDP_TARGETS), user


@needs_root_and_tools()
def test_refusals_are_counted_and_loading_twice_keeps_one_table(proof):
    counters = proof["counters"]
    assert counters["resident_refused"] >= len(TCP_TARGETS) - 1 + len(UDP_TARGETS)
    assert counters["resident_to_proxy"] >= 1
    assert proof["tables"] == [["inet", TABLE]] and proof["rules"] == 4


# -- the real Squid, as on a terminal ---------------------------------------------------------

@pytest.fixture(scope="module")
def squid_proof(users):
    """Squid started from kiosk.proxy's configuration as the proxy user, the resident
    behind the firewall: through the proxy to an allowed name, never around it."""
    if shutil.which("squid") is None:
        pytest.skip("needs squid (the terminal's proxy)")
    proxy = pytest.importorskip("kiosk.proxy")
    from kiosk.config import bundled_config, load_text
    import tempfile
    uid, gid = users[PROXY]
    runtime = Path(tempfile.mkdtemp(prefix="plusfw-squid-", dir="/tmp"))
    try:
        os.chown(runtime, uid, gid)
        runtime.chmod(0o755)
        hosts = runtime / "hosts"
        hosts.write_text(f"{LAN4} www.impots.gouv.fr www.newportal.example\n")
        site = bundled_config().read_text(encoding="utf-8")
        assert 'listen = "127.0.0.1:3128"' in site and 'allow = [\n  "franceconnect' in site
        later = site.replace('allow = [\n  "franceconnect',
                             'allow = [\n  "newportal.example",\n  "franceconnect')
        for name, text in (("squid.conf", site), ("squid-reloaded.conf", later)):
            conf = proxy.squid_config(load_text(text), destinations="any", hosts_file=str(hosts),
                                      runtime_dir=str(runtime))
            (runtime / name).write_text(conf)
            (runtime / name).chmod(0o644)
        rules = runtime / "firewall.nft"
        rules.write_text(nft_rules(users[RESIDENT][0], uid, "127.0.0.1", PROXY_PORT))
        ids = [f"{u}:{g}" for u, g in (users[RESIDENT], users[PROXY])]
        yield in_namespace("squid", str(rules), *ids, str(runtime))
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


@needs_root_and_tools()
def test_squid_starts_as_on_a_terminal(squid_proof):
    """squid -N as its own user, no new privileges, no writable+executable memory
    (the unit's MemoryDenyWriteExecute=), tells systemd it is ready (Type=notify)."""
    assert squid_proof["parse"] == 0, squid_proof.get("log")
    assert squid_proof["notify"] == "READY=1", squid_proof.get("log")
    assert squid_proof["mdwe"] in ("on", "kernel too old")


@needs_root_and_tools()
def test_the_resident_goes_through_squid_to_an_allowed_name_and_nowhere_else(squid_proof):
    resident = squid_proof["resident"]
    assert resident["allowed"] == "200" and "through the proxy" in squid_proof["origin"]
    assert resident["blocked"] == "403"
    assert resident["not_yet_allowed"] == "403"
    assert resident["direct"] == "ECONNREFUSED"          # around the proxy: the firewall
    assert resident["dns"] != "sent"


@needs_root_and_tools()
def test_squid_follows_the_site_file_on_sighup(squid_proof):
    """What ExecReload= does: a new configuration, then SIGHUP; Squid keeps running."""
    assert squid_proof["after_reload"] == "200"
    assert squid_proof["still_running"]


# -- inside the namespace --------------------------------------------------------------------

PROBE = r"""
import json, socket, sys, time, errno
targets = json.loads(sys.argv[1])
out = {"tcp": {}, "udp": {}, "seconds": {}}
for name, (host, port) in targets["tcp"].items():
    start = time.monotonic()
    try:
        with socket.create_connection((host, port), timeout=3):
            out["tcp"][name] = "connected"
    except socket.timeout:
        out["tcp"][name] = "timeout"
    except OSError as exc:
        out["tcp"][name] = errno.errorcode.get(exc.errno, str(exc))
    out["seconds"][name] = time.monotonic() - start
for name, (host, port) in targets["udp"].items():
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as udp:
        udp.settimeout(0.5)
        try:
            udp.connect((host, port))
            udp.send(name.encode())
            time.sleep(0.1)
            udp.send(name.encode())   # a pending ICMP error is reported here
            out["udp"][name] = "sent"
        except OSError as exc:
            out["udp"][name] = errno.errorcode.get(exc.errno, str(exc))
try:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP) as ping:
        ping.settimeout(1)
        ping.sendto(b"\x08\x00\x00\x00\x00\x01\x00\x01plus", (targets["ping"], 0))
        ping.recv(64)
        out["ping"] = "answered"
except OSError as exc:
    out["ping"] = errno.errorcode.get(exc.errno, str(exc))
print(json.dumps(out))
"""


class Listeners:
    """TCP and UDP servers recording who reached them (as the tag the probe sends)."""

    def __init__(self) -> None:
        self.heard: list[str] = []
        self.lock = threading.Lock()
        for name, (host, port) in TCP_TARGETS.items():
            if name != "other_loopback_ip":   # nothing there: only the proxy's port counts
                self._serve(socket.SOCK_STREAM, host, port, name)
        self._serve(socket.SOCK_STREAM, "127.0.0.2", PROXY_PORT, "other_loopback_ip")
        for name, (host, port) in UDP_TARGETS.items():
            self._serve(socket.SOCK_DGRAM, host, port, name)

    def _serve(self, kind: int, host: str, port: int, name: str) -> None:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(16)

        def loop() -> None:
            while True:
                if kind == socket.SOCK_STREAM:
                    conn, _ = sock.accept()
                    conn.close()
                else:
                    data = sock.recv(512)
                    with self.lock:
                        self.heard.append(data.decode())
        threading.Thread(target=loop, daemon=True).start()

    def take(self) -> list[str]:
        time.sleep(0.3)
        with self.lock:
            heard, self.heard[:] = sorted(set(self.heard)), []
        return heard


def sh(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def probe(ids: str | None) -> dict:
    python = os.path.realpath(sys.executable)
    targets = json.dumps({"tcp": TCP_TARGETS, "udp": UDP_TARGETS, "ping": LAN4})
    command = [python, "-I", "-S", "-c", PROBE, targets]
    if ids:
        uid, gid = ids.split(":")
        command = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                   "--inh-caps=-all", "--bounding-set=-all", "--", *command]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True,
                                     cwd="/", timeout=60).stdout)


def network() -> None:
    """Loopback, a second loopback address, a private LAN address (v4 and v6) here;
    a private /dev/shm (Squid keeps shared memory segments there)."""
    sh("mount", "-t", "tmpfs", "-o", "mode=1777", "plusfw-shm", "/dev/shm")
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "addr", "add", "127.0.0.2/8", "dev", "lo")
    kind = "dummy" if subprocess.run(["ip", "link", "add", "plusfw0", "type", "dummy"],
                                     capture_output=True).returncode == 0 else "bridge"
    if kind == "bridge":   # no dummy module here: an empty bridge holds addresses as well
        sh("ip", "link", "add", "plusfw0", "type", "bridge")
    sh("ip", "link", "set", "plusfw0", "up")
    sh("ip", "addr", "add", f"{LAN4}/24", "dev", "plusfw0")
    sh("ip", "-6", "addr", "add", f"{LAN6}/64", "dev", "plusfw0", "nodad")
    sh("sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647")  # this namespace only


def scenario(rules: str, resident: str, proxy: str) -> dict:
    network()
    listeners = Listeners()
    report: dict = {}
    for phase in ("open", "closed"):
        if phase == "closed":
            sh("nft", "-f", rules)
            sh("nft", "-f", rules)   # again: still one table, the same rules
        report[phase] = {"heard": {}}
        for user, ids in (("resident", resident), ("proxy", proxy), ("root", None)):
            report[phase][user] = probe(ids)
            report[phase]["heard"][user] = listeners.take()
    ruleset = json.loads(sh("nft", "-j", "list", "ruleset"))["nftables"]
    report["tables"] = [[i["table"]["family"], i["table"]["name"]] for i in ruleset
                        if "table" in i]
    report["rules"] = sum(1 for i in ruleset if "rule" in i)
    report["counters"] = {i["counter"]["name"]: i["counter"]["packets"] for i in ruleset
                          if "counter" in i}
    return report


CONNECT = r"""
import errno, json, socket, sys
host, port, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    with socket.create_connection((host, port), timeout=10) as conn:
        if target != "-":
            conn.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
            status = conn.recv(4096).split(b" ")[1].decode()
            if status == "200":
                conn.sendall(b"through the proxy")
        else:
            status = "connected"
except OSError as exc:
    status = errno.errorcode.get(exc.errno, str(exc))
print(status)
"""
# Squid as under the unit: its own user, no new privileges, MemoryDenyWriteExecute=
# (PR_SET_MDWE: the same refusal of writable+executable memory, kernel 6.3 and later).
LAUNCH = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
mdwe = "on" if libc.prctl(65, 1, 0, 0, 0) == 0 else "kernel too old"
os.write(int(sys.argv[2]), mdwe.encode())
os.close(int(sys.argv[2]))
os.execv("/usr/sbin/squid", ["squid", "-N", "-d", "0", "-f", sys.argv[1]])
"""


def as_user(ids: str, *command: str) -> list[str]:
    uid, gid = ids.split(":")
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs",
            "--inh-caps=-all", "--bounding-set=-all", "--", *command]


def squid(rules: str, resident: str, proxy: str, runtime: str) -> dict:
    python = os.path.realpath(sys.executable)
    network()
    heard: list[bytes] = []
    origin = socket.create_server((LAN4, 443))

    def serve() -> None:
        while True:
            conn, _ = origin.accept()
            conn.settimeout(5)
            try:
                heard.append(conn.recv(100))
            except OSError:
                pass
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    sh("nft", "-f", rules)
    conf = f"{runtime}/squid.conf"
    report: dict = {"parse": subprocess.run(as_user(proxy, "/usr/sbin/squid", "-k", "parse",
                                                    "-f", conf), capture_output=True).returncode}
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(f"{runtime}/notify")
    os.chmod(f"{runtime}/notify", 0o666)
    notify.settimeout(30)
    read_mdwe, write_mdwe = os.pipe()
    server = subprocess.Popen(as_user(proxy, python, "-I", "-S", "-c", LAUNCH, conf,
                                      str(write_mdwe)),
                              env={"NOTIFY_SOCKET": f"{runtime}/notify", "LANG": "C.UTF-8",
                                   "PATH": "/usr/sbin:/usr/bin"}, pass_fds=(write_mdwe,),
                              stdout=subprocess.DEVNULL, stderr=open(f"{runtime}/stderr", "wb"))
    os.close(write_mdwe)
    report["mdwe"] = os.read(read_mdwe, 32).decode()
    try:
        try:
            report["notify"] = notify.recv(200).decode().strip()
        except TimeoutError:
            report["notify"] = "nothing in 30 s"
            return report

        def resident_connect(target: str, host: str = "127.0.0.1", port: int = PROXY_PORT) -> str:
            command = as_user(resident, python, "-I", "-S", "-c", CONNECT, host, str(port),
                              target)
            return subprocess.run(command, capture_output=True, text=True, cwd="/",
                                  timeout=30).stdout.strip()
        report["resident"] = {
            "allowed": resident_connect("www.impots.gouv.fr:443"),
            "blocked": resident_connect("evil.example:443"),
            "not_yet_allowed": resident_connect("www.newportal.example:443"),
            "direct": resident_connect("-", LAN4, 443),
            "dns": probe(resident)["udp"]["dns_lan"],
        }
        os.replace(f"{runtime}/squid-reloaded.conf", conf)
        server.send_signal(1)   # ExecReload=: kill -HUP $MAINPID
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            time.sleep(0.2)
            report["after_reload"] = resident_connect("www.newportal.example:443")
            if report["after_reload"] == "200":
                break
        report["still_running"] = server.poll() is None
        time.sleep(0.3)
        report["origin"] = b" ".join(heard).decode(errors="replace")
    finally:
        server.terminate()
        server.wait(timeout=30)
        report["log"] = Path(f"{runtime}/stderr").read_text(errors="replace")[-3000:]
    return report


if __name__ == "__main__":
    import faulthandler
    faulthandler.dump_traceback_later(100, exit=True)   # a hang says where, before the test's
    if sys.argv[1] == "scenario":
        print(json.dumps(scenario(*sys.argv[2:5])))
    elif sys.argv[1] == "squid":
        print(json.dumps(squid(*sys.argv[2:6])))
