"""The phone hand-off on the wifi: encrypted scans, and a share listener that floods cannot sink.

Everything runs against the real daemon (``harness.Daemon``) on 127.0.0.1, or the
real listener in-process; the attacker is a plain socket on the same machine.
"""

from __future__ import annotations

import io
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kiosk.daemon_client import DaemonClient


def memory_of(pid: int) -> dict[str, int]:
    """The process's resident and proportional set sizes, in kB (from /proc)."""
    values = {}
    for name, key in (("status", "VmRSS"), ("smaps_rollup", "Pss")):
        for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
            if line.startswith(key + ":"):
                values[key] = int(line.split()[1])
                break
    return values


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=15) as response:
        assert response.status == 200
        return response.read()


def share_and_download(client: DaemonClient, scan_id: str) -> tuple[dict, bytes]:
    shared = client.share(scan_id)
    return shared, fetch(shared["url"])


def health_latency(daemon) -> float:
    """The slowest of three /health calls over the daemon's Unix socket, in seconds."""
    worst = 0.0
    for _ in range(3):
        started = time.monotonic()
        assert DaemonClient(daemon.socket, timeout=10).health() == {"status": "ok"}
        worst = max(worst, time.monotonic() - started)
    return worst


SLOW_CONNECTIONS = 300
# What each attacker sends: a request line, then nearly the most header lines the
# old listener would keep (100 lines of 64 kB each), never the blank line ending them;
# once that is out, one more byte at a time, so no idle timer ever fires.
ATTACK = b"GET /s/x HTTP/1.1\r\n" + (b"X-Pad: " + b"a" * 65000 + b"\r\n") * 98


class Attacker:
    """One slow connection, reopened whenever the server drops it."""

    def __init__(self, address: tuple[str, int]):
        self.address = address
        self.dropped = 0
        self._open()

    def _open(self) -> None:
        self.socket = socket.socket()
        self.socket.setblocking(False)
        self.socket.connect_ex(self.address)
        self.sent = 0

    def push(self) -> None:
        try:
            if self.sent < len(ATTACK):
                self.sent += self.socket.send(ATTACK[self.sent:self.sent + 1 << 20])
            else:
                self.sent += self.socket.send(b"b")
        except BlockingIOError:
            pass                      # not connected yet, or the server reads no more
        except OSError:
            self.dropped += 1         # the server closed it: come back at once
            self.socket.close()
            self._open()

    def close(self) -> None:
        self.socket.close()


def test_slow_connections_keep_the_daemon_small_and_the_kiosk_working(daemon, capsys):
    client = daemon.client()
    client.start_session()
    scan = client.scan()
    share_and_download(client, scan["id"])  # warm: every module the download needs is loaded
    pid = daemon.process.pid
    before = memory_of(pid)
    host, port = client.share(scan["id"])["url"].split("/")[2].rsplit(":", 1)
    attackers = [Attacker((host, int(port))) for _ in range(SLOW_CONNECTIONS)]
    peak, health, started = dict(before), [], time.monotonic()
    try:
        while time.monotonic() - started < 15:
            for attacker in attackers:
                attacker.push()
            now = memory_of(pid)
            peak = {key: max(peak[key], now[key]) for key in peak}
            if time.monotonic() - started > 8 and len(health) < 3:
                health.append(health_latency(daemon))
            time.sleep(0.2)
        sent = sum(attacker.sent for attacker in attackers)
        dropped = sum(attacker.dropped for attacker in attackers)
    finally:
        for attacker in attackers:
            attacker.close()
    time.sleep(2)
    after = memory_of(pid)
    shared, body = share_and_download(client, scan["id"])
    with capsys.disabled():
        print(f"\n  {SLOW_CONNECTIONS} slow connections, {sent // 2**20} MB sent, {dropped} dropped "
              f"by the server; RSS kB before {before['VmRSS']} peak {peak['VmRSS']} after "
              f"{after['VmRSS']}; PSS kB before {before['Pss']} peak {peak['Pss']} after "
              f"{after['Pss']}; /health worst {max(health) * 1000:.0f} ms")
    assert sent > SLOW_CONNECTIONS * 8192   # the flood really reached the listener
    assert peak["VmRSS"] - before["VmRSS"] < 40_000, (before, peak)   # < 40 MB more
    assert peak["Pss"] - before["Pss"] < 40_000, (before, peak)
    assert max(health) < 1.0, health
    assert body.startswith(b"%PDF")


# -- what crosses the air: an encrypted PDF, the code never in the link ------------------

CANARY = "CANARY-Marie-Exemple-titre-de-sejour-972"


