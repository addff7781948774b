"""What a resident used during a session, counted for the anonymous records (issue #16).

Only counters and identifiers from fixed vocabularies live here — a portal or guide id
the site knows, a language code, a text size, contrast on or off — never an address, a
file name or anything typed: a value outside the vocabulary is refused before it is
stored (``check``). The object lives in the daemon's memory with the session and dies
with it; ``kiosk.records`` turns it into one row when the session ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Collection

KINDS = ("portal_opened", "guide_started", "guide_finished", "language", "text_size",
         "contrast")
TEXT_SIZES = ("1", "1.5", "2")
CONTRASTS = ("on", "off")
ANSWERS = ("yes", "partly", "no")  # « Avez-vous pu faire votre démarche ? »
# How a session ended, as the records say it: the wipe's reason → the record's word.
ENDINGS = {"user": "terminer", "idle": "idle", "agent": "agent", "boot": "shutdown"}


def check(kind: object, value: object, *, portals: Collection[str], guides: Collection[str],
          languages: Collection[str]) -> bool:
    """Is this a usage report the records may hold? Anything else is refused whole."""
    if not isinstance(kind, str) or not isinstance(value, str):
        return False
    allowed: Collection[str] = {
        "portal_opened": portals, "guide_started": guides, "guide_finished": guides,
        "language": languages, "text_size": TEXT_SIZES, "contrast": CONTRASTS,
    }.get(kind, ())
    return value in allowed


@dataclass
class Usage:
    """One session's counters (memory only)."""

    language: str = ""
    text_size: str = "1"
    contrast: str = "off"
    portals: list[str] = field(default_factory=list)
    guides_started: list[str] = field(default_factory=list)
    guides_finished: list[str] = field(default_factory=list)
    scans: int = 0
    shares: int = 0

    def note(self, kind: str, value: str) -> None:
        """Record a usage report already accepted by ``check``."""
        if kind in ("language", "text_size", "contrast"):
            setattr(self, kind, value)  # the last choice is the one the resident used
            return
        target = {"portal_opened": self.portals, "guide_started": self.guides_started,
                  "guide_finished": self.guides_finished}[kind]
        if value not in target:
            target.append(value)
