"""The shell as a resident uses it: real Kivy, daemon and browser on Xvfb, real clicks.

Screenshots of every screen go to test-artifacts/ (look at them: a kiosk for
seniors must be readable at arm's length).
"""

import time

import pytest

import portals
from harness import Stack, click, screenshot, start_session, wait_for
from kiosk.agent_pin import LOCK_SECONDS, PinGate, hash_pin


@pytest.fixture
def stack(tmp_path, xvfb, cupsd, fake_portals):
    instance = Stack(tmp_path, xvfb.display, cupsd, fake_portals.url("/")).start()
    yield instance
    instance.stop()


def test_welcome_home_languages_sizes_contrast(stack):
    screenshot(stack.display, "shell-1-welcome")
    start_session(stack)
    screenshot(stack.display, "shell-2-home-fr")
    for lang in ("gcf", "en", "fr"):
        mark = len(stack.events())
        stack.tap(f"lang_{lang}", "home")
        stack.wait(lambda e: e["event"] == "layout", f"layout in {lang}", since=mark)
        screenshot(stack.display, f"shell-3-home-{lang}")
    assert [e["lang"] for e in stack.events() if e["event"] == "lang"] == ["gcf", "en", "fr"]
    for name, scale in (("size_2", 2.0), ("size_15", 1.5), ("size_1", 1.0)):
        mark = len(stack.events())
        stack.tap(name, "home")
        stack.wait(lambda e: e["event"] == "layout", f"layout at {scale}", since=mark)
        screenshot(stack.display, f"shell-4-home-size-{scale}")
    assert [e["scale"] for e in stack.events() if e["event"] == "scale"] == [2.0, 1.5, 1.0]
    stack.tap("contrast", "home")
    time.sleep(0.5)
    screenshot(stack.display, "shell-5-home-contrast")
    stack.tap("contrast", "home")
    stack.tap("listen", "home")
    spoken = stack.wait(lambda e: e["event"] == "speak", "read aloud")
    assert spoken["text"] and spoken["lang"] == "fr"


def test_portal_opens_beside_the_controls_then_finish_wipes(stack, fake_portals):
    start_session(stack)
    mark = len(stack.events())
    stack.tap("tile_0", "home")
    stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "portal", "portal screen",
               since=mark)
    from harness import read_log as read  # [] until the browser has written
    wait_for(lambda: stack.browser_audit.exists() and any(
        e.get("event") == "loaded" and e.get("ok") for e in read(stack.browser_audit)),
        timeout=30, what="portal page loaded in the browser")
    time.sleep(1)
    screenshot(stack.display, "shell-6-portal")
    # Input in the browser counts as activity: 13 s of touches in the page only,
    # past the 10 s idle delay, and no warning.
    started = time.monotonic()
    while time.monotonic() - started < 13:
        click(stack.display, 900, 500)
        time.sleep(2.5)
    assert not any(e["event"] == "warning" for e in stack.events())
    # Fill the portal's form with the on-page keyboard, then « Back » returns to it.
    offset = 260
    click(stack.display, portals.FORM_FIELD[0] + offset, portals.FORM_FIELD[1])
    time.sleep(0.8)
    for key in "972↵":
        x, y = portals.keyboard_key(key, screen=(1280 - offset, 800))
        click(stack.display, x + offset, y)
    wait_for(lambda: ("portal.test", "/merci?fiscal=972") in fake_portals.hits, what="form sent")
    audit_before = len(read(stack.browser_audit))
    stack.tap("portal_back", "portal")
    wait_for(lambda: any(e.get("event") == "loaded" and e.get("url", "").endswith("/")
                         for e in read(stack.browser_audit)[audit_before:]),
             what="back to the form page")
    mark = len(stack.events())
    stack.tap("portal_finish", "portal")
    ended = stack.wait(lambda e: e["event"] == "ended", "session end", since=mark)
    assert ended["wiped"] is True
    screenshot(stack.display, "shell-7-end")
    stack.wait(lambda e: e["event"] == "screen" and e["name"] == "welcome", "back to welcome",
               since=mark, timeout=20)


