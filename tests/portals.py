"""Small fake portals on 127.0.0.1 for the browser and shell tests.

One HTTP server answers for every test host name (the browser maps them all to
127.0.0.1 with Chromium's --host-resolver-rules) and records which host each
request was for, so a test can prove that nothing reached a refused host.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import escapes

ALLOWED_HOST = "portal.test"
EVIL_HOST = "evil.test"

# Every clickable thing sits at a fixed place (the browser window is at 0,0).
LINKS = [
    ("file", "file:///etc/passwd"),
    ("javascript", "javascript:location.href='http://evil.test:{port}/from-javascript'"),
    ("data", "data:text/html,<h1>EVIL data page</h1>"),
    ("userinfo", "http://portal.test@evil.test:{port}/userinfo"),
    ("hexip", "http://0x7f.0.0.1:{port}/hex-ip"),
    ("redirect", "/redirect"),
    ("popup-link", "http://evil.test:{port}/target-blank\" target=\"_blank"),
    ("download-exe", "/files/outil.exe"),
    ("download-pdf", "/files/avis.pdf"),
]


FORM_FIELD = (360, 180)
MAIL_BACKGROUND = "#1f6f3f"  # /messagerie's page: dark green, the portal's pages are white


def keyboard_key(key: str, screen=(1280, 800)) -> tuple[int, int]:
    """Where the on-page keyboard draws ``key`` (see keyboard.js: fixed geometry)."""
    rows = [list("1234567890") + ["⌫"], list("azertyuiopé"), list("qsdfghjklmè"),
            ["⇧"] + list("wxcvbnàçù@"), [".", "-", "_", "'", " ", "↵", "▼"]]
    top = screen[1] - (8 + 5 * 64 + 4 * 8 + 8)
    size = min(64, max(48, (screen[0] - 96) / 11))  # keys narrow beside the guide panel
    for r, row in enumerate(rows):
        if key in row:
            widths = [size * 5 if k == " " else size for k in row]
            left = (screen[0] - (sum(widths) + 8 * (len(row) - 1))) // 2
            c = row.index(key)
            return int(left + sum(widths[:c]) + 8 * c + widths[c] / 2), top + 8 + r * 72 + 32
    raise KeyError(key)


def link_position(name: str) -> tuple[int, int]:
    index = [n for n, _ in LINKS].index(name)
    return 60 + (index % 3) * 400 + 150, 200 + (index // 3) * 110 + 40


def _page(title: str, body: str) -> bytes:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>"
            "<style>body{margin:0;font:24px sans-serif} a.big{position:absolute;display:block;"
            "width:300px;height:80px;background:#dde;text-align:center;line-height:80px}"
            "</style></head><body>" + body + "</body></html>").encode()


def _avis_pdf() -> bytes:
    """A real one-page PDF (the kind a portal lets residents save), made with reportlab."""
    import io
    from reportlab.pdfgen import canvas
    buffer = io.BytesIO()
    document = canvas.Canvas(buffer)
    document.drawString(72, 720, "Avis de situation - portail de test")
    document.showPage()
    document.save()
    return buffer.getvalue()


PDF = _avis_pdf()

# /canary/<word>?…: a portal page whose address carries a resident's canary (/canary
# redirects there, to Portals.canary), with the
# form of "/" (same place, for the on-page keyboard) and a link to a PDF whose text and
# suggested file name carry it (tests/test_canary_sweep.py).
CANARY_DOWNLOAD = (360, 340)   # the download link's centre, in the browser window
CANARY_HEAVY_PAGES = 7         # pages of vector art after the first: a print that lasts


@functools.lru_cache(maxsize=4)
def canary_pdf(word: str) -> bytes:
    """A notice whose every page says ``word``; the pages after the first also draw one
    form of 60,000 lines (from a fixed seed), which Ghostscript works through again for
    each page: the job prints for seconds, so a test can end the session meanwhile."""
    import io
    import random
    from reportlab.pdfgen import canvas
    buffer = io.BytesIO()
    document = canvas.Canvas(buffer, pageCompression=1)
    shapes = random.Random(972)
    document.beginForm("art")
    for _ in range(60000):
        document.line(shapes.uniform(0, 595), shapes.uniform(0, 842), shapes.uniform(0, 595),
                      shapes.uniform(0, 842))
    document.endForm()
    for page in range(1 + CANARY_HEAVY_PAGES):
        if page:
            document.doForm("art")
        document.drawString(72, 720, f"Avis de situation - {word} - page {page + 1}")
        document.showPage()
    document.save()
    return buffer.getvalue()


@dataclass
class Portals:
    server: ThreadingHTTPServer
    hits: list[tuple[str, str]] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)       # User-Agent headers received
    escapes: list[str] = field(default_factory=list)      # /escape/next serves these in turn
    escaped_to: str = ""                                  # host:port of the refused listener
    done: list[str] = field(default_factory=list)         # escape pages that finished
    canary: str = ""                                      # /canary sends the browser there

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def url(self, path: str = "/", host: str = ALLOWED_HOST) -> str:
        return f"http://{host}:{self.port}{path}"

    def hosts_hit(self) -> set[str]:
        return {host for host, _ in self.hits}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start() -> Portals:
    portals: Portals

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def send(self, status: int, body: bytes, kind: str = "text/html; charset=utf-8",
                 **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
            portals.hits.append((host, self.path))
            portals.agents.append(self.headers.get("User-Agent") or "")
            port = portals.port
            if host != ALLOWED_HOST:
                self.send(200, _page("EVIL", "<h1>EVIL page reached</h1>"))
            elif self.path == "/":
                self.send(200, _page("Portail test", (
                    "<h1 id='title'>Portail de test</h1>"
                    "<form id='form' action='/merci'><label for='fiscal'>Numéro fiscal</label>"
                    "<input id='fiscal' name='fiscal' style='position:absolute;left:60px;"
                    "top:150px;width:600px;height:60px;font-size:32px'></form>")))
            elif self.path.split("?")[0] == "/messagerie":  # a webmail (test_shell_webmail)
                self.send(200, _page("Messagerie", (
                    f"<style>body{{background:{MAIL_BACKGROUND}}}</style>"
                    "<h1>Votre code : 482913</h1><form action='/messagerie'>"
                    "<input id='q' name='q' style='position:absolute;left:60px;top:150px;"
                    "width:600px;height:60px;font-size:32px'></form>")))
            elif self.path == "/upload":
                self.send(200, _page("Envoi", (
                    "<h1>Justificatif de domicile</h1><input type='file' id='proof' "
                    "style='position:absolute;left:60px;top:150px;width:400px;height:80px' "
                    "onchange=\"location.href='/merci?file='+encodeURIComponent("
                    "this.files[0].name)\">")))
            elif self.path.startswith("/merci"):
                self.send(200, _page("Merci", f"<h1>Merci</h1><p id='got'>{self.path}</p>"))
            elif self.path == "/escape":
                links = "".join(
                    f"<a class='big' id='{name}' href=\"{href.format(port=port)}\" "
                    f"style='left:{60 + (i % 3) * 400}px;top:{200 + (i // 3) * 110}px'>{name}</a>"
                    for i, (name, href) in enumerate(LINKS))
                self.send(200, _page("Escape", (
                    "<h1 id='title'>Escape attempts</h1>" + links +
                    f"<iframe src='http://evil.test:{port}/iframe' style='position:absolute;"
                    "left:60px;top:560px;width:300px;height:100px'></iframe>"
                    f"<img src='http://evil.test:{port}/pixel.png'>"
                    f"<script>fetch('http://evil.test:{port}/fetch').catch(() => 0);"
                    f"window.open('http://evil.test:{port}/window-open');"
                    f"new Image().src = 'http://{EVIL_HOST}:{port}/beacon';</script>")))
            elif self.path == "/escape/next":
                self.send(302, b"", Location="/escape/" + portals.escapes.pop(0))
            elif self.path.startswith("/escape/") and self.path[8:] in escapes.ESCAPES:
                self.send(200, escapes.page(self.path[8:], portals.escaped_to).encode())
            elif self.path == "/escape-frame-top":
                self.send(200, escapes.frame_top(portals.escaped_to).encode())
            elif self.path.startswith("/escape-done?"):
                portals.done.append(self.path.split("?", 1)[1])
                self.send(204, b"")
            elif self.path == "/canary":  # the test's site file never holds the canary
                self.send(302, b"", Location=f"/canary/{portals.canary}?q={portals.canary}")
            elif self.path.startswith("/canary/"):
                word = self.path[len("/canary/"):].split("?")[0].split("/")[0]
                if self.path.endswith("/avis.pdf"):
                    self.send(200, canary_pdf(word), "application/pdf", Content_Disposition=(
                        f'attachment; filename="avis-{word}.pdf"'))
                    return
                x, y = CANARY_DOWNLOAD
                self.send(200, _page("Dossier", (
                    "<h1 id='title'>Votre dossier</h1>"
                    "<form id='form' action='/merci'><label for='fiscal'>Numéro fiscal</label>"
                    "<input id='fiscal' name='fiscal' style='position:absolute;left:60px;"
                    "top:150px;width:600px;height:60px;font-size:32px'></form>"
                    f"<a class='big' id='avis' href='/canary/{word}/avis.pdf' "
                    f"style='left:{x - 150}px;top:{y - 40}px'>Avis PDF</a>")))
            elif self.path == "/redirect":
                self.send(302, b"", Location=f"http://evil.test:{port}/redirected")
            elif self.path == "/files/avis.pdf":
                self.send(200, PDF, "application/pdf",
                          Content_Disposition='attachment; filename="avis-imposition.pdf"')
            elif self.path == "/files/outil.exe":
                self.send(200, b"MZ\x90\x00", "application/x-msdownload",
                          Content_Disposition='attachment; filename="outil.exe"')
            else:
                self.send(404, _page("Introuvable", "<h1>404</h1>"))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    portals = Portals(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return portals
