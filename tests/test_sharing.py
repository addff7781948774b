"""The phone hand-off on the wifi: encrypted scans, and a share listener that floods cannot sink.

Everything runs against the real daemon (``harness.Daemon``) on 127.0.0.1, or the
real listener in-process; the attacker is a plain socket on the same machine.
"""

from __future__ import annotations

import io
import selectors
import socket
import time
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
