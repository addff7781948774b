"""« Besoin d'aide », the end screen's question and the usage reports (issue #16).

« Besoin d'aide » (the home bar and the portal bar): the resident asks for an agent. The
daemon keeps it on the session (``POST /api/v1/help``), where the agents' view, ``kioskctl
status`` and the fleet's metrics see it; the screen confirms « Un agent va venir vous
aider » with a way to cancel — and at a town-hall terminal, where no agent walks the
aisle, the site's help phone number (``[site] help_phone``). An agent clears it from the
agent menu; it dies with the session at the wipe anyway.

The end screen, after the wipe, asks « Avez-vous pu faire votre démarche ? » with three
large faces: optional, never blocking (the welcome screen comes back after the usual
delay whether or not anyone answers), in the resident's language.

What the resident used goes to the anonymous records (``POST /api/v1/session/usage``):
a portal's id, a guide's id, a language code, a text size, contrast on or off — fixed
values only, never an address or anything typed. Statistics never show a resident an
error: every failure of those calls is silent.

Kivy is imported only by ``mixin()``: ``kiosk.shell.app`` imports this module for its texts
without opening a window.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kiosk.i18n import N_

ICONS = Path(__file__).with_name("icons")
ANSWERS = ("yes", "partly", "no")
# Texts the layout (helpme.kv, kiosk.kv) shows through app.t(): listed for the catalogues.
HELP_TEXTS = (
    N_("I need help"), N_("Help is coming"),
    N_("An agent is coming to help you."), N_("Stay near the kiosk, your page stays open."),
    N_("You can also call {phone}."), N_("Cancel my request"), N_("All right"),
    N_("Did you manage to do what you came for?"), N_("Yes"), N_("Partly"), N_("No"),
    N_("Skip"), N_("Thank you for your answer."),
    N_("A resident asks for help."), N_("Help given"),
)


def phone_for(config: Any) -> str:
    """The number « Besoin d'aide » shows: a town-hall terminal's only (on the bus the
    agents are a few steps away)."""
    return config.site.help_phone if config.site.kind == "municipal" else ""


def text_size(scale: float) -> str:
    """1.0 → "1", 1.5 → "1.5", 2.0 → "2": the records' fixed values."""
    return f"{scale:g}"


