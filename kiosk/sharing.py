"""One-time links that hand a scan to the resident's phone.

The phone is on the terminal's own network; it scans a QR code and downloads
the PDF once. A link dies at its first download, after its lifetime, or at the
wipe, whichever comes first. Links are served by their own minimal listener
that answers nothing but ``GET /s/<token>``, so opening it to the network
exposes no other part of the daemon.
"""

from __future__ import annotations

import base64
import io
import logging
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import qrcode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Share:
    token: str
    path: Path
    expires_at: float


class ShareLinks:
    """The live links. Also a session cleaner."""

    name = "share links"

    def __init__(self, lifetime_seconds: int, clock: Callable[[], float] = time.time):
        self.lifetime = lifetime_seconds
        self.clock = clock
        self._links: dict[str, Share] = {}
        self._lock = threading.Lock()

    def create(self, path: Path) -> Share:
        share = Share(secrets.token_urlsafe(32), path, self.clock() + self.lifetime)
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


class _Handler(BaseHTTPRequestHandler):
    server_version = "plus-kiosk-share"
    sys_version = ""
    timeout = 10  # the listener faces the public wifi: idle connections are dropped
    links: ShareLinks

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        token = self.path[3:] if self.path.startswith("/s/") else ""
        share = self.links.take(token) if token and "/" not in token else None
        if share is None:
            self._plain(404, "Ce lien n'existe pas ou a expiré.\n")
            return
        try:
            with share.path.open("rb") as handle:
                size = share.path.stat().st_size
                self.send_response(200)
                self.send_header("Content-Type", "application/pdf")
                self.send_header("Content-Length", str(size))
                self.send_header("Content-Disposition", 'attachment; filename="document.pdf"')
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                shutil.copyfileobj(handle, self.wfile)
        except OSError:
            self._plain(404, "Ce lien n'existe pas ou a expiré.\n")

    def _plain(self, status: int, text: str) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:  # noqa: N802
        self._plain(404, "")

    do_POST = do_PUT = do_DELETE = do_HEAD  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # request lines carry the tokens: they stay out of the logs

    def log_request(self, code: object = "-", size: object = "-") -> None:
        log.info("share listener: %s %s", self.command, code)


class ShareServer:
    """The separate listener, in a thread of the daemon."""

    def __init__(self, links: ShareLinks, host: str, port: int, public_url: str = ""):
        handler = type("Handler", (_Handler,), {"links": links})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        bound_host, bound_port = self.httpd.server_address[:2]
        self.base_url = public_url.rstrip("/") or f"http://{bound_host}:{bound_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="share-listener",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url_for(self, share: Share) -> str:
        return f"{self.base_url}/s/{share.token}"
