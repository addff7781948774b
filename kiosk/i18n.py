"""Translations: French by default, Kréyòl Matinik (gcf) and English.

Catalogues are plain gettext ``.po`` files under ``kiosk/locale``; Babel
compiles them in memory when first used, so the repository carries no binary
``.mo`` files and an edited translation shows up without a build step.
Message ids are English; the English catalogue only overrides wording.
"""

from __future__ import annotations

import gettext
import io
import os
from functools import lru_cache
from importlib import resources

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("fr", "gcf", "en")
DEFAULT_LANGUAGE = "fr"
DOMAIN = "kiosk"


@lru_cache(maxsize=None)
def translation(language: str) -> gettext.NullTranslations:
    """The compiled catalogue for ``language`` (a null one if there is none)."""
    po = resources.files("kiosk") / "locale" / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    if not po.is_file():
        return gettext.NullTranslations()
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=None, domain=DOMAIN)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def language_from_environment(default: str = DEFAULT_LANGUAGE) -> str:
    """The first of $LANGUAGE, $LC_ALL, $LC_MESSAGES, $LANG that we speak."""
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        for item in os.environ.get(variable, "").split(":"):
            code = item.split(".")[0].split("@")[0].replace("-", "_").split("_")[0].lower()
            if code in LANGUAGES:
                return code
            if code in ("c", "posix"):
                return "en"
    return default


class _Active:
    language = DEFAULT_LANGUAGE
    catalogue: gettext.NullTranslations = gettext.NullTranslations()


def set_language(language: str) -> None:
    """Switch every later ``_()`` call to ``language`` (unknown → default)."""
    if language not in LANGUAGES:
        language = DEFAULT_LANGUAGE
    _Active.language = language
    _Active.catalogue = translation(language)


def current_language() -> str:
    return _Active.language


def _(message: str) -> str:
    return _Active.catalogue.gettext(message)


def N_(message: str) -> str:  # noqa: N802 (the gettext convention)
    """Mark a message for the catalogues, to be translated later where it is shown."""
    return message


set_language(DEFAULT_LANGUAGE)
