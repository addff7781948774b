"""``kiosk-browser``: one resident session's browser (pywebview on Qt WebEngine).

The second promise lives here: nobody leaves the allowlist. The site's policy is
installed as a request interceptor on the (off-the-record) profile before the
first page loads, so every request — page, frame, image, script, XHR, popup,
download — is decided by it, whatever a page tries. Navigation checks on top of
that only exist to show residents a friendly page instead of an error.

Everything a browser would normally offer to leave the page is off: no context
menu, no devtools, no native print or file dialogs, no shortcuts that open
anything, popups land in the same view (if allowed), downloads only as PDF or
images into the session's downloads directory.

Chromium's sandbox stays on. It cannot run as root, so root is refused unless
``--no-sandbox`` is given explicitly — which only tests run as root do.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
import threading
import time
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from kiosk import config as site_config
from kiosk.browser import network
from kiosk.browser.audit import AuditLog
from kiosk.i18n import _, language_from_environment, set_language
from kiosk.weburl import address_only

DOWNLOAD_TYPES = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg"}
ACTIVITY_INTERVAL_SECONDS = 5.0
# Shortcuts that would open, save, print, inspect or close something.
BLOCKED_CTRL_KEYS = set("NOSPWTLQUJHDGRK")


def parse_geometry(text: str | None) -> tuple[int, int, int, int] | None:
    if not text:
        return None
    parts = [int(p) for p in text.split(",")]
    if len(parts) != 4 or parts[2] <= 0 or parts[3] <= 0:
        raise ValueError(text)
    return parts[0], parts[1], parts[2], parts[3]


def _valid_geometry(text: str) -> bool:
    try:
        return parse_geometry(text) is not None
    except ValueError:
        return False


def refused_page(url: str, back_url: str) -> str:
    """The friendly local page shown instead of a refused site."""
    template = (resources.files("kiosk.browser") / "refused.html").read_text(encoding="utf-8")
    host = url.split("//", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1] or url[:60]
    return template.format(
        lang=html.escape(os.environ.get("KIOSK_LANGUAGE", "fr")),
        title=html.escape(_("This site is not reachable from this kiosk")),
        explanation=html.escape(_("For your safety, this kiosk only opens the public-service "
                                  "sites shown on the home screen.")),
        host=html.escape(host), back=html.escape(_("Go back")),
        back_url=html.escape(back_url, quote=True))


class KioskBrowser:
    """The policy, the audit log and the session's folders, wired into Qt."""

    def __init__(self, policy: Any, start_url: str, audit: AuditLog, downloads: Path | None,
                 uploads: list[Path], daemon_socket: str | None):
        self.policy = policy
        self.start_url = start_url
        self.last_allowed = start_url
        self.audit = audit
        self.downloads = downloads
        self.uploads = uploads
        self.daemon_socket = daemon_socket
        self.own_page_pending = False
        self.view: Any = None
        self.geometry: tuple[int, int, int, int] | None = None
        self.popups: list[Any] = []
        self._last_activity = 0.0
        self._location = ""
        self._location_busy = False

    # -- every request ---------------------------------------------------------------

    def intercept(self, info: Any) -> None:
        from qtpy.QtWebEngineCore import QWebEngineUrlRequestInfo as Info

        url = info.requestUrl().toString()
        resource = info.resourceType()
        main_frame = resource == Info.ResourceType.ResourceTypeMainFrame
        frame = main_frame or resource == Info.ResourceType.ResourceTypeSubFrame
        if main_frame and url.startswith("data:") and self.own_page_pending \
                and info.navigationType() == Info.NavigationType.NavigationTypeTyped:
            self.own_page_pending = False  # one page of ours, once
            self.audit.decision("kiosk:refused-page", True, "kiosk:own-page", "mainframe", True)
            return
        initiator = info.initiator().toString() or None
        secure = self.policy.secure_version(url)
        if secure is not None:  # http:// to an allowed host: go there encrypted instead
            from qtpy.QtCore import QUrl
            self.audit.decision(url, True, "kiosk:https-upgrade", "upgrade", main_frame)
            info.redirect(QUrl(secure))
            return
        verdict = self.policy.decide(url, subresource=not frame, initiator=initiator)
        name = str(resource).rsplit(".", 1)[-1].replace("ResourceType", "").lower()
        self.audit.decision(verdict.url, verdict.allowed, verdict.rule, name, main_frame)
        if not verdict.allowed:
            info.block(True)

    # -- page navigations (for the resident's sake) --------------------------------------

    def accept_navigation(self, url: Any, nav_type: Any, is_main_frame: bool) -> bool:
        from qtpy.QtWebEngineCore import QWebEnginePage

        text = url.toString()
        if not is_main_frame:
            return True  # frames are decided by the interceptor alone
        if nav_type == QWebEnginePage.NavigationType.NavigationTypeTyped:
            return True  # only this program "types": its own loads, gated by the interceptor
        verdict = self.policy.decide(text)
        if verdict.allowed or self.policy.secure_version(text):
            return True  # (an http:// link is upgraded by the interceptor)
        self.audit.event("refused_navigation", url=verdict.url, rule=verdict.rule)
        self.show_refused(verdict.url)
        return False

    def show_refused(self, url: str) -> None:
        from qtpy import QtCore

        def load() -> None:
            self.own_page_pending = True
            self.view.webview.setHtml(refused_page(url, self.last_allowed))

        QtCore.QTimer.singleShot(0, load)

    def open_popup(self, url: Any) -> None:
        """window.open / target=_blank: the same view if allowed, else a short notice."""
        self.audit.event("popup", url=url.toString())
        verdict = self.policy.decide(url.toString())
        if verdict.allowed:
            self.view.webview.load(url)
            return
        self.audit.event("refused_navigation", url=verdict.url, rule=verdict.rule)
        self.toast(_("This site is not reachable from this kiosk."))

    # -- downloads and uploads ------------------------------------------------------------

    def on_download(self, download: Any) -> None:
        url = download.url().toString()
        mime = download.mimeType().split(";")[0].strip().lower()
        verdict = self.policy.decide(url, subresource=True)
        if self.downloads is None or mime not in DOWNLOAD_TYPES or not verdict.allowed:
            self.audit.event("download", url=url, mime=mime, allowed=False)
            download.cancel()
            self.toast(_("Only PDF documents and pictures can be saved on this kiosk."))
            return
        name = Path(download.suggestedFileName() or "document").stem[:60] or "document"
        name = "".join(c if c.isalnum() or c in "-_ " else "_" for c in name)
        download.setDownloadDirectory(str(self.downloads))
        download.setDownloadFileName(name + DOWNLOAD_TYPES[mime])
        download.accept()
        self.audit.event("download", url=url, mime=mime, allowed=True,
                         file=str(self.downloads / (name + DOWNLOAD_TYPES[mime])))
        self.toast(_("Document saved: you can print it with the « Print » button."))

    def choose_files(self, multiple: bool) -> list[str]:
        """The file chooser: only this session's scans and downloads."""
        from kiosk.browser.chooser import choose

        files = sorted((p for folder in self.uploads if folder.is_dir()
                        for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")),
                       key=lambda p: p.stat().st_mtime, reverse=True)
        chosen = choose(self.view, files, multiple)
        self.audit.event("upload", files=[p.name for p in chosen])
        return [str(p) for p in chosen]

    def toast(self, message: str) -> None:
        script = ("(() => { const d = document.createElement('div'); d.textContent = %r;"
                  "d.style.cssText = 'position:fixed;left:50%%;top:24px;transform:translateX(-50%%);"
                  "background:#1d2733;color:#fff;font:28px sans-serif;padding:20px 32px;"
                  "border-radius:12px;z-index:2147483647';"
                  "document.body.appendChild(d); setTimeout(() => d.remove(), 6000); })()"
                  % message)
        self.view.webview.page().runJavaScript(script)

    # -- input and shortcuts -------------------------------------------------------------

    def filter_event(self, event: Any) -> bool:
        """True to swallow the event. Real input also keeps the session alive."""
        from qtpy import QtCore

        kind = event.type()
        if kind in (QtCore.QEvent.Type.MouseButtonPress, QtCore.QEvent.Type.TouchBegin,
                    QtCore.QEvent.Type.KeyPress, QtCore.QEvent.Type.Wheel):
            self.report_activity()
        if kind in (QtCore.QEvent.Type.KeyPress, QtCore.QEvent.Type.ShortcutOverride):
            key = event.key()
            modifiers = event.modifiers()
            ctrl = bool(modifiers & QtCore.Qt.KeyboardModifier.ControlModifier)
            alt = bool(modifiers & QtCore.Qt.KeyboardModifier.AltModifier)
            if QtCore.Qt.Key.Key_F1 <= key <= QtCore.Qt.Key.Key_F35 and \
                    key != QtCore.Qt.Key.Key_F5:
                return True
            if alt and key == QtCore.Qt.Key.Key_F4:
                return True
            if ctrl and 0 < key < 0x110000:
                letter = chr(key).upper()
                shift = bool(modifiers & QtCore.Qt.KeyboardModifier.ShiftModifier)
                if letter in BLOCKED_CTRL_KEYS or (shift and letter in "ICJ"):
                    return True
        if kind in (QtCore.QEvent.Type.ContextMenu, QtCore.QEvent.Type.Drop,
                    QtCore.QEvent.Type.DragEnter):
            return True
        return False

    def report_activity(self) -> None:
        now = time.monotonic()
        if self.daemon_socket is None or now - self._last_activity < ACTIVITY_INTERVAL_SECONDS:
            return
        self._last_activity = now

        def send() -> None:
            from kiosk.daemon_client import DaemonClient, DaemonError
            try:
                DaemonClient(self.daemon_socket, timeout=2).activity()
            except DaemonError:
                pass

        threading.Thread(target=send, daemon=True).start()

    # -- wiring into pywebview's Qt backend --------------------------------------------

    def install(self) -> None:
        """Swap pywebview's Qt classes for ones that route through this object."""
        from kiosk.browser.qtview import install
        install(self)

    def serve_control(self, path: str) -> None:
        """The shell's buttons reach this browser through its control socket."""
        from kiosk.browser.control import serve
        self._relay = serve(path, self.on_command, _valid_geometry)

    def on_command(self, word: str) -> None:
        from qtpy.QtCore import QUrl

        self.audit.event("command", word=word)
        view = self.view.webview
        if word == "back" and view.history().canGoBack():
            view.back()
        elif word in ("back", "start"):
            view.load(QUrl(self.start_url))
        elif word == "reload":
            view.reload()
        elif word == "raise":  # the shell's warning is over: the page comes back on top
            self.view.raise_()
            self.view.activateWindow()
        elif word.startswith("geometry "):  # the guide panel opened or closed beside us
            self.geometry = parse_geometry(word[9:])
            x, y, width, height = self.geometry
            self.view.setFixedSize(width, height)
            self.view.move(x, y)

    def on_url_changed(self, qurl: Any) -> None:
        """Tell the daemon which page is shown, so the guide panel can follow.

        Only the latest address matters: a burst of redirects sends one report.
        """
        url = address_only(qurl.toString())  # the panel needs the path, never the query
        if self.daemon_socket is None or not url.startswith(("http:", "https:")):
            return
        self._location = url
        if self._location_busy:
            return
        self._location_busy = True

        def send() -> None:
            from kiosk.daemon_client import DaemonClient, DaemonError
            sent = None
            try:
                while sent != self._location:
                    sent = self._location
                    try:
                        DaemonClient(self.daemon_socket, timeout=2).report_location(sent)
                    except DaemonError:
                        return
            finally:
                self._location_busy = False

        threading.Thread(target=send, daemon=True).start()

    def on_load_finished(self, ok: bool) -> None:
        url = self.view.webview.url().toString()
        if ok and url.startswith(("http:", "https:")):
            self.last_allowed = url  # where « Go back » returns: a page that did load
        self.audit.event("loaded", ok=ok, url=url[:200] if not url.startswith("data:")
                         else "kiosk:refused-page", title=self.view.webview.title())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk-browser", description=_(
        "The PLUS kiosk browser: one resident session, allowed sites only."))
    parser.add_argument("--url", required=True, help=_("page to open"))
    parser.add_argument("--config", help=_("site file (default: the one in use)"))
    parser.add_argument("--record", help=_("write every request decision to this file "
                                           "(JSON lines)"))
    parser.add_argument("--geometry", help=_("x,y,width,height of the window (default: "
                                             "full screen)"))
    parser.add_argument("--no-sandbox", action="store_true",
                        help=_("tests run as root only: turn Chromium's sandbox off"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    set_language(os.environ.get("KIOSK_LANGUAGE") or language_from_environment())
    args = build_parser().parse_args(argv)
    if args.no_sandbox and os.geteuid() != 0:
        print(_("--no-sandbox is only for tests run as root."), file=sys.stderr)
        return 2
    if os.geteuid() == 0 and not args.no_sandbox:
        print(_("The kiosk browser does not run as root: Chromium's sandbox needs an "
                "ordinary user."), file=sys.stderr)
        return 2
    try:
        config = site_config.load(args.config)
        geometry = parse_geometry(args.geometry)
    except site_config.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except ValueError:
        print(_("--geometry takes x,y,width,height"), file=sys.stderr)
        return 2
    policy = config.policy()
    start = policy.decide(args.url)
    if not start.allowed:
        print(_("This site is not reachable from this kiosk.") + f" ({start.rule})",
              file=sys.stderr)
        return 1

    network.chromium_flags(config, args.no_sandbox)
    import webbrowser

    import webview

    # Nothing may ever leave for a system browser.
    webbrowser.open = webbrowser.open_new = webbrowser.open_new_tab = lambda *a, **k: False
    webview.settings["OPEN_EXTERNAL_LINKS_IN_BROWSER"] = False
    webview.settings["ALLOW_DOWNLOADS"] = False   # ours are wired by hand, not pywebview's
    webview.settings["ALLOW_FILE_URLS"] = False

    downloads = os.environ.get("KIOSK_DOWNLOADS_DIR")
    uploads = [Path(p) for p in (os.environ.get("KIOSK_SCANS_DIR"), downloads) if p]
    audit = AuditLog(args.record)
    kiosk = KioskBrowser(policy, start.url, audit, Path(downloads) if downloads else None,
                         uploads, os.environ.get("KIOSK_DAEMON_SOCKET"))
    kiosk.geometry = geometry
    kiosk.install()
    if not args.no_sandbox:  # pywebview turns the sandbox off on some distributions
        flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
        os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = flags.replace("--no-sandbox", "")
    if os.environ.get("KIOSK_BROWSER_CONTROL"):
        kiosk.serve_control(os.environ["KIOSK_BROWSER_CONTROL"])
    options: dict[str, Any] = {"frameless": True, "easy_drag": False, "text_select": True,
                               "fullscreen": geometry is None}
    if geometry:
        options.update(x=geometry[0], y=geometry[1], width=geometry[2], height=geometry[3])
    window = webview.create_window("PLUS kiosk", html="<!doctype html><title></title>", **options)
    audit.event("start", url=start.url, pid=os.getpid())
    # (set before the first page: changing it later reloads what is shown)
    webview.start(gui="qt", private_mode=True, debug=False, user_agent=network.plain_chrome())
    audit.event("exit")
    audit.close()
    del window
    return 0


if __name__ == "__main__":
    sys.exit(main())
