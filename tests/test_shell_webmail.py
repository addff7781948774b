"""« Ma messagerie »: read an e-mailed code without losing the portal's page (issue #14).

The real stack on Xvfb (daemon, Kivy shell, two real browsers), driven by real clicks:
a resident half fills the portal's form with the on-page keyboard, opens their webmail
from the portal bar (a second browser over the first), types there too, comes back with
« Revenir à … » and finishes the form — the field still held what was typed. « Terminer »
then stops both browsers. Screenshots go to test-artifacts/webmail-*.png.
"""

import os
import time
from pathlib import Path

import pytest

import portals
from harness import Stack, click, read_log as read, screenshot, start_session, wait_for
from kiosk import config as site_config

from kiosk.daemon_client import DaemonError
from kiosk.processes import _start_time, group_members
from kiosk.shell import webmail

BAR = 260  # the portal bar's width: the browsers start right of it


def test_the_list_shows_the_webmails_the_site_allows_in_the_order_residents_know():
    bundled = site_config.load(site_config.bundled_config())
    names = [choice["name"] for choice in webmail.choices(bundled)]
    assert names == ["Gmail", "Outlook / Hotmail", "Yahoo", "Orange", "SFR", "Free", "La Poste"]
    policy = bundled.policy()
    for url in ("https://accounts.google.com/v3/signin/identifier", "https://login.live.com/",
                "https://login.yahoo.com/", "https://login.orange.fr/", "https://zimbra.free.fr/",
                "https://www.sfr.fr/cas/login", "https://webmail.laposte.net/"):
        assert policy.decide(url).allowed, url
    # Narrow rules: the sign-in hosts, never Google's search or YouTube, nor SFR's shop.
    for url in ("https://www.google.com/search?q=x", "https://www.youtube.com/",
                "https://www.sfr.fr/offre-mobile", "https://drive.google.com/"):
        assert not policy.decide(url).allowed, url
    # A site without the portal shows no list (and no bar button).
    text = Path(bundled.source).read_text()
    without = site_config.load_text(text.split("\n[[portal]]\n# « Ma messagerie »")[0])
    assert len(without.portal) == len(bundled.portal) - 1
    assert webmail.choices(without) == []


def test_a_site_with_its_own_webmail_lists_its_start_page(tmp_path, fake_portals):
    stack = Stack(tmp_path, ":0", None, fake_portals.url("/"),
                  webmail_url=fake_portals.url("/messagerie"))
    site = site_config.load(stack.write_site())
    assert webmail.choices(site) == [{"name": "Ma messagerie", "hint": "",
                                      "url": fake_portals.url("/messagerie")}]


def alive(pid, start):
    return _start_time(pid) == start or bool(group_members(pid))


def test_the_daemon_keeps_one_browser_per_slot_and_the_wipe_stops_both(daemon):
    """The stand-in browser ignores SIGTERM: only the wipe's KILL stops it."""
    client = daemon.client()
    client.start_session()
    portal = client.open_url("https://www.impots.gouv.fr/")
    mail = client.open_url("https://mail.google.com/mail/", slot="mail")
    assert (portal["slot"], mail["slot"]) == ("portal", "mail")
    first = {pid: _start_time(pid) for pid in (portal["pid"], mail["pid"])}
    # Another webmail replaces the mail browser only: the portal's page is untouched.
    other = client.open_url("https://messagerie.orange.fr/", slot="mail")
    assert alive(portal["pid"], first[portal["pid"]])
    wait_for(lambda: not alive(mail["pid"], first[mail["pid"]]), what="the first mail browser")
    with pytest.raises(DaemonError) as refused:
        client.open_url("https://www.caf.fr/", slot="tab3")
    assert refused.value.status == 400 and refused.value.code == "bad_slot"
    with pytest.raises(DaemonError):  # the mail slot is no way around the allowlist
        client.open_url("https://www.google.com/search?q=x", slot="mail")
    survivors = {portal["pid"]: first[portal["pid"]], other["pid"]: _start_time(other["pid"])}
    report = client.end_session("user")
    assert report["wiped"] is True, report
    assert not [pid for pid, start in survivors.items() if alive(pid, start)]
    assert client.status()["leftovers"] == {}


@pytest.fixture
def stack(tmp_path, xvfb, cupsd, fake_portals):
    instance = Stack(tmp_path, xvfb.display, cupsd, fake_portals.url("/"),
                     idle_warning_seconds=300, webmail_url=fake_portals.url("/messagerie"))
    instance.start()
    yield instance
    instance.stop()


def type_on_page(stack, keys):
    """Touch the on-page keyboard's keys (kiosk/browser/keyboard.js) in the browser window."""
    for key in keys:
        x, y = portals.keyboard_key(key, screen=(1280 - BAR, 800))
        click(stack.display, x + BAR, y)
        time.sleep(0.15)


def loaded(stack, path, since=0):
    return wait_for(lambda: next((e for e in read(stack.browser_audit)[since:]
                                  if e.get("event") == "loaded" and e.get("ok")
                                  and path in e.get("url", "")), None),
                    timeout=40, what=f"{path} loaded in a browser")


