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


def test_the_agents_status_says_a_resident_asks_for_help(daemon):
    import os
    import subprocess
    import sys
    from pathlib import Path
    kioskctl = [str(Path(sys.executable).parent / "kioskctl"), "--lang", "fr", "status",
                "--config", str(daemon.site_file)]
    client = daemon.client()
    client.start_session()
    quiet = subprocess.run(kioskctl, capture_output=True, text=True, env=os.environ).stdout
    client.ask_help(True)
    asked = subprocess.run(kioskctl, capture_output=True, text=True, env=os.environ).stdout
    assert "aide" not in quiet.lower(), quiet
    assert "Un usager demande de l'aide." in asked, asked


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


# -- the real stack: daemon, Kivy shell, browser on Xvfb, real clicks ------------------------

import time  # noqa: E402

from harness import Stack, screenshot, start_session, wait_for  # noqa: E402

MUNICIPAL = '\n'  # the bundled test site is a bus; a town hall is written below


def make_stack(tmp_path, xvfb, cupsd, fake_portals, municipal=False):
    instance = Stack(tmp_path, xvfb.display, cupsd, fake_portals.url("/"),
                     idle_warning_seconds=300)
    site = instance.write_site
    if municipal:
        def write_site():
            path = site()
            text = path.read_text()
            assert 'kind = "bus"' in text
            path.write_text(text.replace('kind = "bus"', 'kind = "municipal"\n'
                                         'help_phone = "0596 12 34 56"', 1))
            return path
        instance.write_site = write_site
    return instance.start()


@pytest.fixture
def stack(tmp_path, xvfb, cupsd, fake_portals):
    instance = make_stack(tmp_path, xvfb, cupsd, fake_portals)
    yield instance
    instance.stop()


def daemon_status(stack):
    from kiosk.daemon_client import DaemonClient
    client = DaemonClient(stack.root / "daemon.sock", timeout=5)
    try:
        return client.status()
    finally:
        client.close()


def layout_with(stack, name, since):
    return stack.wait(lambda e: e["event"] == "layout" and name in e["targets"],
                      f"{name} on screen", since=since)


def test_help_from_the_home_bar_reaches_the_daemon_and_cancel_clears_it(stack):
    start_session(stack)
    assert daemon_status(stack)["help_asked"] is False
    mark = len(stack.events())
    stack.tap("home_help", "home")
    layout_with(stack, "help_cancel", mark)
    wait_for(lambda: daemon_status(stack)["help_asked"] is True, what="help asked")
    shown = next(e for e in stack.events()[mark:] if e["event"] == "help_shown")
    assert shown["phone"] is False  # a bus: the agents come over, no number
    time.sleep(0.5)
    screenshot(stack.display, "help-1-confirmation-bus")
    # « OK »: the request stays, the bar says so; the agents' view has it meanwhile.
    mark = len(stack.events())
    stack.tap("help_ok")
    stack.wait(lambda e: e["event"] == "help_closed", "confirmation closed", since=mark)
    time.sleep(1.5)
    assert daemon_status(stack)["help_asked"] is True
    # Again, then « Annuler ma demande »: cleared on the daemon.
    mark = len(stack.events())
    stack.tap("home_help", "home")
    layout_with(stack, "help_cancel", mark)
    stack.tap("help_cancel")
    wait_for(lambda: daemon_status(stack)["help_asked"] is False, what="help cancelled")
    assert not any(e["event"] == "help_shown" and e["asked"] is False
                   for e in stack.events()[mark:])  # it showed as already asked


def test_a_town_hall_shows_its_number_and_the_wipe_ends_the_request(tmp_path, xvfb, cupsd,
                                                                  fake_portals):
    stack = make_stack(tmp_path, xvfb, cupsd, fake_portals, municipal=True)
    try:
        start_session(stack)
        mark = len(stack.events())
        stack.tap("lang_gcf", "home")
        stack.wait(lambda e: e["event"] == "layout", "layout in gcf", since=mark)
        mark = len(stack.events())
        stack.tap("home_help", "home")
        layout_with(stack, "help_cancel", mark)
        shown = next(e for e in stack.events()[mark:] if e["event"] == "help_shown")
        assert shown["phone"] is True
        wait_for(lambda: daemon_status(stack)["help_asked"] is True, what="help asked")
        time.sleep(0.5)
        screenshot(stack.display, "help-2-confirmation-town-hall-gcf")
        stack.tap("help_ok")
        time.sleep(0.5)
        mark = len(stack.events())
        stack.tap("finish", "home")
        stack.wait(lambda e: e["event"] == "ended", "session end", since=mark)
        assert daemon_status(stack)["help_asked"] is False
    finally:
        stack.stop()


