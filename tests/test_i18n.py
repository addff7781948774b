"""Every message the code can show exists in French and in Kréyòl, placeholders intact."""

import string
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from kiosk import i18n

ROOT = Path(__file__).resolve().parent.parent
MESSAGES = {message for _, _, message, _, _ in extract_from_dir(
    str(ROOT / "kiosk"), method_map=[("**.py", "python")], keywords={"_": None, "tr": None, "N_": None})}


def placeholders(text):
    return sorted(name for _, name, _, _ in string.Formatter().parse(text) if name is not None)


def test_the_code_has_messages_to_translate():
    assert len(MESSAGES) > 40


@pytest.mark.parametrize("language", ["fr", "gcf"])
def test_catalogue_translates_every_message(language):
    path = ROOT / "kiosk" / "locale" / language / "LC_MESSAGES" / "kiosk.po"
    catalog = read_po(path.open("rb"))
    for message in MESSAGES:
        entry = catalog.get(message)
        assert entry is not None and entry.string, f"{language}: untranslated {message!r}"
        assert not entry.fuzzy, f"{language}: fuzzy {message!r}"
        assert placeholders(entry.string) == placeholders(message), message
        assert i18n.translation(language).gettext(message) == entry.string


def test_language_from_environment(monkeypatch):
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(variable, raising=False)
    assert i18n.language_from_environment() == "fr"
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    assert i18n.language_from_environment() == "en"
    monkeypatch.setenv("LANGUAGE", "gcf:fr")
    assert i18n.language_from_environment() == "gcf"


def test_switching_language_is_instant_and_unknown_falls_back_to_french():
    try:
        i18n.set_language("gcf")
        assert i18n._("BLOCKED") == "BLOKÉ"
        i18n.set_language("en")
        assert i18n._("BLOCKED") == "BLOCKED"
        i18n.set_language("xx")
        assert (i18n.current_language(), i18n._("BLOCKED")) == ("fr", "BLOQUÉ")
    finally:
        i18n.set_language("fr")


def test_every_text_of_the_shell_layout_is_in_the_catalogues():
    import re
    from kiosk.shell.app import SHELL_TEXTS
    layout = "".join(path.read_text(encoding="utf-8")  # kiosk.kv and each screen's own
                     for path in sorted((ROOT / "kiosk" / "shell").glob("*.kv")))
    used = set(re.findall(r'app\.t\("([^"]*)"', layout))
    assert used and used <= set(SHELL_TEXTS), used - set(SHELL_TEXTS)
