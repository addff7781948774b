"""One-time links that hand a scan to the resident's phone, over the terminal's wifi.

The phone scans a QR code and downloads the PDF once. A link dies at its first
download, after its lifetime, or at the wipe, whichever comes first.

The wifi is open (or shares one password), so everything that crosses the air is
assumed to be heard: the link itself (plain http, a phone cannot trust a
terminal's certificate), and the file. So the file is a PDF encrypted with
AES-256 (PDF 2.0's standard security handler, revision 6), made in memory at
download time, whose password is a code shown on the kiosk's screen beside the
QR code and never put in the link. A listener gets an encrypted file and has to
guess the code offline — hence a code long enough for that (see ``new_code``).

The listener is waitress with tight limits, not a thread per connection: the
number of connections, the header size and a deadline from accept to a complete
request are all bounded, so a flood of slow connections costs the daemon a
bounded amount of memory and can never end a resident's session. It binds the
address of the interface the site names (the bus's wifi), never every
interface: the 4G uplink stays closed.
"""

from __future__ import annotations

import base64
import errno
import fcntl
import io
import logging
import os
import re
import secrets
import socket
import stat
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import pikepdf
import qrcode
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import ThreadedTaskDispatcher

from kiosk.i18n import _

log = logging.getLogger(__name__)

# Lowercase letters only (one keyboard on every phone, nothing to switch), without
# i, l and o, which are read as 1, I and 0: 23 letters.
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz"
# A listener who heard the download has the encrypted file for good, and tries codes
# offline: the link's single use and its ten minutes do not slow that down. Revision
# 6's key derivation costs about 1 ms a guess on a CPU core (1,050 guesses/s measured
# in plain Python, and tens of thousands a second on a gaming GPU). 6 digits (20 bits)
# would fall in seconds; 10 of these letters are 23^10 ≈ 4e13 (45 bits): years for one GPU.
CODE_LENGTH = 10
MAX_SHARED_BYTES = 64 * 1024 * 1024   # a scan is a few MB; never load more in memory


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


@dataclass(frozen=True)
class Share:
    token: str
    path: Path
    code: str
    expires_at: float

    def __repr__(self) -> str:  # tracebacks and debug logs never show the code or token
        return f"Share(path={self.path.name!r}, expires_at={self.expires_at})"


class ShareLinks:
    """The live links. Also a session cleaner."""

    name = "share links"

    def __init__(self, lifetime_seconds: int, clock: Callable[[], float] = time.time):
        self.lifetime = lifetime_seconds
        self.clock = clock
        self._links: dict[str, Share] = {}
        self._lock = threading.Lock()

    def create(self, path: Path) -> Share:
        share = Share(secrets.token_urlsafe(32), path, new_code(), self.clock() + self.lifetime)
        with self._lock:
            self._links[share.token] = share
        return share

    def take(self, token: str) -> Share | None:
        """The link's file, once: the link is gone after this call."""
        with self._lock:
            share = self._links.pop(token, None)
        if share is None or share.expires_at <= self.clock() or not share.path.is_file():
            return None
        return share

    def wipe(self) -> None:
        with self._lock:
            self._links.clear()

    def leftovers(self) -> list[str]:
        with self._lock:
            return [f"{len(self._links)} link(s) still open"] if self._links else []


def qr_png_base64(url: str) -> str:
    image = qrcode.make(url, box_size=8, border=2)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _read_regular_file(path: Path) -> bytes:
    """The file's bytes, read through one descriptor that is surely a regular file
    (a symlink or a FIFO swapped into the session's folder is refused)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SHARED_BYTES:
            raise OSError(errno.EINVAL, "not a regular file of a sensible size")
        return handle.read(MAX_SHARED_BYTES + 1)


def encrypted_pdf(path: Path, code: str) -> bytes:
    """The PDF at ``path``, encrypted with AES-256 (R6) for the user password ``code``.

    Made in memory: nothing about the resident is written anywhere. The owner
    password is random and forgotten: nobody needs it, and everything stays
    allowed (printing, copying) for the person who has the code."""
    output = io.BytesIO()
    with pikepdf.open(io.BytesIO(_read_regular_file(path))) as pdf:
        pdf.save(output, encryption=pikepdf.Encryption(
            user=code, owner=secrets.token_urlsafe(32), R=6, aes=True, metadata=True))
    return output.getvalue()


# -- which address the listener binds ---------------------------------------------

class ShareUnavailable(Exception):
    """The listener cannot open (the message is for the technician, translated)."""


SIOCGIFADDR = 0x8915


def interface_address(name: str) -> str:
    """The IPv4 address of the network interface ``name`` (the bus's wifi hotspot)."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        raise ShareUnavailable(_("the network interface '{name}' does not exist on this "
                                 "terminal").format(name=name)) from None
    request = struct.pack("256s", name.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            answer = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, request)
        except OSError:
            raise ShareUnavailable(_("the network interface '{name}' has no IPv4 address "
                                     "(is the wifi switched on?)").format(name=name)) from None
    return socket.inet_ntoa(answer[20:24])


def listening_socket(listen: str, interface: str, port: int) -> socket.socket:
    """A bound socket on ``listen`` if the site gives an address, else on the
    interface's address, also tied to that interface (SO_BINDTODEVICE) so that
    packets reaching that address through another interface are not answered."""
    host = listen or interface_address(interface)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if not listen:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            except PermissionError:
                log.warning("share listener: SO_BINDTODEVICE refused; bound by address only")
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ShareUnavailable(_("cannot listen on {address} port {port}: {error}").format(
            address=host, port=port, error=error.strerror or error)) from None
    return sock


# -- the listener ---------------------------------------------------------------------

