"""Issue #12, items 5 and 6: bombs and floods against the daemon, as the resident's user.

Each test plays one attack from the outside review against a real daemon (or the
confined parser) and checks the daemon stays small, answers, and shows nothing it
should not.
"""

import io
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from kiosk.daemon_client import DaemonClient, DaemonError
from kiosk.printing import confined, documents
from test_wipe import make_pdf


def peak_rss_mb(pid: int) -> float:
    """The process's high-water mark of resident memory (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


# -- 5. no bombs -----------------------------------------------------------------------

def test_a_sparse_6_gb_pdf_is_refused_by_its_size_before_parsing(daemon):
    """Before: pypdf read the whole file (the review saw 7.3 GB of memory); no size cap."""
    client = daemon.client()
    downloads = Path(client.start_session()["dirs"]["downloads"])
    with open(downloads / "enorme.pdf", "wb") as handle:
        handle.write(b"%PDF-1.4\n")
        handle.truncate(6 * 1024 ** 3)  # sparse: 6 GB that cost no disk
    make_pdf(str(downloads / "attestation.pdf"), ["Attestation"])
    listed = {d["name"]: d for d in client.documents()}
    assert listed["enorme.pdf"]["error"] == "document_too_large"
    assert "50 Mo" in listed["enorme.pdf"]["message"]  # the documented maximum, in French
    assert listed["attestation.pdf"]["pages"] == 1  # the others are still listed
    with pytest.raises(DaemonError) as caught:
        client.print_document("downloads", "enorme.pdf")
    assert (caught.value.status, caught.value.code) == (422, "document_too_large")
    assert not os.listdir(Path(client.status()["session"]["dirs"]["prints"]))  # nothing copied
    assert peak_rss_mb(daemon.process.pid) < 250


def test_a_png_near_pillows_pixel_limit_is_refused_from_its_header(daemon):
    """Before: decoded in the daemon (81 Mpx: hundreds of MB, 1.4 GB in the review)."""
    client = daemon.client()
    downloads = Path(client.start_session()["dirs"]["downloads"])
    Image.new("L", (9000, 9000)).save(downloads / "bombe.png")  # ~80 KB on disk
    assert (downloads / "bombe.png").stat().st_size < 1024 * 1024
    listed = {d["name"]: d for d in client.documents()}
    assert listed["bombe.png"]["error"] == "document_too_large"
    with pytest.raises(DaemonError) as caught:
        client.document_page("downloads", "bombe.png")
    assert (caught.value.status, caught.value.code) == (422, "document_too_large")
    assert peak_rss_mb(daemon.process.pid) < 250


def test_a_parser_out_of_memory_kills_only_its_child(tmp_path, monkeypatch):
    """A picture under the caps whose decoding outgrows the child's memory limit: the
    child dies, the caller gets a refusal and lives on. (The limit is lowered for the
    test; the child takes the lower of the parent's value and its own.)"""
    path = tmp_path / "lourd.png"
    Image.new("RGBA", (6000, 5000)).save(path)  # 30 Mpx: 120 MB decoded
    monkeypatch.setattr(confined, "CHILD_MEMORY_BYTES", 96 * 1024 * 1024)
    documents._cache.clear()
    fd = documents.open_resident(tmp_path, "lourd.png")
    try:
        with pytest.raises(documents.UnprintableDocument) as caught:
            documents.inspect(fd)
        assert caught.value.code == "too_large"
    finally:
        os.close(fd)
        documents._cache.clear()
    assert peak_rss_mb(os.getpid()) < 400  # this process never decoded it


def test_a_file_that_keeps_the_parser_busy_is_cut_off_in_time(tmp_path, monkeypatch):
    """The wall-clock limit: a child that does not answer in time is killed."""
    monkeypatch.setattr(confined, "CHILD_WALL_SECONDS", 0.05)  # less than Python's start-up
    make_pdf(str(tmp_path / "doc.pdf"), ["x"])
    documents._cache.clear()
    fd = documents.open_resident(tmp_path, "doc.pdf")
    try:
        started = time.monotonic()
        with pytest.raises(documents.UnprintableDocument) as caught:
            documents.inspect(fd)
        assert caught.value.code == "too_large" and time.monotonic() - started < 2
    finally:
        os.close(fd)
        documents._cache.clear()


# -- 6. no floods ----------------------------------------------------------------------

def test_150_idle_connections_do_not_starve_health(daemon):
    """Before: waitress accepted 100 connections, then /health waited (forever, for idle ones)."""
    idle = []
    try:
        for _ in range(150):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(daemon.socket))
            idle.append(sock)
        time.sleep(0.5)  # the daemon has accepted what it will accept
        started = time.monotonic()
        assert DaemonClient(daemon.socket, timeout=1).health() == {"status": "ok"}
        assert time.monotonic() - started < 1
    finally:
        for sock in idle:
            sock.close()


def test_an_idle_connection_is_closed_after_the_channel_timeout(daemon):
    """So that idle clients over the connection limit only delay, never lock out, /health."""
    from kiosk.daemon.server import SERVER_LIMITS
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(daemon.socket))
    sock.settimeout(SERVER_LIMITS["channel_timeout"] + 2 * SERVER_LIMITS["cleanup_interval"] + 3)
    try:
        assert sock.recv(1) == b""  # closed by the daemon
    finally:
        sock.close()


