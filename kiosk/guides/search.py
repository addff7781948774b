"""Find a guide from the words a resident (or an agent) types.

Residents type without accents, with or without capitals, in any of the three
languages, often only the start of a word ("declar"). Every word typed must
appear somewhere in the guide; matches in the title rank first.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from kiosk.guides.library import LANGUAGES, Guide, GuideLibrary


def fold(text: str) -> str:
    """Lower case, accents and apostrophe variants removed: "Déclaration" → "declaration"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    kept = "".join(c for c in decomposed if not unicodedata.combining(c))
    return kept.replace("’", "'").replace("œ", "oe").replace("æ", "ae")


def _words(text: str) -> list[str]:
    return [w for w in "".join(c if c.isalnum() else " " for c in fold(text)).split() if w]


@dataclass(frozen=True)
class _Entry:
    guide: Guide
    title: tuple[str, ...]  # folded words, split once when the index is built
    body: tuple[str, ...]


class GuideIndex:
    def __init__(self, library: GuideLibrary):
        self._entries = []
        for guide in library.guides:
            title = " ".join(guide.title[lang] for lang in LANGUAGES)
            parts = [guide.summary[lang] for lang in LANGUAGES]
            if guide.keywords:
                parts += [guide.keywords[lang] for lang in LANGUAGES]
            for step in guide.steps:
                parts += [step.title[lang] for lang in LANGUAGES]
                parts += [step.text[lang] for lang in LANGUAGES]
                parts.append(step.button)
            self._entries.append(_Entry(guide, tuple(_words(title)),
                                        tuple(_words(" ".join(parts)))))

    def search(self, query: str, portal: str | None = None) -> list[Guide]:
        words = _words(query)
        if not words:
            return []
        scored = []
        for order, entry in enumerate(self._entries):
            if portal and entry.guide.portal != portal:
                continue
            score = 0
            for word in words:
                if any(w.startswith(word) for w in entry.title):
                    score += 2
                elif any(w.startswith(word) for w in entry.body):
                    score += 1
                else:
                    break
            else:
                scored.append((-score, order, entry.guide))
        return [guide for _, _, guide in sorted(scored, key=lambda item: item[:2])]