NOT_FOUND = "Ce lien n'existe pas ou a expiré. / This link does not exist or has expired.\n"


def share_app(links: ShareLinks) -> Callable[..., Iterable[bytes]]:
    """The WSGI application: ``GET /s/<token>`` once, 404 for everything else."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        try:
            return serve(environ, start_response)
        except Exception as error:  # waitress would log the path, token included
            log.error("share listener: %s", type(error).__name__)
            start_response("500 Internal Server Error", [("Content-Length", "0")],
                           sys.exc_info())
            return [b""]

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        token = path[3:] if environ["REQUEST_METHOD"] == "GET" and path.startswith("/s/") else ""
        share = links.take(token) if token and "/" not in token else None
        body = None
        if share is not None:
            try:
                body = encrypted_pdf(share.path, share.code)
            except (OSError, pikepdf.PdfError) as error:
                log.warning("share listener: document not served (%s)", type(error).__name__)
        if body is None:
            text = NOT_FOUND.encode()
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"),
                                             ("Content-Length", str(len(text)))])
            log.info("share listener: %s 404", environ["REQUEST_METHOD"])
            return [text]
        start_response("200 OK", [
            ("Content-Type", "application/pdf"), ("Content-Length", str(len(body))),
            ("Content-Disposition", 'attachment; filename="document.pdf"'),
            ("Cache-Control", "no-store")])
        log.info("share listener: GET 200 (%d bytes)", len(body))
        # Served straight from this buffer: waitress would spool a large response
        # given as an iterable to a temporary file on disk.
        return environ["wsgi.file_wrapper"](io.BytesIO(body), 64 * 1024)

    return app


class _Redact(logging.Filter):
    """waitress logs request paths in some messages; here a path carries a token."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = TOKEN_IN_PATH.sub("/s/…", record.getMessage()), ()
        return True


TOKEN_IN_PATH = re.compile(r"/s/[^\s'\"]*")
_waitress_log = logging.getLogger("kiosk.sharing.waitress")
_waitress_log.addFilter(_Redact())


class _Channel(HTTPChannel):
    logger = _waitress_log


class _BoundedServer(TcpWSGIServer):
    """waitress's server, plus deadlines counted from accept, not from the last byte:
    a client that trickles a byte a second never looks idle to ``channel_timeout``."""

    channel_class = _Channel
    logger = _waitress_log
    request_deadline = 10.0      # seconds to send a whole request (line and headers)
    connection_deadline = 300.0  # seconds for everything, the download included

    def maintenance(self, now: float) -> None:
        super().maintenance(now)
        for channel in list(self.active_channels.values()):
            age = now - channel.creation_time
            waiting = not channel.requests and not channel.total_outbufs_len
            if age > self.connection_deadline or (waiting and age > self.request_deadline):
                channel.will_close = True


LIMITS = {
    "threads": 2,                     # encrypting is quick; downloads are one at a time
    "connection_limit": 48,           # more wait in the kernel's queue (backlog)
    "backlog": 64,
    "max_request_header_size": 8192,  # a phone's GET is well under 2 kB
    "max_request_body_size": 1,       # GET only: any body is refused (413)
    "recv_bytes": 1024,
    "channel_timeout": 10,
    "cleanup_interval": 1,            # deadlines are checked every second
    "asyncore_use_poll": True,        # select() fails past 1,024 descriptors
    "ident": "plus-kiosk-share",
    "expose_tracebacks": False,
}


class ShareServer:
    """The separate listener, in a thread of the daemon.

    ``start()`` never fails: when the wifi is not up yet at boot, the error is
    logged and ``ensure_open()`` tries again at the next share (the resident
    then gets « not available » only if it still cannot open)."""

    def __init__(self, links: ShareLinks, *, listen: str = "", interface: str = "",
                 port: int = 0, public_url: str = "", request_deadline: float | None = None):
        self.links = links
        self.listen, self.interface, self.port = listen, interface, port
        self.public_url = public_url.rstrip("/")
        self.request_deadline = request_deadline
        self.base_url = ""
        self._server: _BoundedServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        try:
            self.ensure_open()
        except ShareUnavailable as error:
            log.error("share listener not started: %s", error)

    def ensure_open(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            if self.listen and self.interface:
                log.warning("share listener: [sharing] listen = %s is set, so interface %s "
                            "is not used", self.listen, self.interface)
            if self.listen in ("0.0.0.0", "::"):
                log.warning("share listener on every interface, the 4G uplink included: "
                            "name the wifi's interface in [sharing] interface")
            sock = listening_socket(self.listen, self.interface, self.port)
            adjustments = Adjustments(sockets=[sock], **LIMITS)
            dispatcher = ThreadedTaskDispatcher()
            dispatcher.set_thread_count(adjustments.threads)
            server = _BoundedServer(share_app(self.links), map={}, _sock=sock,
                                    dispatcher=dispatcher, adj=adjustments, bind_socket=False,
                                    sockinfo=(sock.family, sock.type, sock.proto,
                                              sock.getsockname()))
            if self.request_deadline is not None:
                server.request_deadline = self.request_deadline
            host, port = sock.getsockname()[:2]
            self.base_url = self.public_url or (
                f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}")
            self._server = server
            self._thread = threading.Thread(target=self._serve, name="share-listener",
                                            daemon=True)
            self._thread.start()
            log.info("share listener on %s port %d", host, port)

    def _serve(self) -> None:
        server = self._server
        assert server is not None
        while not self._stopping.is_set():
            wasyncore.loop(timeout=0.5, map=server._map, use_poll=True, count=1)
        wasyncore.close_all(server._map)
        server.task_dispatcher.shutdown(timeout=5)

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def url_for(self, share: Share) -> str:
        return f"{self.base_url}/s/{share.token}"