def canary_scan(client: DaemonClient, name: str = "canary1") -> str:
    """A scan in the session holding a known text, written uncompressed so that any
    plain copy of it would show in the bytes served."""
    from reportlab.pdfgen import canvas
    scans = Path(client.status()["session"]["dirs"]["scans"])
    document = canvas.Canvas(str(scans / f"{name}.pdf"), pageCompression=0)
    document.drawString(72, 720, CANARY)
    document.showPage()
    document.save()
    assert CANARY.encode() in (scans / f"{name}.pdf").read_bytes()
    return name


def test_the_phone_gets_an_aes256_pdf_that_only_the_code_opens(daemon, tmp_path):
    import base64
    import re
    import subprocess

    import pikepdf

    from kiosk.sharing import qr_png_base64
    client = daemon.client()
    client.start_session()
    shared = client.share(canary_scan(client))
    code, url = shared["code"], shared["url"]
    assert re.fullmatch(r"[a-hjkmnp-z]{10}", code)
    assert code not in url and code.upper() not in url.upper()
    # The QR code is exactly the link's (the same picture as the URL alone makes).
    assert shared["qr_png"] == qr_png_base64(url)
    assert base64.b64decode(shared["qr_png"]).startswith(b"\x89PNG")
    body = fetch(url)
    assert body.startswith(b"%PDF") and CANARY.encode() not in body
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(body))
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(body), password=code[::-1])
    with pikepdf.open(io.BytesIO(body), password=code) as pdf:
        info = pdf.encryption
        assert (info.R, info.V, info.bits) == (6, 5, 256)
        assert str(info.stream_method) == str(info.string_method) == "EncryptionMethod.aesv3"
        assert len(pdf.pages) == 1
    served = tmp_path / "served.pdf"
    served.write_bytes(body)
    text = subprocess.run(["pdftotext", "-upw", code, str(served), "-"], capture_output=True,
                          text=True, timeout=30)
    assert text.returncode == 0 and CANARY in text.stdout
    wrong = subprocess.run(["pdftotext", "-upw", "abcdefghjk", str(served), "-"],
                           capture_output=True, text=True, timeout=30)
    assert wrong.returncode != 0 and CANARY not in wrong.stdout
    with pytest.raises(urllib.error.HTTPError) as caught:   # one download only
        fetch(url)
    assert caught.value.code == 404
    log = daemon.log()
    assert code not in log and url.rsplit("/", 1)[1] not in log and CANARY not in log


