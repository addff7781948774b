"""The agents' PIN out of the site file (issue #12, item 7): its own root-only file, a
copy for the shell alone, at least six digits."""

from __future__ import annotations

import stat

import pytest

from kiosk import config as site_config
from kiosk.agent_pin import PinGate, hash_pin, stored_hash, valid_pin, write_hash
from kiosk.i18n import set_language


def test_a_short_pin_never_opens_the_menu_even_with_its_own_hash():
    """Before: a 4-digit PIN opened it (and its hash fell in minutes offline)."""
    assert not PinGate(hash_pin("2468", iterations=1000)).check("2468")
    assert PinGate(hash_pin("24681357", iterations=1000)).check("24681357")
    assert [valid_pin(p) for p in ("123456", "123456789012", "12345", "1234567890123",
                                   "12345a", "١٢٣٤٥٦")] == [True, True, False, False, False,
                                                            False]


def test_the_shell_reads_its_private_copy_first_then_the_file(tmp_path, monkeypatch):
    pin_file = tmp_path / "agent-pin"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert stored_hash(pin_file) == ""                   # none yet: no agent menu
    write_hash(pin_file, "246813")
    assert stat.S_IMODE(pin_file.stat().st_mode) == 0o600
    assert PinGate(stored_hash(pin_file)).check("246813")
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "agent-pin").write_text(hash_pin("975312", iterations=1000) + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    assert PinGate(stored_hash(pin_file)).check("975312")  # systemd's copy wins
    assert list(tmp_path.glob(".agent-pin-*")) == []       # written atomically, no temporary


def test_a_site_file_with_a_pin_hash_is_refused_with_the_way_out():
    """Before: [agent] pin_hash sat in the site file, readable by group kiosk."""
    text = site_config.bundled_config().read_text() + \
        f'\n[agent]\npin_hash = "{hash_pin("246813", iterations=1000)}"\n'
    try:
        set_language("gcf")
        with pytest.raises(site_config.ConfigError) as caught:
            site_config.load_text(text, "site.toml")
    finally:
        set_language("fr")
    problem = caught.value.problems[0]
    assert problem.key == "agent.pin_hash" and problem.line == text.count("\n")
    assert "kioskctl pin-hash" in problem.message and "navigatè" in problem.message
    config = site_config.load_text(site_config.bundled_config().read_text())
    assert config.agent.pin_file == "/etc/plus-kiosk/agent-pin"


def test_the_browser_and_the_shell_cannot_share_a_user():
    text = site_config.bundled_config().read_text() + '\n[browser]\nuser = "kiosk"\n'
    with pytest.raises(site_config.ConfigError) as caught:
        site_config.load_text(text)
    assert caught.value.problems[0].key == "browser.user"