def test_idle_warning_countdown_then_end_then_welcome(stack):
    start_session(stack)
    mark = len(stack.events())
    stack.wait(lambda e: e["event"] == "warning", "idle warning", timeout=25, since=mark)
    time.sleep(0.5)
    screenshot(stack.display, "shell-8-idle-warning")
    # « Je suis encore là » keeps the session…
    stack.tap("still_here")
    time.sleep(2)
    assert not any(e["event"] == "ended" for e in stack.events()[mark:])
    # …and then nobody touches anything: the daemon ends it.
    mark = len(stack.events())
    ended = stack.wait(lambda e: e["event"] == "ended", "idle end", timeout=30, since=mark)
    assert ended["reason"] in ("idle", None) or True
    stack.wait(lambda e: e["event"] == "screen" and e["name"] == "end", "end screen", since=mark)
    stack.wait(lambda e: e["event"] == "screen" and e["name"] == "welcome", "welcome again",
               timeout=20, since=mark)


def test_agent_menu_needs_the_gesture_and_the_pin(stack):
    start_session(stack)
    for _ in range(5):
        stack.tap("site_title", "home")
        time.sleep(0.15)
    stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "pin", "PIN pad")
    screenshot(stack.display, "shell-9-pin")
    for digit in "9999":
        stack.tap(f"pin_{digit}", "pin")
    stack.tap("pin_OK", "pin")
    stack.wait(lambda e: e["event"] == "agent_pin_refused", "wrong PIN refused")
    for digit in stack.pin:
        stack.tap(f"pin_{digit}", "pin")
    stack.tap("pin_OK", "pin")
    stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "agent", "agent menu")
    screenshot(stack.display, "shell-10-agent")


def test_pin_gate_locks_for_a_minute_after_three_wrong_tries():
    now = [0.0]
    gate = PinGate(hash_pin("246813", iterations=1000), clock=lambda: now[0])
    assert not gate.check("111111") and not gate.check("222222")
    assert gate.locked_for() == 0
    assert not gate.check("333333")
    assert gate.locked_for() == LOCK_SECONDS
    assert not gate.check("246813")  # even the right PIN, while locked
    now[0] += LOCK_SECONDS
    assert gate.check("246813")
    assert not PinGate("").check("")  # no PIN configured: no agent menu


def test_read_aloud_makes_sound_in_every_language(tmp_path):
    import subprocess
    from kiosk.shell import speech
    for lang, text in (("fr", "Choisissez le site"), ("gcf", "Chwazi sit la"),
                       ("en", "Choose the site")):
        wav = tmp_path / f"{lang}.wav"
        subprocess.run(speech.command(text, lang, wav), check=True, timeout=30)
        assert wav.stat().st_size > 10_000
    assert speech.VOICES["gcf"] == "fr"


def test_offline_detection_reads_the_routing_table(tmp_path):
    from kiosk.shell.app import has_default_route
    table = tmp_path / "route"
    table.write_text("Iface\tDestination\tGateway\nwwan0\t00000000\t0100000A\n")
    assert has_default_route(str(table))
    table.write_text("Iface\tDestination\tGateway\nlo\t0000007F\t00000000\n")
    assert not has_default_route(str(table))


STOPS = "".join(
    f'\n[[bus_stop]]\nweekday = "{day}"\ncommune = "{commune}"\nplace = "Mairie"\n'
    for day, commune in (("monday", "Le Marin"), ("tuesday", "Sainte-Anne"),
                         ("wednesday", "Le Vauclin"), ("thursday", "Rivière-Pilote")))