def _raw(daemon, head: bytes, timeout: float = 3.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(daemon.socket))
    sock.sendall(head)
    return sock


def _spool_files(pid: int) -> list[str]:
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("/") and not target.startswith(("/dev/", "/proc/")) \
                and "(deleted)" in target:
            found.append(target)
    return found


def test_a_400_mb_body_is_refused_before_it_is_read(daemon):
    """Before: waitress took the whole body (spooling it to /tmp) before Flask said 413."""
    sock = _raw(daemon, b"POST /api/v1/print HTTP/1.1\r\nHost: kiosk\r\n"
                        b"Content-Type: multipart/form-data; boundary=x\r\n"
                        b"Content-Length: 400000000\r\n\r\n")
    try:
        answer = sock.recv(4096)  # no byte of the body sent
        assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    finally:
        sock.close()


def test_a_body_being_received_is_never_spooled_to_disk(daemon):
    """Before: anything over 512 KB went to a temporary file (/tmp, on disk)."""
    sock = _raw(daemon, b"POST /api/v1/print HTTP/1.1\r\nHost: kiosk\r\n"
                        b"Content-Type: multipart/form-data; boundary=x\r\n"
                        b"Content-Length: 20000000\r\n\r\n")
    try:
        sock.sendall(b"\0" * 8_000_000)  # 8 MB of 20: the daemon is still receiving
        time.sleep(0.5)
        assert _spool_files(daemon.process.pid) == []
    finally:
        sock.close()


def test_oversized_headers_are_refused(daemon):
    sock = _raw(daemon, b"GET /api/v1/health HTTP/1.1\r\nHost: kiosk\r\nX-Pad: "
                        + b"a" * 64 * 1024 + b"\r\n\r\n")
    try:
        assert sock.recv(4096).split(b"\r\n")[0].split()[1] == b"431"  # before: 200 (256 KB)
    finally:
        sock.close()


def _swapper(stop: threading.Event, downloads: Path, name: str, make_other) -> threading.Thread:
    """Swap ``name`` between the real file and something else, as fast as possible."""
    real = downloads / ".real"
    os.link(downloads / name, real)

    def run() -> None:
        while not stop.is_set():
            make_other(downloads / ".other")
            os.rename(downloads / ".other", downloads / name)
            os.link(real, downloads / ".again")
            os.rename(downloads / ".again", downloads / name)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_fifo_swapped_in_during_the_listing_blocks_nothing(daemon):
    """Before: open() of a FIFO waits for a writer; every worker froze on it in turn."""
    client = DaemonClient(daemon.socket, timeout=10)
    downloads = Path(client.start_session()["dirs"]["downloads"])
    make_pdf(str(downloads / "attestation.pdf"), ["Attestation"])
    stop = threading.Event()
    swapper = _swapper(stop, downloads, "attestation.pdf", os.mkfifo)
    try:
        for attempt in range(200):  # a DaemonUnreachable (timeout) here is the freeze
            if attempt % 2:
                client.documents()
            else:
                try:
                    client.document_page("downloads", "attestation.pdf")
                except DaemonError as error:
                    assert error.status == 404  # a FIFO is no document
        assert DaemonClient(daemon.socket, timeout=1).health() == {"status": "ok"}
    finally:
        stop.set()
        swapper.join()


def test_a_symlink_swapped_in_during_a_preview_never_shows_the_daemons_file(daemon, tmp_path):
    """Before: checked by name, then opened by name: the review saw the daemon-only file
    rendered 35 times in 400 tries."""
    secret = tmp_path / "daemon-only.png"
    Image.new("RGB", (64, 64), (255, 0, 0)).save(secret)
    secret.chmod(0o600)
    client = daemon.client()
    downloads = Path(client.start_session()["dirs"]["downloads"])
    Image.new("RGB", (64, 64), (0, 0, 255)).save(downloads / "photo.png")
    stop = threading.Event()
    swapper = _swapper(stop, downloads, "photo.png", lambda p: os.symlink(secret, p))
    shown = {"blue": 0, "red": 0, "refused": 0}
    try:
        for _ in range(150):
            try:
                png = client.document_page("downloads", "photo.png")
            except DaemonError:
                shown["refused"] += 1
                continue
            pixel = Image.open(io.BytesIO(png)).convert("RGB").getpixel((5, 5))
            shown["red" if pixel == (255, 0, 0) else "blue"] += 1
    finally:
        stop.set()
        swapper.join()
    assert shown["red"] == 0 and shown["blue"] > 0, shown


def test_open_resident_refuses_links_fifos_and_folders(tmp_path):
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.4")
    os.symlink(tmp_path / "doc.pdf", tmp_path / "link.pdf")
    os.mkfifo(tmp_path / "fifo.pdf")
    (tmp_path / "folder.pdf").mkdir()
    for name in ("link.pdf", "fifo.pdf", "folder.pdf", "../doc.pdf", "..", "nothing.pdf"):
        with pytest.raises(FileNotFoundError):
            documents.open_resident(tmp_path, name)
    fd = documents.open_resident(tmp_path, "doc.pdf")
    os.close(fd)