def test_the_encrypted_copy_never_touches_the_disk(daemon):
    """A large scan, read slowly by the phone: waitress spools big responses to a
    temporary file unless they are served from the buffer itself."""
    import os

    from PIL import Image
    from reportlab.pdfgen import canvas
    client = daemon.client()
    client.start_session()
    scans = Path(client.status()["session"]["dirs"]["scans"])
    noise = Image.frombytes("RGB", (1600, 1600), os.urandom(1600 * 1600 * 3))
    document = canvas.Canvas(str(scans / "big1.pdf"))
    document.drawInlineImage(noise, 0, 0, 595, 842)
    document.showPage()
    document.save()
    assert (scans / "big1.pdf").stat().st_size > 6_000_000
    pid = daemon.process.pid

    def open_files() -> set[str]:
        found = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if not target.startswith(("socket:", "pipe:", "anon_inode:", "/dev/")):
                found.add(target)
        return found

    before = open_files()
    url = client.share("big1")["url"]
    host, port = url.split("/")[2].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as phone:
        phone.sendall(f"GET /{url.split('/', 3)[3]} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        assert phone.recv(12) == b"HTTP/1.1 200"
        time.sleep(1)   # the rest waits in the daemon, since this phone reads slowly
        during = open_files()
        received = 12
        while chunk := phone.recv(65536):
            received += len(chunk)
    assert during - before == set(), during - before
    assert received > 6_000_000


# -- which interface listens ----------------------------------------------------------

def listening_addresses(pid: int) -> list[str]:
    """The local addresses of the TCP sockets ``pid`` listens on (from /proc/net/tcp)."""
    import os
    inodes = {os.readlink(fd)[8:-1] for fd in Path(f"/proc/{pid}/fd").iterdir()
              if os.readlink(fd).startswith("socket:[")}
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                found.append(fields[1].split(":")[0])
    return found


def test_the_listener_binds_the_named_interface_only(daemon_factory):
    daemon = daemon_factory(**{"sharing.interface": '"lo"', "sharing.listen": '""'})
    client = daemon.client()
    client.start_session()
    shared = client.share(canary_scan(client))
    assert shared["url"].startswith("http://127.0.0.1:")
    assert listening_addresses(daemon.process.pid) == ["0100007F"]   # 127.0.0.1, not 0.0.0.0
    assert fetch(shared["url"]).startswith(b"%PDF")


def refused_share(daemon_factory, interface: str):
    """A daemon whose share listener has ``interface`` and no address, and the error
    a resident's share gets from it."""
    from kiosk.daemon_client import DaemonError
    daemon = daemon_factory(**{"sharing.interface": f'"{interface}"', "sharing.listen": '""'})
    client = daemon.client()
    client.start_session()
    with pytest.raises(DaemonError) as caught:
        client.share(canary_scan(client))
    return daemon, client, caught.value


def test_a_missing_interface_turns_sharing_off_with_a_reason(daemon_factory):
    daemon, client, error = refused_share(daemon_factory, "nosuch0")
    assert (error.status, error.code) == (503, "sharing_unavailable")
    assert "agent" in error.message
    assert "l'interface réseau « nosuch0 » n'existe pas sur cette borne" in daemon.log()
    assert listening_addresses(daemon.process.pid) == []
    assert client.health() == {"status": "ok"}   # the kiosk itself goes on


def test_no_interface_and_no_address_means_no_listener(daemon_factory):
    daemon, _client, error = refused_share(daemon_factory, "")
    assert (error.status, error.code) == (503, "sharing_off")
    assert listening_addresses(daemon.process.pid) == []


NETNS_PROBE = """
import subprocess, sys
from kiosk.i18n import set_language
from kiosk.sharing import ShareUnavailable, interface_address, listening_socket
set_language("en")
try:
    interface_address("lo")       # a new namespace's loopback is down, without address
except ShareUnavailable as error:
    print("down:", error)
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
sock = listening_socket("", "lo", 0)
print("up:", sock.getsockname()[0])
"""


def test_an_interface_without_address_is_named_in_the_error():
    import shutil
    import subprocess
    import sys
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        pytest.skip("needs unshare and ip (util-linux, iproute2)")
    result = subprocess.run(["unshare", "--net", sys.executable, "-c", NETNS_PROBE],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "down: the network interface 'lo' has no IPv4 address (is the wifi switched on?)" \
        in result.stdout
    assert "up: 127.0.0.1" in result.stdout


def test_the_site_file_names_an_interface_or_is_told_why_not():
    from kiosk import config
    from kiosk.i18n import set_language
    text = config.bundled_config().read_text()
    assert config.load_text(text).sharing.interface == "wlan0"
    set_language("fr")
    with pytest.raises(config.ConfigError) as caught:
        config.load_text(text.replace('interface = "wlan0"', 'interface = "wlan0; rm"'))
    (problem,) = caught.value.problems
    assert problem.key == "sharing.interface" and problem.line is not None
    assert "doit être le nom d'une interface réseau" in problem.message


# -- the listener's own limits, in-process ------------------------------------------------

@pytest.fixture
def listener(tmp_path):
    from kiosk.sharing import ShareLinks, ShareServer
    links = ShareLinks(600)
    server = ShareServer(links, listen="127.0.0.1", port=0, request_deadline=2)
    server.start()
    yield server, links
    server.stop()


def test_a_trickling_client_is_cut_off_at_the_request_deadline(listener):
    server, _links = listener
    host, port = server.base_url[7:].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as slow:
        started = time.monotonic()
        closed_after = None
        for byte in PARTIAL_REQUEST_LINE * 10:
            try:
                slow.send(bytes([byte]))
            except OSError:
                closed_after = time.monotonic() - started
                break
            slow.settimeout(0.3)
            try:
                if slow.recv(1) == b"":
                    closed_after = time.monotonic() - started
                    break
            except TimeoutError:
                pass
        assert closed_after is not None and closed_after < 4.5, closed_after


PARTIAL_REQUEST_LINE = b"GET /s/aaaaaaaaaaaaaaaaaaaa"


@pytest.mark.parametrize("request_bytes, status", [
    (b"GET /s/" + b"a" * 20000 + b" HTTP/1.1\r\n\r\n", b"431"),          # header too large
    (b"POST /s/x HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", b"413"),  # no bodies
    (b"HEAD /s/x HTTP/1.1\r\n\r\n", b"404"),
    (b"GET /s/../../etc/passwd HTTP/1.1\r\n\r\n", b"404"),
])
def test_the_listener_refuses_everything_but_a_live_link(listener, request_bytes, status):
    server, _links = listener
    host, port = server.base_url[7:].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as client:
        client.sendall(request_bytes)
        assert client.recv(64).split(b" ")[1] == status
