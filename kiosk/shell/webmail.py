"""« Ma messagerie »: the resident's webmail laid over the portal's page, for e-mailed codes.

impots.gouv.fr, the CAF and ameli send a one-time code by e-mail at every new browser, and
a wiped kiosk is always one. A resident without a smartphone must read that code in their
webmail *on the kiosk* and type it into the portal's page before it expires — so the
portal's page must survive the trip: the form half filled, the code field waiting. Hence a
second browser for the session (the daemon's ``mail`` slot), laid over the portal's one.
The portal bar's button shows it; the same button, then labelled « Revenir à <portal> »,
brings the portal's own window back on top, untouched. Nothing is reloaded either way: the
shell only tells one browser or the other to « raise ».

The webmail portal's tile (and the bar button, the first time) opens a list of the
webmails residents use in France rather than one start page: a senior knows the end of
their address (@orange.fr, @gmail.com) far better than the brand of the site behind it,
and landing on Gmail's sign-in with an Orange address is a dead end. The list shows only
the webmails the site's rules allow, so a site that narrows its rules narrows the list.

Kivy is imported only by ``mixin()``: ``kiosk.shell.app`` imports this module for its texts
without opening a window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiosk.i18n import N_

PORTAL_ID = "webmail"
SLOTS = ("portal", "mail")
# (name, the address endings residents recognise, sign-in page). Hosts: kiosk/sites/espace-sud.toml.
WEBMAILS = (
    ("Gmail", "@gmail.com", "https://mail.google.com/mail/"),
    ("Outlook / Hotmail", "@outlook.fr  @hotmail.fr  @live.fr", "https://outlook.live.com/mail/"),
    ("Yahoo", "@yahoo.fr  @yahoo.com", "https://mail.yahoo.com/"),
    ("Orange", "@orange.fr  @wanadoo.fr", "https://messagerie.orange.fr/"),
    ("SFR", "@sfr.fr  @neuf.fr", "https://messagerie.sfr.fr/"),
    ("Free", "@free.fr", "https://zimbra.free.fr/"),
    ("La Poste", "@laposte.net", "https://www.laposte.net/accueil"),
)
# Texts the layout (webmail.kv, kiosk.kv) shows through app.t(): listed for the catalogues.
WEBMAIL_TEXTS = (
    N_("My e-mail"), N_("Back to {portal}"),
    N_("Which e-mail address do you have? Touch it."),
    N_("To read a code sent by e-mail, touch « My e-mail »."),
    N_("You are signed out of every site, your e-mail included."),
)


def choices(config: Any) -> list[dict[str, str]]:
    """The webmails this site lets residents open: the known ones its rules allow, and the
    webmail portal's own start page when it is none of them (a site's own webmail)."""
    portal = config.portal_by_id(PORTAL_ID)
    if portal is None:
        return []
    policy = config.policy()
    found = [{"name": name, "hint": hint, "url": url} for name, hint, url in WEBMAILS
             if policy.decide(url).allowed]
    if not any(choice["url"] == portal.start_url for choice in found):
        found.append({"name": portal.name.fr, "hint": "", "url": portal.start_url})
    return found


def mixin() -> type:
    """The shell's webmail behaviour, as a base class of ``ShellApp`` (Kivy imported here)."""
    from kivy.clock import Clock
    from kivy.lang import Builder
    from kivy.properties import BooleanProperty, ListProperty, StringProperty

    Builder.load_file(str(Path(__file__).with_name("webmail.kv")))

    class MailSwitch:
        mail_open = BooleanProperty(False)     # the webmail's browser runs
        mail_shown = BooleanProperty(False)    # … and lies over the portal's page
        portal_open = BooleanProperty(False)   # a portal's page is open beneath
        mail_portal = StringProperty("")       # the portal beneath (« Revenir à » names it)
        webmails = ListProperty([])
        mail_icon = StringProperty(str(Path(__file__).with_name("icons") / "mail.png"))
        _chooser_from = "home"

        @property
        def has_webmail(self) -> bool:
            return bool(self.webmails)

        def shown_slot(self) -> str:
            return "mail" if self.mail_shown else "portal"

        def mail_button_text(self, lang: str, shown: bool, portal_open: bool,
                             portal_id: str) -> str:
            """« Ma messagerie », or « Revenir à Impôts » while the mail hides the portal."""
            if shown and portal_open:
                names = next((p["names"] for p in self.portals if p["id"] == portal_id), {})
                return self.t("Back to {portal}", lang).format(
                    portal=names.get(lang) or names.get("fr", ""))
            return self.t("My e-mail", lang)

        def portal_opened(self, portal_id: str) -> None:
            self.portal_open, self.mail_portal, self.mail_shown = True, portal_id, False

        def mail_button(self) -> None:
            """The portal bar's button: back to the portal, to the mail, or the list."""
            if self.mail_shown and self.portal_open:
                self.show_slot("portal")
            elif self.mail_open and not self.mail_shown:
                self.show_slot("mail")
            else:
                self.open_mail_chooser()

        def show_slot(self, slot: str) -> None:
            self.mail_shown = slot == "mail"
            self.record("mail_shown", slot=slot)
            self.tell_browser("raise", slot)
            self.layout_later(0.3)

        def open_mail_chooser(self) -> None:
            self._chooser_from = self.screen
            self.cover_browser(True)  # the list must show above the browsers' windows
            self.record("mail_chooser", choices=[c["name"] for c in self.webmails])
            self.go("webmail")
            self.fill_webmails()

        def close_mail_chooser(self) -> None:
            if self._chooser_from == "portal" and (self.portal_open or self.mail_open):
                self.go("portal")
                self.tell_browser("raise")
            else:
                self.go("home")

        def fill_webmails(self, box: Any = None) -> None:
            from kivy.factory import Factory
            if box is None:
                box = self.root.ids.screens.get_screen("webmail").ids.webmail_list
            box.clear_widgets()
            for choice in self.webmails:
                item = Factory.WebmailChoice()
                item.url, item.label, item.hint = choice["url"], choice["name"], choice["hint"]
                box.add_widget(item)
            Clock.schedule_once(lambda dt: self.record_layout(), 0.3)

        def open_webmail(self, url: str) -> None:
            """A webmail chosen: its sign-in page in the mail slot, over the portal's page."""
            self.record("mail_open", url=url)
            if not self.portal_open:
                self.current_portal = PORTAL_ID  # opened from the home screen: its guides
            geometry = self.browser_geometry()

            def opened(result: Any) -> None:
                self.mail_open = self.mail_shown = True
                self.go("portal")
            self.call(lambda c: c.open_url(url, geometry=geometry, language=self.lang,
                                           slot="mail"), opened)

        def forget_mail(self) -> None:
            """« Accueil » and the session's end: both browsers are gone."""
            self.mail_open = self.mail_shown = self.portal_open = False
            self.mail_portal = ""

        def mail_targets(self, place: Any) -> dict[str, list[int]]:
            """Where the list's controls are (tests and diagnostics; see record_layout)."""
            screens = self.root.ids.screens
            if screens.current != "webmail":
                return {}
            screen = screens.get_screen("webmail")
            targets = {"webmail_cancel": place(screen.ids.webmail_cancel)}
            for index, item in enumerate(reversed(screen.ids.webmail_list.children)):
                targets[f"webmail_{index}"] = place(item)
            return targets

    return MailSwitch
