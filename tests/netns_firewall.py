"""The program tests/test_firewall.py runs inside its private network namespace.

Run as root by ``unshare --net --pid --mount …`` (never in the host's namespace):
``scenario RULES RESIDENT_IDS PROXY_IDS`` probes the network as each user before and
after loading the rules; ``squid RULES RESIDENT_IDS PROXY_IDS RUNTIME_DIR`` runs the
real Squid as the proxy user with the resident behind the firewall. Each prints one
JSON report. Standard library only: it runs with ``python -I``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

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