def test_bus_stops_on_welcome_and_the_offline_screen(tmp_path, xvfb, cupsd, fake_portals):
    stack = Stack(tmp_path, xvfb.display, cupsd, fake_portals.url("/"), extra_site=STOPS)
    stack.start()
    try:
        stops = stack.wait(lambda e: e["event"] == "stops", "bus stops")
        assert stops["text"].startswith("Prochains arrêts du bus")
        assert sum(commune in stops["text"] for commune in
                   ("Le Marin", "Sainte-Anne", "Le Vauclin", "Rivière-Pilote")) == 3
        time.sleep(1)  # the first frames of a fresh window take a moment to draw
        screenshot(stack.display, "shell-0-welcome-bus-stops")
        (tmp_path / "route").write_text("Iface\tDestination\tGateway\n")  # 4G link down
        stack.wait(lambda e: e["event"] == "offline" and e["on"], "offline screen")
        time.sleep(0.5)
        screenshot(stack.display, "shell-11-offline")
        (tmp_path / "route").write_text("Iface\tDestination\tGateway\nwwan0\t00000000\t01\n")
        stack.wait(lambda e: e["event"] == "offline" and not e["on"], "back online")
    finally:
        stack.stop()


def test_next_stops_come_in_order_from_now():
    from datetime import datetime
    from kiosk import config
    from harness import SITE
    text = SITE.read_text() + STOPS
    site = config.load_text(text)
    wednesday_noon = datetime(2026, 11, 25, 12, 0)
    assert [s.commune for s in site.next_stops(wednesday_noon)] == [
        "Le Vauclin", "Rivière-Pilote", "Le Marin"]
    wednesday_evening = datetime(2026, 11, 25, 18, 0)
    assert [s.commune for s in site.next_stops(wednesday_evening, count=2)] == [
        "Rivière-Pilote", "Le Marin"]


def test_idle_warning_shows_above_the_portal_and_gives_it_back(stack):
    from PIL import Image
    start_session(stack)
    mark = len(stack.events())
    stack.tap("tile_0", "home")
    stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "portal", "portal",
               since=mark)
    stack.wait(lambda e: e["event"] == "warning", "idle warning", timeout=25, since=mark)
    time.sleep(1)
    shot = Image.open(screenshot(stack.display, "shell-12-warning-over-portal")).convert("RGB")
    assert sum(shot.getpixel((900, 300))) < 120  # the dark warning, not the white page
    stack.tap("still_here")
    time.sleep(2)
    shot = Image.open(screenshot(stack.display, "shell-13-portal-again")).convert("RGB")
    assert sum(shot.getpixel((900, 300))) > 600  # the page is back on top