def page_colour(name, display, where=(1150, 300)):
    """R+G+B at ``where`` (by default a blank spot of both pages, above the keyboard)."""
    from PIL import Image
    shot = Image.open(screenshot(display, name)).convert("RGB")
    return sum(shot.getpixel(where))


def test_webmail_over_the_portal_and_back_to_the_half_filled_form(stack, fake_portals):
    start_session(stack)
    mark = len(stack.events())
    stack.tap("tile_0", "home")  # the test portal
    stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "portal", "portal", since=mark)
    loaded(stack, "portal.test")
    time.sleep(1)
    # The first digits of the form, with the on-page keyboard.
    click(stack.display, portals.FORM_FIELD[0] + BAR, portals.FORM_FIELD[1])
    time.sleep(0.8)
    type_on_page(stack, "972")
    screenshot(stack.display, "webmail-1-portal-half-filled")
    # « Écouter » on the bar tells about the new button too.
    mark = len(stack.events())
    stack.tap("portal_listen", "portal")
    spoken = stack.wait(lambda e: e["event"] == "speak", "read aloud", since=mark)
    assert "« Ma messagerie »" in spoken["text"], spoken
    # « Ma messagerie »: the list of webmails, above the portal's window.
    mark = len(stack.events())
    stack.tap("portal_mail", "portal")
    stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "webmail"
               and "webmail_0" in e["targets"], "the list of webmails", since=mark)
    time.sleep(0.5)
    # the shell's list over the page: its first (blue) choice where the white page was
    assert page_colour("webmail-2-chooser", stack.display, (620, 240)) < 400
    audit_mark = len(read(stack.browser_audit))
    stack.tap("webmail_0", "webmail")
    stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "portal", "back on the bar",
               since=mark)
    loaded(stack, "/messagerie", since=audit_mark)
    time.sleep(1)
    mail_colour = page_colour("webmail-3-mail-over-portal", stack.display)
    assert mail_colour < 400, mail_colour  # the webmail's dark page lies over the portal
    # The on-page keyboard works in the webmail's browser too.
    click(stack.display, portals.FORM_FIELD[0] + BAR, portals.FORM_FIELD[1])
    time.sleep(0.8)
    type_on_page(stack, "ab↵")
    wait_for(lambda: ("portal.test", "/messagerie?q=ab") in fake_portals.hits,
             what="the webmail's search sent")
    # « Revenir à Test »: the portal's window on top again, its field as it was.
    mark = len(stack.events())
    stack.tap("portal_mail", "portal")
    shown = stack.wait(lambda e: e["event"] == "mail_shown", "portal raised", since=mark)
    assert shown["slot"] == "portal"
    time.sleep(1)
    assert page_colour("webmail-4-back-to-portal", stack.display) > 700  # white again
    click(stack.display, portals.FORM_FIELD[0] + BAR, portals.FORM_FIELD[1])
    time.sleep(0.8)
    type_on_page(stack, "1↵")
    wait_for(lambda: ("portal.test", "/merci?fiscal=9721") in fake_portals.hits,
             what="the form sent with the digits typed before the trip to the webmail")
    # « Ma messagerie » again: straight to the open webmail, no list, no reload.
    mark, audit_mark = len(stack.events()), len(read(stack.browser_audit))
    stack.tap("portal_mail", "portal")
    assert stack.wait(lambda e: e["event"] == "mail_shown", "mail raised",
                      since=mark)["slot"] == "mail"
    time.sleep(1)
    assert page_colour("webmail-5-mail-again", stack.display) < 400
    assert not [e for e in read(stack.browser_audit)[audit_mark:] if e.get("event") == "start"]
    # « Terminer »: both browsers die, the wipe says clean.
    pids = [e["pid"] for e in read(stack.browser_audit) if e.get("event") == "start"]
    assert len(pids) == 2, pids
    mark = len(stack.events())
    stack.tap("portal_finish", "portal")
    ended = stack.wait(lambda e: e["event"] == "ended", "session end", since=mark)
    assert ended["wiped"] is True
    time.sleep(0.5)
    screenshot(stack.display, "webmail-6-end-signed-out")
    assert not [pid for pid in pids if os.path.exists(f"/proc/{pid}") and
                Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"]
    from kiosk.daemon_client import DaemonClient
    status = DaemonClient(stack.root / "daemon.sock").status()
    assert status["session"] is None and status["leftovers"] == {}


def test_the_webmail_tile_opens_the_list_then_the_mail_alone(stack):
    start_session(stack)
    mark = len(stack.events())
    stack.tap("tile_1", "home")  # « Ma messagerie »
    stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "webmail"
               and "webmail_0" in e["targets"], "the list of webmails", since=mark)
    screenshot(stack.display, "webmail-0-chooser-from-home")
    stack.tap("webmail_cancel", "webmail")
    stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "home", "home", since=mark)
    stack.tap("tile_1", "home")
    stack.wait(lambda e: e["event"] == "layout" and e["screen"] == "webmail"
               and "webmail_0" in e["targets"], "the list again", since=mark)
    audit_mark = len(read(stack.browser_audit))
    stack.tap("webmail_0", "webmail")
    loaded(stack, "/messagerie", since=audit_mark)
    time.sleep(1)
    assert page_colour("webmail-7-mail-from-home", stack.display) < 400
