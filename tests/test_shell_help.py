"""« Besoin d'aide », the end screen's question and the usage reports (issue #16, the shell).

The daemon's side first (``POST /api/v1/help``), then the real stack on Xvfb (daemon, Kivy
shell, browser) driven by real clicks through the shell's layout record. Screenshots go to
test-artifacts/help-*.png.
"""

import pytest

from kiosk.daemon_client import DaemonError


def test_help_lives_on_the_session_and_dies_with_it(daemon):
    client = daemon.client()
    assert client.status()["help_asked"] is False
    with pytest.raises(DaemonError) as refused:  # no session, nobody to help
        client.ask_help(True)
    assert (refused.value.status, refused.value.code) == (409, "no_session")
    client.start_session()
    assert client.status()["help_asked"] is False
    assert client.ask_help(True) == {"help_asked": True}
    assert client.status()["help_asked"] is True
    assert client.ask_help(False) == {"help_asked": False}  # cancelled, or cleared by an agent
    assert client.status()["help_asked"] is False
    for body in (b'{"asked": "yes"}', b'{}', b'{"asked": 1}'):
        with pytest.raises(DaemonError) as refused:
            client.request("POST", "/help", raw=body, content_type="application/json")
        assert (refused.value.status, refused.value.code) == (400, "bad_help")
    client.ask_help(True)
    assert client.end_session("user")["wiped"]
    assert client.status()["help_asked"] is False
    client.start_session()  # the next resident starts without it
    assert client.status()["help_asked"] is False


def test_statistics_calls_never_fail_on_a_daemon_without_their_routes(daemon):
    """The records' routes may not exist (an older daemon): the client answers None, and a
    route that does exist still raises its real errors (the shell silences those itself)."""
    client = daemon.client()
    with pytest.raises(DaemonError) as missing:
        client.request("POST", "/nothing-here", json_body={})
    assert missing.value.status == 404
    assert client._tolerant("/nothing-here", {"kind": "language", "value": "fr"}) is None
    with pytest.raises(DaemonError):
        client._tolerant("/session/end", {"reason": "bored"})  # 400: not swallowed


def test_the_help_phone_is_validated_and_documented_in_the_bundled_site():
    from pathlib import Path

    from kiosk import config as site_config
    text = Path(site_config.bundled_config()).read_text()
    assert 'help_phone = ""' in text and "Besoin d'aide" in text  # commented beside the key
    assert site_config.load_text(text).site.help_phone == ""
    for number in ("0596 12 34 56", "+596 596 12 34 56", "05.96.12.34.56"):
        loaded = site_config.load_text(text.replace('help_phone = ""', f'help_phone = "{number}"'))
        assert loaded.site.help_phone == number
    for wrong in ("mairie", "12", "0596 12 34 56 ou 0696", "https://evil.example/"):
        with pytest.raises(site_config.ConfigError) as caught:
            site_config.load_text(text.replace('help_phone = ""', f'help_phone = "{wrong}"'))
        assert "site.help_phone" in str(caught.value) and "0596 12 34 56" in str(caught.value)