def mixin() -> type:
    """The shell's help and statistics behaviour, as a base class of ``ShellApp``."""
    from kivy.lang import Builder
    from kivy.properties import BooleanProperty, StringProperty

    Builder.load_file(str(Path(__file__).with_name("helpme.kv")))

    class HelpDesk:
        help_asked = BooleanProperty(False)   # the daemon holds a request for this session
        help_shown = BooleanProperty(False)   # the confirmation lies over the screen
        help_phone = StringProperty("")
        help_icon = StringProperty(str(ICONS / "help.png"))
        reads_aloud = BooleanProperty(False)  # the resident used « Écouter » this session
        feedback = StringProperty("")         # "" none, "ask", "thanks" (the end screen)
        feedback_lang = StringProperty("fr")  # the resident's language, kept past the reset
        _finished: set[str] = set()

        def face_icon(self, answer: str) -> str:
            return str(ICONS / f"face-{answer}.png")

        def face_color(self, answer: str, contrast: bool) -> list[float]:
            """Light backgrounds, dark faces and words on all three (never white on yellow)."""
            if contrast:
                return [1, 1, 0.2, 1]
            return {"yes": [0.62, 0.88, 0.62, 1], "partly": [1, 0.84, 0.4, 1],
                    "no": [1, 0.7, 0.66, 1]}[answer]

        # -- « Besoin d'aide » ---------------------------------------------------------

        def help_button(self) -> None:
            """The bar's button: ask (first time), or show the confirmation again."""
            self.help_phone = phone_for(self.config_site)
            self.help_shown = True
            self.cover_browser(True)  # above the portal's window
            self.record("help_shown", asked=self.help_asked, phone=bool(self.help_phone))
            self.layout_later(0.3)
            if self.reads_aloud:
                self.read_help()
            if not self.help_asked:
                self.help_asked = True
                self.call(lambda c: c.ask_help(True),
                          lambda result: self.record("help", asked=True),
                          failed=lambda error: self.record("help_failed", code=error.code))

        def read_help(self) -> None:
            lang = self.lang
            text = self.t("An agent is coming to help you.", lang) + " " + self.t(
                "Stay near the kiosk, your page stays open.", lang)
            if self.help_phone:
                text += " " + self.t("You can also call {phone}.", lang).format(
                    phone=self.help_phone)
            self.read_aloud(text)

        def close_help(self) -> None:
            """« OK »: the confirmation goes, the request stays (the bar shows it)."""
            self.help_shown = False
            self.record("help_closed")
            self.cover_browser(False)
            self.layout_later(0.3)

        def cancel_help(self) -> None:
            self.help_asked = False
            self.close_help()
            self.call(lambda c: c.ask_help(False),
                      lambda result: self.record("help", asked=False),
                      failed=lambda error: None)

        def agent_help_given(self) -> None:
            """The agent menu: the request was answered."""
            self.help_asked = False
            self.call(lambda c: c.ask_help(False),
                      lambda result: self.record("help", asked=False, by="agent"),
                      failed=lambda error: None)

        def help_from_status(self, status: dict[str, Any]) -> None:
            """The daemon is the truth (an agent may clear it from kioskctl)."""
            asked = bool(status.get("help_asked"))
            if status.get("session") is not None and asked != self.help_asked:
                self.help_asked = asked

        # -- usage reports ---------------------------------------------------------------

        def report_usage(self, kind: str, value: str) -> None:
            """A fixed value for the anonymous records; silent whatever happens."""
            if self.screen not in ("home", "portal", "guides", "guide", "documents",
                                   "webmail") or not value:
                return
            self.record("usage", kind=kind, value=value)
            # the daemon's reply goes to the record only (tests): None = a daemon without
            # the records' route (404)
            self.call(lambda c: c.usage(kind, value),
                      lambda result: self.record("usage_sent", kind=kind, value=value,
                                                 accepted=result is not None),
                      failed=lambda error: self.record("usage_refused", code=error.code))

        def note_guide_step(self, progress: Any) -> None:
            """A guide followed to its last step is reported once per session."""
            if progress is not None and progress.is_last \
                    and progress.guide.id not in self._finished:
                self._finished = self._finished | {progress.guide.id}
                self.report_usage("guide_finished", progress.guide.id)

        # -- the end screen ----------------------------------------------------------------

        def before_end(self, report: dict[str, Any]) -> None:
            """Called as the session ends, before the shell forgets the resident's choices."""
            self.help_asked = self.help_shown = False
            self._finished = set()
            self.feedback_lang = self.lang
            self.feedback = "ask" if report.get("reason") != "agent" else ""
            if self.feedback and self.reads_aloud:
                self.read_aloud(self.t("Did you manage to do what you came for?", self.lang))
            self.reads_aloud = False

        def answer_feedback(self, answer: str) -> None:
            if self.feedback != "ask" or answer not in ANSWERS:
                return
            self.feedback = "thanks"
            self.record("feedback", answer=answer)
            self.call(lambda c: c.feedback(answer),
                      lambda result: self.record("feedback_sent", answer=answer,
                                                 accepted=result is not None),
                      failed=lambda error: self.record("feedback_refused", code=error.code))
            self.layout_later(0.3)

        def skip_feedback(self) -> None:
            """« Passer »: the welcome screen at once."""
            self.feedback = ""
            self.record("feedback_skipped")
            self.go("welcome")

        def help_targets(self, place: Any) -> dict[str, list[int]]:
            """Where the help and feedback controls are (tests; see record_layout)."""
            targets: dict[str, list[int]] = {}
            screens = self.root.ids.screens
            if self.help_shown:
                overlay = self.root.ids.help_overlay
                targets.update(help_cancel=place(overlay.ids.help_cancel),
                               help_ok=place(overlay.ids.help_ok),
                               help_listen=place(overlay.ids.help_listen))
            if screens.current == "end" and self.feedback == "ask":
                box = self.root.ids.feedback_box
                for answer in ANSWERS:
                    targets[f"face_{answer}"] = place(box.ids[f"face_{answer}"])
                targets["feedback_skip"] = place(box.ids.feedback_skip)
                targets["feedback_listen"] = place(box.ids.feedback_listen)
            return targets

    return HelpDesk
