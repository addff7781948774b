"""``kiosk-shell``: what a resident sees and touches (Kivy, full screen, touch first).

The shell holds no resident data: sessions, the idle clock, printing and the
wipe belong to the daemon, which the shell only asks through
``kiosk.daemon_client``. Daemon calls run off the UI thread, so a slow printer
never freezes the screen; the daemon's state (polled every second) drives the
idle warning and the return to the welcome screen, even when the session ended
without the shell (idle timeout, agent reset).

Layout lives in ``kiosk.kv``; this module is behaviour only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from kiosk import config as site_config
from kiosk.agent_pin import PinGate, stored_hash
from kiosk.daemon_client import DaemonClient, DaemonError
from kiosk.guides import load_for_site
from kiosk.guides.library import pick
from kiosk.guides.progress import Progress
from kiosk.guides.search import GuideIndex
from kiosk.i18n import LANGUAGES, N_, translation
from kiosk.shell import heartbeat, helpme, speech, webmail

WELCOME_CYCLE_SECONDS = 3.0
END_SCREEN_SECONDS = 6.0
ACTIVITY_INTERVAL_SECONDS = 5.0
CONTROL_BAR_WIDTH = 260
# Screens shown during a session (touches there keep it alive; its end leaves them).
SESSION_SCREENS = ("home", "portal", "guides", "guide", "documents", "webmail")
# Texts the layout (kiosk.kv) shows through app.t(): listed here for the catalogues.
SHELL_TEXTS = (
    N_("Agent PIN"), N_("Agent menu"), N_("Are you still there?"), N_("Back"), N_("Cancel"),
    N_("Choose the site you need"), N_("Contrast"), N_("Finish"), N_("Home"),
    N_("I am still here"), N_("Listen"), N_("Back to the previous page"),
    N_("Next stops of the bus:"), N_("Print a test page"), N_("Print"),
    N_("Reset the session"), N_("Restart the screen"), N_("Scan"), N_("Shut down the kiosk"),
    N_("Thank you, and see you soon."),
    N_("The connection is down. It will come back by itself; please wait."),
    N_("The session ends in {seconds} s"),
    N_("Use the buttons on the left to print, scan or finish."),
    N_("Your documents and logins have been erased."),
    N_("Locked for {seconds} s."), N_("Nothing to print yet: save a document from the site first."),
    N_("Printing…"), N_("Scan ready: {pages} page(s)."), N_("Scanning…"),
    N_("Test page sent to the printer."), N_("Wrong PIN."),
    N_("Help / guides"), N_("Step-by-step guides"), N_("Search a guide"), N_("All sites"),
    N_("Guides"), N_("Step {number} of {total}"), N_("Next"), N_("Previous"),
    N_("Print this guide"), N_("Start"), N_("Have at hand"), N_("Close the guide"),
    N_("You will get:"), N_("About {minutes} min"), N_("No guide matches these words."),
    N_("Button to touch:"), N_("Read this guide again on your phone:"),
    N_("Guides for this site"), N_("The guide is being printed."),
    N_("No guide for this site yet."), N_("Careful:"), N_("My documents"),
    N_("Saved from the site"), N_("{pages} page(s)"), N_("Print this document"),
    N_("Back to the site"),
) + webmail.WEBMAIL_TEXTS + helpme.HELP_TEXTS
WELCOME_TEXTS = {"fr": "Touchez l'écran pour commencer",
                 "gcf": "Touché lékran an pou koumansé",
                 "en": "Touch the screen to start"}


def icon_file(icon: str) -> str:
    """A portal's pictogram: bundled by name, or the site's own picture by path."""
    if not icon:
        return ""
    path = Path(icon) if icon.startswith("/") else Path(__file__).with_name("icons") / f"{icon}.png"
    return str(path) if path.is_file() else ""


def has_default_route(route_file: str = "/proc/net/route") -> bool:
    """Offline means no way out: no default route (the bus's 4G link is down)."""
    try:
        lines = Path(route_file).read_text().splitlines()[1:]
    except OSError:
        return True  # cannot tell: do not lock residents out
    return any(line.split()[1:2] == ["00000000"] for line in lines if line.strip())


def build_shell(config: site_config.SiteConfig, socket_path: str, record: str | None,
                size: tuple[int, int] | None) -> Any:
    """Import Kivy only here: its import opens a window and reads the command line."""
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    from kivy.config import Config
    Config.set("kivy", "keyboard_mode", "dock")  # Kivy's own keyboard for the shell's fields
    Config.set("kivy", "keyboard_layout", "azerty")  # the French keyboard residents know
    Config.set("kivy", "exit_on_escape", "0")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    if size:
        Config.set("graphics", "width", str(size[0]))
        Config.set("graphics", "height", str(size[1]))
        Config.set("graphics", "borderless", "1")
        Config.set("graphics", "position", "custom")
        Config.set("graphics", "left", "0")
        Config.set("graphics", "top", "0")
    else:
        Config.set("graphics", "fullscreen", "auto")

    from kivy.app import App
    from kivy.clock import Clock
    from kivy.core.window import Window
    from kivy.lang import Builder
    from kivy.properties import (BooleanProperty, DictProperty, ListProperty, NumericProperty,
                                 StringProperty)

    class ShellApp(helpme.mixin(), webmail.mixin(), App):
        lang = StringProperty(config.site.default_language)
        scale = NumericProperty(1.0)
        contrast = BooleanProperty(False)
        countdown = NumericProperty(-1)
        welcome_text = StringProperty(WELCOME_TEXTS[config.site.default_language])
        message = StringProperty("")
        offline = BooleanProperty(False)
        portals = ListProperty([])
        status = DictProperty({})
        agent_open = BooleanProperty(False)
        site_name = StringProperty(config.site.name)
        stops_text = StringProperty("")
        # guides: the picker's filter, the guide on the detail screen, the panel
        guide_query = StringProperty("")
        guide_portal = StringProperty("")
        guide_detail = DictProperty({})
        guide_open = BooleanProperty(False)
        guide_view = DictProperty({})
        panel_width = NumericProperty(0)
        documents = ListProperty([])
        document = DictProperty({})

        def __init__(self) -> None:
            super().__init__()
            self.config_site = config
            self.socket_path = socket_path
            self.record_path = record
            self.pin = PinGate(stored_hash(config.agent.pin_file))
            self._welcome_index = 0
            self._last_activity = 0.0
            self._sessions_seen = 0  # a status asked for before a session began is stale
            self._agent_taps: list[float] = []
            self._speaking = None
            self.guides = load_for_site(config)
            self.guide_index = GuideIndex(self.guides)
            self.progress: Progress | None = None
            self.current_portal = ""
            self.portals = [{"id": p.id, "url": p.start_url,
                             "names": {lang: getattr(p.name, lang) for lang in LANGUAGES},
                             "guides": len(self.guides.for_portal(p.id)),
                             "icon": icon_file(p.icon)}
                            for p in config.portal]
            self.webmails = webmail.choices(config)
            self.bind(lang=lambda *a: self.refresh_guide_texts(),
                      scale=lambda *a: self.resize_for_panel())

        # -- helpers used by kiosk.kv ----------------------------------------------------

        def t(self, message: str, lang: str) -> str:
            """Translate (kv re-evaluates because ``lang`` is passed in)."""
            return translation(lang).gettext(message)

        def field(self, data: dict[str, Any], key: str, default: Any = "") -> Any:
            """``data[key]`` for kv: written ``app.field(app.d, "k")`` so that kv
            re-evaluates when ``app.d`` changes (it does not for ``app.d.get("k")``)."""
            return data.get(key, default) if data else default

        def fs(self, size: float, scale: float) -> float:
            from kivy.metrics import sp
            return sp(size * scale)

        def colors(self, contrast: bool) -> dict[str, list[float]]:
            if contrast:
                return {"bg": [0, 0, 0, 1], "fg": [1, 1, 0.2, 1], "tile": [0, 0, 0, 1],
                        "tile_fg": [1, 1, 1, 1], "accent": [1, 1, 0.2, 1], "bar": [0, 0, 0, 1],
                        "danger": [1, 1, 0.2, 1], "danger_fg": [0, 0, 0, 1]}
            return {"bg": [0.96, 0.97, 0.98, 1], "fg": [0.07, 0.07, 0.07, 1],
                    "tile": [0.04, 0.36, 0.68, 1], "tile_fg": [1, 1, 1, 1],
                    "accent": [1, 0.82, 0.25, 1], "bar": [0.11, 0.15, 0.2, 1],
                    "danger": [0.75, 0.1, 0.1, 1], "danger_fg": [1, 1, 1, 1]}

        def fill_tiles(self, grid: Any) -> None:
            from kivy.factory import Factory
            grid.clear_widgets()
            for portal in self.portals:
                tile = Factory.PortalTile()  # kv-declared properties exist only after init
                tile.portal = portal
                tile.guide_count = portal["guides"]
                tile.icon = portal["icon"]
                tile.name = portal["names"][config.site.default_language]
                grid.add_widget(tile)

        def fill_pin_pad(self, grid: Any) -> None:
            from kivy.factory import Factory
            grid.clear_widgets()
            field = self.root.ids.pin if self.root else None
            for key in ["1", "2", "3", "4", "5", "6", "7", "8", "9", "⌫", "0", "OK"]:
                button = Factory.BigButton(text=key)
                if key == "⌫":
                    button.bind(on_release=lambda b: setattr(self.root.ids.pin, "text",
                                                             self.root.ids.pin.text[:-1]))
                elif key == "OK":
                    button.bind(on_release=lambda b: self.check_pin(self.root.ids.pin.text))
                else:
                    button.bind(on_release=lambda b, k=key: setattr(
                        self.root.ids.pin, "text", self.root.ids.pin.text + k))
                grid.add_widget(button)
            del field

        # -- the record (tests and field debugging) --------------------------------------

        def record(self, event: str, **details: Any) -> None:
            if not self.record_path:
                return
            with open(self.record_path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"event": event, **details, "time": time.time()},
                                        ensure_ascii=False) + "\n")

        # -- daemon calls, off the UI thread ---------------------------------------------

        def call(self, method: Callable[[DaemonClient], Any],
                 done: Callable[[Any], None] | None = None,
                 failed: Callable[[DaemonError], None] | None = None) -> None:
            def run() -> None:
                client = DaemonClient(self.socket_path, timeout=30, language=self.lang)
                try:
                    result = method(client)
                except DaemonError as error:
                    if failed is not None:
                        Clock.schedule_once(lambda dt, e=error: failed(e))
                    else:
                        Clock.schedule_once(lambda dt, e=error: self.show_message(e.message))
                    return
                finally:
                    client.close()
                if done is not None:
                    Clock.schedule_once(lambda dt, r=result: done(r))
            threading.Thread(target=run, daemon=True).start()

        # -- screens ----------------------------------------------------------------------

        def go(self, name: str) -> None:
            manager = self.root.ids.screens
            if manager.current != name:
                manager.current = name
                self.record("screen", name=name)
                Clock.schedule_once(lambda dt: self.record_layout(), 0.3)

        def record_layout(self) -> None:
            """Where each named control is, in screen pixels (for tests and diagnostics)."""
            if not self.record_path:
                return
            height = Window.height
            targets = {}
            def hidden(widget: Any) -> bool:
                while widget is not None and widget is not widget.parent:
                    if widget.opacity == 0:
                        return True
                    widget = widget.parent
                return False

            for name, widget in self.root.ids.items():
                if widget.get_root_window() is None or hidden(widget) or not widget.width \
                        or not widget.height:
                    continue
                x, y = widget.to_window(*widget.center)
                if 0 <= x <= Window.width and 0 <= y <= height:
                    targets[name] = [int(x), int(height - y)]
            def place(widget: Any) -> list[int]:
                x, y = widget.to_window(*widget.center)
                return [int(x), int(height - y)]

            targets.update(self.mail_targets(place))
            targets.update(self.help_targets(place))
            tiles = self.root.ids.get("tiles")
            if tiles is not None and tiles.get_root_window() is not None:
                for index, tile in enumerate(reversed(tiles.children)):
                    targets[f"tile_{index}"] = place(tile.ids.open)
                    if tile.ids.guides.opacity:
                        targets[f"tile_guides_{index}"] = place(tile.ids.guides)
            for list_id, prefix in (("guide_list", "guide_"), ("panel_list", "panel_guide_")):
                box = self.root.ids.get(list_id)
                if box is not None and box.get_root_window() is not None:
                    for index, item in enumerate(reversed(box.children)):
                        if getattr(item, "guide_id", ""):
                            targets[f"{prefix}{index}"] = place(item)
            from kivy.uix.vkeyboard import VKeyboard
            for keyboard in (w for w in Window.children if isinstance(w, VKeyboard)):
                if not keyboard.layout_geometry or keyboard.y >= height:
                    continue  # a docked keyboard that is not shown
                layout = keyboard.available_layouts[keyboard.layout]
                for line in range(1, layout["rows"] + 1):
                    keys = layout.get(f"normal_{line}", [])
                    for key, (pos, size) in zip(keys, keyboard.layout_geometry.get(
                            f"LINE_{line}", [])):
                        x, y = keyboard.to_parent(pos[0] + size[0] / 2, pos[1] + size[1] / 2)
                        targets[f"vkey_{key[1]}"] = [int(x), int(height - y)]
            pad = self.root.ids.get("pin_pad")
            if pad is not None and pad.get_root_window() is not None:
                for key in pad.children:
                    x, y = key.to_window(*key.center)
                    targets[f"pin_{key.text}"] = [int(x), int(height - y)]
            self.record("layout", screen=self.screen, targets=targets)

        def layout_later(self, delay: float) -> None:
            """Record the layout once something that moves (the touch keyboard) settled."""
            Clock.schedule_once(lambda dt: self.record_layout(), delay)

        @property
        def screen(self) -> str:
            return self.root.ids.screens.current

        def show_message(self, text: str) -> None:
            self.message = text
            self.record("message", text=text)
            Clock.schedule_once(lambda dt: setattr(self, "message", ""), 8)

        def start_session(self) -> None:
            self.call(lambda c: c.start_session(), lambda session: self.on_session(session))

        def on_session(self, session: dict[str, Any]) -> None:
            self._sessions_seen += 1
            self.record("session", id=session["id"])
            self.go("home")

        def browser_geometry(self) -> list[int]:
            """The browser fills what the controls bar and the guide panel leave."""
            width, height = Window.size
            bar = int(CONTROL_BAR_WIDTH * self.scale)
            self.panel_width = int(min(width * 0.42, 380 * self.scale)) if self.guide_open else 0
            return [bar, 0, max(200, width - bar - self.panel_width), height]

        def open_portal(self, portal: dict[str, Any]) -> None:
            self.record("portal", id=portal["id"])
            self.report_usage("portal_opened", portal["id"])
            self.current_portal = portal["id"]
            self.close_guide(resize=False)
            if portal["id"] == webmail.PORTAL_ID:
                self.open_mail_chooser()  # which webmail: kiosk/shell/webmail.py
                return
            geometry = self.browser_geometry()

            def opened(result: Any) -> None:
                self.portal_opened(portal["id"])
                self.go("portal")
            self.call(lambda c: c.open_url(portal["url"], geometry=geometry, language=self.lang),
                      opened)

        # -- guides ----------------------------------------------------------------------

        def open_guides(self, portal_id: str = "") -> None:
            """The guide picker (all guides, or one portal's)."""
            self.guide_portal = portal_id
            self.guide_query = ""
            self.record("guides", portal=portal_id)
            self.go("guides")
            self.fill_guides()

        def search_guides(self, text: str) -> None:
            self.guide_query = text
            self.fill_guides()
            if text:
                self.record("guide_search", query=text,
                            results=[g.id for g in self.matching_guides()])

        def matching_guides(self) -> list[Any]:
            if self.guide_query.strip():
                return self.guide_index.search(self.guide_query, self.guide_portal or None)
            if self.guide_portal:
                return self.guides.for_portal(self.guide_portal)
            return list(self.guides.guides)

        def fill_guides(self, box: Any = None, guides: list[Any] | None = None) -> None:
            from kivy.factory import Factory
            box = box or self.root.ids.guide_list
            box.clear_widgets()
            for guide in self.matching_guides() if guides is None else guides:
                item = Factory.GuideItem()
                item.guide_id = guide.id
                item.title = dict(guide.title)
                item.minutes = guide.minutes
                box.add_widget(item)
            Clock.schedule_once(lambda dt: self.record_layout(), 0.3)

        def guide_item_text(self, title: dict[str, str], minutes: int, lang: str,
                            scale: float) -> str:
            return "{}\n[size={}]{}[/size]".format(
                pick(title, lang), int(self.fs(18, scale)),
                self.t("About {minutes} min", lang).format(minutes=minutes))

        def show_guide(self, guide_id: str) -> None:
            """The guide's first page: what it is for, what to have at hand."""
            guide = self.guides.get(guide_id)
            if guide is None:
                return
            self.record("guide_detail", id=guide_id)
            if self.screen == "portal":  # chosen from the panel: follow it right here
                self.follow_guide(guide_id)
                return
            self.guide_detail = {"id": guide_id}
            self.refresh_guide_texts()
            self.go("guide")

        def start_guide(self) -> None:
            """« Commencer »: the portal opens at the guide's start, the panel beside it."""
            guide = self.guides.get(self.guide_detail.get("id", ""))
            if guide is None:
                return
            self.current_portal = guide.portal
            self.progress = Progress(guide)
            self.guide_open = True
            self.refresh_guide_texts()
            self.record("guide_start", id=guide.id)
            self.report_usage("guide_started", guide.id)
            if guide.portal == webmail.PORTAL_ID:
                self.open_mail_chooser()
                return
            geometry = self.browser_geometry()

            def opened(result: Any) -> None:
                self.portal_opened(guide.portal)
                self.go("portal")
            self.call(lambda c: c.open_url(guide.start_url, geometry=geometry,
                                           language=self.lang), opened)

        def follow_guide(self, guide_id: str) -> None:
            guide = self.guides.get(guide_id)
            self.progress = Progress(guide)
            self.report_usage("guide_started", guide.id)
            location = (self.status.get("session") or {}).get("location", "")
            if location:
                self.progress.follow(location)
            self.refresh_guide_texts()
            self.record("guide_step", id=guide.id, index=self.progress.index)

        def toggle_panel(self) -> None:
            """The portal bar's « Aide / guides »: the panel opens beside the page."""
            if self.guide_open:
                self.close_guide()
                return
            self.guide_open = True
            self.refresh_guide_texts()
            self.fill_guides(self.root.ids.panel_list,
                             self.guides.for_portal(self.current_portal))
            self.resize_for_panel()
            self.record("panel", open=True)

        def close_guide(self, resize: bool = True) -> None:
            was_open = self.guide_open
            self.guide_open = False
            self.progress = None
            self.guide_view = {}
            if was_open and resize:
                self.resize_for_panel()
                self.record("panel", open=False)

        def resize_for_panel(self) -> None:
            geometry = self.browser_geometry()
            if self.screen == "portal":
                for slot in ("portal", "mail") if self.mail_open else ("portal",):
                    self.tell_browser("geometry " + ",".join(str(v) for v in geometry), slot)
                Clock.schedule_once(lambda dt: self.record_layout(), 0.3)

        def refresh_guide_texts(self) -> None:
            """Everything the panel and the detail screen show, in the current language."""
            lang = self.lang
            guide = self.guides.get(self.guide_detail.get("id", ""))
            if guide is not None:
                qr = ""
                if config.guides.public_base_url:
                    qr = self.qr_texture_file(config.guides.public_base_url + guide.id + ".html")
                self.guide_detail = {
                    "id": guide.id, "title": pick(guide.title, lang),
                    "summary": pick(guide.summary, lang),
                    "minutes": self.t("About {minutes} min", lang).format(minutes=guide.minutes),
                    "have": "\n".join("•  " + pick(item, lang) for item in guide.have_at_hand),
                    "end": pick(guide.end_text, lang), "qr": qr}
            if self.progress is None:
                self.guide_view = {}
                return
            step = self.progress.step
            self.guide_view = {
                "id": self.progress.guide.id, "title": pick(self.progress.guide.title, lang),
                "counter": self.t("Step {number} of {total}", lang).format(
                    number=self.progress.index + 1, total=self.progress.total),
                "step_title": pick(step.title, lang), "text": pick(step.text, lang),
                "button": step.button, "warning": pick(step.warning, lang),
                "image": str(step.image) if step.image and step.image.is_file() else "",
                "first": self.progress.index == 0, "last": self.progress.is_last}
            self.note_guide_step(self.progress)  # the last step reached: kiosk/shell/helpme.py

        def qr_texture_file(self, url: str) -> str:
            """A QR image in the shell's cache (public data: the guide's public address)."""
            import hashlib
            import tempfile

            import qrcode
            path = Path(tempfile.gettempdir()) / (
                "plus-kiosk-qr-" + hashlib.sha256(url.encode()).hexdigest()[:16] + ".png")
            if not path.exists():
                qrcode.make(url, border=2).save(str(path))
            return str(path)

        def guide_move(self, step: int) -> None:
            """« Suivant » (+1) / « Précédent » (-1), by hand."""
            if self.progress is None:
                return
            if self.progress.next() if step > 0 else self.progress.previous():
                self.refresh_guide_texts()
                self.record("guide_step", id=self.progress.guide.id, index=self.progress.index,
                            by="hand")
                self.layout_later(0.3)

        def read_step(self) -> None:
            view = self.guide_view
            if view:
                self.read_aloud(". ".join(part for part in (
                    view["counter"], view["step_title"], view["text"], view["warning"]) if part))

        def print_guide(self, guide_id: str) -> None:
            self.record("guide_print", id=guide_id)
            self.call(lambda c: c.print_guide(guide_id, self.lang),
                      lambda result: self.show_message(
                          self.t("The guide is being printed.", self.lang)))

        def tell_browser(self, word: str, slot: str | None = None) -> None:
            """One word (back, raise…) to one of the session's browsers through its control
            socket: by default the one on top (the webmail's or the portal's)."""
            slot = slot or self.shown_slot()
            def job(client: DaemonClient) -> Any:
                import socket
                from kiosk.browser.control import control_address, control_name
                session = client.status()["session"]
                if not session:
                    return None
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as control:
                    control.settimeout(3)
                    try:
                        control.connect(control_address(control_name(session["id"], slot)))
                        control.sendall(word.encode() + b"\n")
                        return control.recv(16)
                    except OSError:
                        return None
            self.call(job)

        def browser_back(self) -> None:
            self.record("back")
            self.tell_browser("back")

        def cover_browser(self, covered: bool) -> None:
            """The warning and offline screens must not hide under the browser window."""
            if self.screen not in ("portal", "documents"):
                return
            if covered:
                Window.raise_window()
            else:
                self.tell_browser("raise")

        def go_home(self) -> None:
            self.close_guide(resize=False)
            self.forget_mail()
            self.call(lambda c: c.close_browser(), lambda result: self.go("home"))

        def finish(self) -> None:
            """« Terminer »: end and wipe, then say so."""
            self.call(lambda c: c.end_session("user"), self.on_ended)

        def on_ended(self, report: dict[str, Any]) -> None:
            self.record("ended", wiped=report.get("wiped"), reason=report.get("reason"))
            self.before_end(report)  # help dies, the end screen's question (helpme.py)
            self.countdown = -1
            self.lang = config.site.default_language  # the next resident starts in French
            self.scale = 1.0
            self.contrast = False
            self.close_guide(resize=False)
            self.guide_detail = {}
            self.forget_mail()
            self.documents = []  # names and the preview of the resident's files: forgotten
            self.document = {}
            if self.root is not None and "document_preview" in self.root.ids:
                self.root.ids.document_preview.texture = None
                self.root.ids.document_list.clear_widgets()
            self.guide_query = ""
            if self.root is not None and "guide_search" in self.root.ids:
                self.root.ids.guide_search.text = ""
            self.go("end")
            Clock.schedule_once(lambda dt: self.go("welcome") if self.screen == "end" else None,
                                END_SCREEN_SECONDS)

        def still_here(self) -> None:
            self.call(lambda c: c.activity(), lambda state: setattr(self, "countdown", -1))

        def set_lang(self, lang: str) -> None:
            self.lang = lang
            self.record("lang", lang=lang)
            self.report_usage("language", lang)
            Clock.schedule_once(lambda dt: self.record_layout(), 0.3)

        def set_scale(self, scale: float) -> None:
            self.scale = scale
            self.record("scale", scale=scale)
            self.report_usage("text_size", helpme.text_size(scale))
            Clock.schedule_once(lambda dt: self.record_layout(), 0.3)

        def toggle_contrast(self) -> None:
            self.contrast = not self.contrast
            self.record("contrast", on=self.contrast)
            self.report_usage("contrast", "on" if self.contrast else "off")

        def read_aloud(self, text: str) -> None:
            if self._speaking is not None and self._speaking.poll() is None:
                self._speaking.terminate()
            self._speaking = speech.speak(text, self.lang)
            self.reads_aloud = True  # later screens read themselves (helpme.py)
            self.record("speak", text=text, lang=self.lang)

        def open_documents(self) -> None:
            """« Imprimer »: what the resident saved or scanned, to look at before printing."""
            def shown(documents: list[dict[str, Any]]) -> None:
                if not documents:
                    self.show_message(self.t(
                        "Nothing to print yet: save a document from the site first.", self.lang))
                    return
                self.documents = documents
                self.message = ""  # an earlier note must not hide the buttons
                self.cover_browser(True)
                self.go("documents")
                self.fill_documents()
                self.show_document(0)
            self.call(lambda c: c.documents(), shown)

        def fill_documents(self) -> None:
            from kivy.factory import Factory
            box = self.root.ids.document_list
            box.clear_widgets()
            for index, document in enumerate(self.documents):
                item = Factory.DocumentItem()
                item.index = index
                item.label = document["name"]
                item.pages = document.get("pages", 0)
                item.scanned = document["folder"] == "scans"
                box.add_widget(item)

        def document_text(self, label: str, pages: int, scanned: bool, lang: str) -> str:
            kind = self.t("Scan", lang) if scanned else self.t("Saved from the site", lang)
            if not pages:
                return f"{label}\n{kind}"
            return "{}\n{} — {}".format(label, kind, self.t("{pages} page(s)", lang).format(
                pages=pages))

        def show_document(self, index: int) -> None:
            document = self.documents[index]
            self.document = {"index": index, "name": document["name"],
                             "error": document.get("message", "")}
            self.record("document", name=document["name"], error=document.get("error"))
            if document.get("error"):
                self.root.ids.document_preview.texture = None
                self.layout_later(0.3)
                return

            def loaded(png: bytes) -> None:
                import io
                from kivy.core.image import Image as CoreImage
                self.root.ids.document_preview.texture = CoreImage(
                    io.BytesIO(png), ext="png").texture
                self.record("preview", name=document["name"])
                self.layout_later(0.3)
            self.call(lambda c: c.document_page(document["folder"], document["name"], 1), loaded)

        def print_document(self) -> None:
            document = self.documents[self.document["index"]]
            self.record("print", name=document["name"])
            self.call(lambda c: c.print_document(document["folder"], document["name"]),
                      lambda result: self.show_message(self.t("Printing…", self.lang)))

        def close_documents(self) -> None:
            self.go("portal")
            self.tell_browser("raise")

        def scan(self) -> None:
            self.show_message(self.t("Scanning…", self.lang))
            self.call(lambda c: c.scan(), lambda result: self.show_message(
                self.t("Scan ready: {pages} page(s).", self.lang).format(pages=result["pages"])))

        # -- the agent menu -----------------------------------------------------------------

        def agent_tap(self) -> None:
            """Five taps on the site name within three seconds open the PIN pad."""
            now = time.monotonic()
            self._agent_taps = [t for t in self._agent_taps if now - t < 3] + [now]
            if len(self._agent_taps) >= 5:
                self._agent_taps = []
                self.record("agent_gesture")
                self.root.ids.pin.text = ""
                self.go("pin")

        def check_pin(self, pin: str) -> None:
            self.root.ids.pin.text = ""
            locked = self.pin.locked_for()
            if not locked and self.pin.check(pin):
                self.record("agent_menu")
                self.go("agent")
                return
            locked = self.pin.locked_for()
            self.record("agent_pin_refused", locked=locked)
            self.show_message(self.t("Locked for {seconds} s.", self.lang).format(seconds=locked)
                              if locked else self.t("Wrong PIN.", self.lang))

        def agent_reset(self) -> None:
            self.call(lambda c: c.end_session("agent"), self.on_ended)

        def agent_test_page(self) -> None:
            def job(client: DaemonClient) -> Any:
                from kiosk.shell.testpage import make_test_page
                started = client.status()["session"] is None
                if started:
                    client.start_session()
                page = make_test_page(Path(client.status()["session"]["dirs"]["prints"]),
                                      self.config_site)
                job = client.print_file(page)
                if started:
                    client.end_session("agent")
                return job
            self.call(job, lambda job: self.show_message(
                self.t("Test page sent to the printer.", self.lang)))

        def agent_restart(self) -> None:
            self.record("restart")
            self.stop()
            os._exit(3)  # systemd starts the shell again

        def agent_shutdown(self) -> None:
            """Wipe first: a powered-off kiosk keeps nothing of its last resident."""
            import subprocess
            self.record("shutdown")

            def power_off(_result: Any) -> None:
                subprocess.Popen(list(config.agent.shutdown_command))
            self.call(lambda c: c.end_session("agent"), power_off,
                      failed=lambda error: power_off(None))

        # -- clocks ----------------------------------------------------------------------------

        def cycle_welcome(self, dt: float) -> None:
            languages = list(config.site.languages)
            self._welcome_index = (self._welcome_index + 1) % len(languages)
            self.welcome_text = WELCOME_TEXTS[languages[self._welcome_index]]
            self.stops_text = self.describe_stops(languages[self._welcome_index])

        def describe_stops(self, lang: str) -> str:
            if config.site.kind != "bus" or not config.bus_stop:
                return ""
            days = {"fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi",
                           "dimanche"],
                    "gcf": ["lendi", "madi", "mèkrédi", "jédi", "vandrédi", "sanmdi",
                            "dimanch"],
                    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                           "Sunday"]}[lang]
            order = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                     "sunday"]
            lines = [self.t("Next stops of the bus:", lang)]
            for stop in config.next_stops():
                place = f" — {stop.place}" if stop.place else ""
                lines.append(f"{days[order.index(stop.weekday)]} {stop.start}–{stop.end} : "
                             f"{stop.commune}{place}")
            return "\n".join(lines)

        def poll(self, dt: float) -> None:
            offline = not has_default_route(os.environ.get("KIOSK_ROUTE_FILE",
                                                           "/proc/net/route"))
            if offline != self.offline:
                self.offline = offline
                self.record("offline", on=offline)
                self.cover_browser(offline)
            seen = self._sessions_seen
            self.call(lambda c: c.status(), lambda status: self.apply_status(status, seen),
                      failed=lambda error: None)

        def apply_status(self, status: dict[str, Any], seen: int | None = None) -> None:
            if seen is not None and seen != self._sessions_seen:
                return  # asked before the session began: it would say "no session", wrongly
            self.status = status
            self.help_from_status(status)
            state = status["state"]
            location = (status.get("session") or {}).get("location", "")
            if self.progress is not None and location and self.progress.follow(location):
                self.refresh_guide_texts()
                self.record("guide_step", id=self.progress.guide.id, index=self.progress.index,
                            by="page")
                self.layout_later(0.3)
            if state == "warning":
                if self.countdown < 0:
                    self.record("warning")
                    self.cover_browser(True)
                    Clock.schedule_once(lambda dt: self.record_layout(), 0.3)
                self.countdown = status.get("countdown") or 0
            else:
                if self.countdown >= 0 and status["session"] is not None:
                    self.cover_browser(False)
                self.countdown = -1
            in_session = self.screen in SESSION_SCREENS
            if in_session and status["session"] is None:
                self.on_ended(status.get("last_wipe") or {"reason": "idle"})

        def on_touch(self, window: Any, touch: Any) -> bool:
            now = time.monotonic()
            if self.screen in SESSION_SCREENS and \
                    now - self._last_activity > ACTIVITY_INTERVAL_SECONDS:
                self._last_activity = now
                self.call(lambda c: c.activity(), failed=lambda error: None)
            return False

        def build(self) -> Any:
            self.title = "PLUS kiosk"
            Window.bind(on_touch_down=self.on_touch)
            root = Builder.load_file(str(Path(__file__).with_name("kiosk.kv")))
            Clock.schedule_interval(self.cycle_welcome, WELCOME_CYCLE_SECONDS)
            Clock.schedule_interval(self.poll, 1.0)
            heartbeat.install(Clock)  # a frozen loop stops it: systemd restarts the screen
            return root

        def wipe_stale_session(self) -> None:
            """A shell that (re)starts finds no resident of its own: if the daemon still
            has a session (the previous shell froze or crashed), it is wiped now, before
            anyone touches the welcome screen."""
            def job(client: DaemonClient) -> Any:
                if client.status()["session"] is None:
                    return None
                return client.end_session("agent")
            self.call(job, lambda report: report and self.record(
                "stale_session_wiped", wiped=report.get("wiped")), failed=lambda error: None)

        def on_start(self) -> None:
            self.wipe_stale_session()
            self.stops_text = self.describe_stops(self.lang)
            self.record("screen", name="welcome")
            if self.stops_text:
                self.record("stops", text=self.stops_text)
            Clock.schedule_once(lambda dt: self.record_layout(), 0.3)

    return ShellApp()


def screen_size() -> tuple[int, int] | None:
    """The X screen's size (xdpyinfo): a borderless window that large is full screen
    even without a window manager, where SDL's own full screen may not be."""
    import re
    import subprocess
    try:
        output = subprocess.run(["xdpyinfo"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"dimensions:\s+(\d+)x(\d+) pixels", output)
    return (int(match.group(1)), int(match.group(2))) if match else None


def parse_size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiosk-shell", description="PLUS kiosk shell")
    parser.add_argument("--config", help="site file (default: the one in use)")
    parser.add_argument("--socket", help="daemon socket (default: from the site file)")
    parser.add_argument("--record", help="write screen changes to this file (JSON lines)")
    parser.add_argument("--size", help="WIDTHxHEIGHT window instead of full screen")
    args = parser.parse_args(argv)
    try:
        config = site_config.load(args.config)
    except site_config.ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    app = build_shell(config, args.socket or config.daemon.socket, args.record,
                      parse_size(args.size) or screen_size())
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