def test_the_end_screen_asks_once_and_never_blocks(stack):
    start_session(stack)
    # The resident used « Écouter »: the end screen reads its question too.
    stack.tap("listen", "home")
    stack.wait(lambda e: e["event"] == "speak", "read aloud")
    mark = len(stack.events())
    stack.tap("finish", "home")
    stack.wait(lambda e: e["event"] == "ended", "session end", since=mark)
    layout_with(stack, "face_partly", mark)
    spoken = [e for e in stack.events()[mark:] if e["event"] == "speak"]
    assert spoken and spoken[-1]["text"] == "Avez-vous pu faire votre démarche ?"
    time.sleep(0.3)
    screenshot(stack.display, "help-3-end-question")
    answered = len(stack.events())
    stack.tap("face_partly", "end")
    stack.wait(lambda e: e["event"] == "feedback", "answer", since=answered)
    assert [e["answer"] for e in stack.events() if e["event"] == "feedback"] == ["partly"]
    # The request reached the daemon and came back: accepted by the records' route, or —
    # a daemon without it yet — answered 404 (accepted False); never an error on screen.
    sent = stack.wait(lambda e: e["event"] in ("feedback_sent", "feedback_refused"),
                      "the daemon's reply to the answer", since=answered)
    assert sent["event"] == "feedback_sent" and sent["answer"] == "partly", sent
    time.sleep(0.3)
    screenshot(stack.display, "help-4-end-thanks")
    # Nothing else to touch: the welcome screen comes back on its own.
    stack.wait(lambda e: e["event"] == "screen" and e["name"] == "welcome", "welcome again",
               since=mark, timeout=15)
    # Next resident, who skips: the welcome screen at once.
    start_session(stack)
    mark = len(stack.events())
    stack.tap("finish", "home")
    layout_with(stack, "feedback_skip", mark)
    skipped = time.monotonic()
    stack.tap("feedback_skip", "end")
    stack.wait(lambda e: e["event"] == "screen" and e["name"] == "welcome", "welcome at once",
               since=mark, timeout=5)
    assert time.monotonic() - skipped < 4  # sooner than the end screen's own delay
    assert not any(e["event"] == "feedback" for e in stack.events()[mark:])


def test_usage_reports_for_a_portal_and_a_language(stack):
    start_session(stack)
    mark = len(stack.events())
    stack.tap("lang_gcf", "home")
    sent = stack.wait(lambda e: e["event"] in ("usage_sent", "usage_refused"),
                      "the language's report", since=mark)
    assert sent == {**sent, "event": "usage_sent", "kind": "language", "value": "gcf"}, sent
    mark = len(stack.events())
    stack.tap("tile_0", "home")
    stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "portal", "portal",
               since=mark)
    sent = stack.wait(lambda e: e["event"] in ("usage_sent", "usage_refused"),
                      "the portal's report", since=mark)
    assert (sent["event"], sent["kind"], sent["value"]) == (
        "usage_sent", "portal_opened", stack.events()[mark:][0].get("id", sent["value"]))
    opened = next(e for e in stack.events()[mark:] if e["event"] == "portal")
    assert sent["value"] == opened["id"]
    # Only ids and fixed values leave the shell: nothing typed, no address.
    for event in (e for e in stack.events() if e["event"] == "usage"):
        assert "/" not in event["value"] and ":" not in event["value"], event
    # The portal bar has « Besoin d'aide » too, above the browser's window (once it shows).
    from harness import read_log as read  # [] until the browser has written
    wait_for(lambda: stack.browser_audit.exists() and any(
        e.get("event") == "loaded" and e.get("ok") for e in read(stack.browser_audit)),
        timeout=30, what="portal page loaded in the browser")
    time.sleep(1)
    mark = len(stack.events())
    stack.tap("portal_help", "portal")
    layout_with(stack, "help_ok", mark)
    wait_for(lambda: daemon_status(stack)["help_asked"] is True, what="help asked")
    time.sleep(0.5)
    screenshot(stack.display, "help-5-over-the-portal")
    stack.tap("help_cancel")
    wait_for(lambda: daemon_status(stack)["help_asked"] is False, what="help cancelled")
    time.sleep(0.5)
    screenshot(stack.display, "help-6-portal-bar")