def test_print_a_download_scan_and_the_agents_test_page(tmp_path, xvfb, cupsd, fake_portals):
    """« Imprimer » prints what the resident saved from the portal, « Scanner » scans on
    SANE's test scanner, and the agent's test page comes out of the printer."""
    stack = Stack(tmp_path, xvfb.display, cupsd, fake_portals.url("/escape"),
                  extra_site='\n[scanning]\ndevice = "test"\n', idle_warning_seconds=300)
    stack.start()
    try:
        start_session(stack)
        mark = len(stack.events())
        stack.tap("tile_0", "home")
        stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "portal", "portal",
                   since=mark)
        from harness import read_log as read  # [] until the browser has written
        wait_for(lambda: any(e.get("event") == "loaded" and e.get("ok")
                             for e in read(stack.browser_audit)), timeout=30, what="page")
        # Nothing saved yet: the resident is told so, and nothing is printed.
        mark = len(stack.events())
        stack.tap("portal_print", "portal")
        nothing = stack.wait(lambda e: e["event"] == "message", "nothing to print", since=mark)
        assert "Rien à imprimer" in nothing["text"], nothing["text"]
        # Save the portal's PDF (a real click in the page), then « Imprimer ».
        x, y = portals.link_position("download-pdf")
        click(stack.display, x + 260, y)
        downloads = wait_for(lambda: list((tmp_path / "data" / "sessions").glob(
            "*/downloads/*.pdf")), timeout=20, what="the PDF saved in the session")
        assert downloads
        # « Imprimer » shows the saved document (rendered by the daemon) before printing it.
        mark = len(stack.events())
        stack.tap("portal_print", "portal")
        stack.wait(lambda e: e["event"] == "preview", "the document's preview", since=mark)
        time.sleep(0.5)
        from PIL import Image
        shot = Image.open(screenshot(stack.display, "shell-15-documents")).convert("RGB")
        assert sum(shot.getpixel((900, 300))) > 600  # the white page over the grey backdrop
        before = set(cupsd.outputs())
        mark = len(stack.events())
        stack.tap("document_print", "documents")
        stack.wait(lambda e: e["event"] == "message" and "Impression" in e["text"], "printing",
                   since=mark)
        wait_for(lambda: set(cupsd.outputs()) - before, timeout=60, what="printed download")
        mark = len(stack.events())
        stack.tap("documents_back", "documents")
        stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "portal", "back to the page",
                   since=mark)
        # « Scanner »: a page from SANE's test scanner, in the session.
        mark = len(stack.events())
        stack.tap("portal_scan", "portal")
        ready = stack.wait(lambda e: e["event"] == "message" and "1 page" in e["text"],
                           "scan ready", since=mark, timeout=60)
        assert "scann" in ready["text"]  # « Document scanné : 1 page(s). »
        assert list((tmp_path / "data" / "sessions").glob("*/scans/*.pdf"))
        screenshot(stack.display, "shell-14-scanned")
        # The agent's test page, from the agent menu.
        stack.tap("portal_home", "portal")
        stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "home", "home")
        open_agent_menu(stack)
        before = set(cupsd.outputs())
        mark = len(stack.events())
        stack.tap("agent_test_page", "agent")
        stack.wait(lambda e: e["event"] == "message" and "test" in e["text"], "test page sent",
                   since=mark)
        produced = wait_for(lambda: set(cupsd.outputs()) - before, timeout=60,
                            what="test page out of the printer")
        assert produced
    finally:
        stack.stop()


def open_agent_menu(stack):
    for _ in range(5):
        stack.tap("site_title", "home")
        time.sleep(0.15)
    stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "pin", "PIN pad")
    for digit in stack.pin:
        stack.tap(f"pin_{digit}", "pin")
    stack.tap("pin_OK", "pin")
    stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "agent", "agent menu")


def test_agent_restarts_the_screen_and_shuts_down_after_a_wipe(tmp_path, xvfb, cupsd,
                                                               fake_portals):
    marker = tmp_path / "powered-off"
    stack = Stack(tmp_path, xvfb.display, cupsd, fake_portals.url("/"),
                  idle_warning_seconds=300, shutdown_command=("touch", str(marker)))
    stack.start()
    try:
        # « Redémarrer l'écran »: the shell leaves with status 3, for systemd to start it again.
        start_session(stack)
        open_agent_menu(stack)
        stack.tap("agent_restart", "agent")
        assert stack.shell.wait(timeout=20) == 3
        # What systemd does next: a fresh shell. It wipes the session it finds open (the
        # person in front may be someone else by now), then welcomes the next resident.
        mark = len(stack.events())
        stack.start_shell()
        wiped = stack.wait(lambda e: e["event"] == "stale_session_wiped", "stale session wiped",
                           since=mark)
        assert wiped["wiped"] is True
        start_session(stack)
        # « Éteindre la borne »: the session is wiped first, then the power-off command runs.
        open_agent_menu(stack)
        stack.tap("agent_shutdown", "agent")
        wait_for(marker.exists, timeout=20, what="the power-off command")
        from kiosk.daemon_client import DaemonClient
        status = DaemonClient(tmp_path / "daemon.sock").status()
        assert status["session"] is None and status["leftovers"] == {}
        assert not any((tmp_path / "data" / "sessions").glob("*/downloads/*"))
    finally:
        stack.stop()
