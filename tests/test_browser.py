"""The second promise, in a real Qt WebEngine under Xvfb: nobody leaves the allowlist.

The fake portal's escape page tries everything at load (window.open, an iframe,
images, fetch to a refused host), then the test clicks, with real input events,
on links to file:, javascript:, data:, a userinfo trick, a hex IP, a redirect, a
target=_blank link and two downloads. The fake server records every host it was
asked for: only the allowed one may appear; the audit log and the page shown
must agree.
"""

import subprocess
import time

import pytest

import portals
from harness import Browser, click, screenshot, site_for_portal, wait_for


@pytest.fixture
def browser(tmp_path, xvfb, fake_portals):
    site = site_for_portal(tmp_path, fake_portals.url("/"))
    instance = Browser(tmp_path, xvfb.display, site, fake_portals.url("/escape"))
    yield instance
    instance.stop()


def decisions(browser):
    return [e for e in browser.entries() if "allowed" in e and "event" not in e]


def test_escape_page_gets_nothing_through(browser, fake_portals, xvfb):
    fake_portals.hits.clear()
    browser.start()
    wait_for(lambda: {"subframe", "image", "xhr"} <= {
        d["resource_type"] for d in decisions(browser) if not d["allowed"]},
        what="the escape page's automatic attempts")
    screenshot(xvfb.display, "browser-escape-page")
    refused = [d for d in decisions(browser) if not d["allowed"]]
    assert all(d["rule"] == "block *" for d in refused)
    assert any("window-open" in e.get("url", "") for e in browser.entries()
               if e.get("event") in ("popup", "refused_navigation"))

    def attempt(name, expect):
        time.sleep(0.5)  # let the page settle before the next click
        before = len(browser.entries())
        click(xvfb.display, *portals.link_position(name))
        time.sleep(1.5)
        new = browser.entries()[before:]
        assert expect(new), (name, new)
        # Whatever happened, the page shown is the portal or the refusal page.
        shown = [e for e in new if e.get("event") == "loaded"]
        for event in shown:
            assert "evil" not in event["url"] and "/etc/passwd" not in event["url"], event
        if any(e.get("url") == "kiosk:refused-page" for e in shown):
            screenshot(xvfb.display, f"browser-refused-{name}")
            mark = len(browser.entries())
            click(xvfb.display, 640, 652)  # « Revenir »: back to the escape page
            browser.wait_event(lambda e: e.get("event") == "loaded"
                               and e.get("url", "").endswith("/escape"), "back to the portal",
                               since=mark)

    refused_nav = lambda entries: any(e.get("event") == "refused_navigation" for e in entries)
    nothing_loaded_elsewhere = lambda entries: True
    attempt("file", nothing_loaded_elsewhere)
    attempt("javascript", refused_nav)
    attempt("data", nothing_loaded_elsewhere)
    attempt("userinfo", refused_nav)
    attempt("hexip", refused_nav)
    attempt("redirect", lambda entries: any(
        "redirected" in e.get("url", "") and (e.get("event") == "refused_navigation"
                                             or e.get("allowed") is False) for e in entries))
    attempt("popup-link", refused_nav)
    attempt("download-exe", lambda entries: any(
        e.get("event") == "download" and not e["allowed"] for e in entries))
    attempt("download-pdf", lambda entries: any(
        e.get("event") == "download" and e["allowed"] for e in entries))

    # The server never saw a request for any host but the allowed one.
    assert fake_portals.hosts_hit() == {portals.ALLOWED_HOST}, fake_portals.hits
    saved = list(browser.downloads.iterdir())
    assert [p.suffix for p in saved] == [".pdf"], saved
    assert saved[0].read_bytes().startswith(b"%PDF")
    # Every decision the browser logged is in the agreed format.
    for entry in decisions(browser):
        assert set(entry) >= {"url", "allowed", "rule", "resource_type", "main_frame"}


def test_browser_refuses_to_open_a_refused_start_page(tmp_path, fake_portals):
    import subprocess
    import sys
    from pathlib import Path

    site = site_for_portal(tmp_path, fake_portals.url("/"))
    result = subprocess.run([str(Path(sys.executable).parent / "kiosk-browser"), "--url",
                             "http://evil.test/", "--config", str(site), "--no-sandbox"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1


def test_browser_will_not_run_as_root_with_its_sandbox(tmp_path, fake_portals):
    import os
    import subprocess
    import sys
    from pathlib import Path

    if os.geteuid() != 0:
        pytest.skip("only meaningful as root")
    site = site_for_portal(tmp_path, fake_portals.url("/"))
    result = subprocess.run([str(Path(sys.executable).parent / "kiosk-browser"), "--url",
                             fake_portals.url("/"), "--config", str(site)],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "LANGUAGE": "en"})
    assert result.returncode == 2 and "sandbox" in result.stderr


def test_touch_keyboard_fills_a_real_web_form(tmp_path, xvfb, fake_portals):
    site = site_for_portal(tmp_path, fake_portals.url("/"))
    browser = Browser(tmp_path, xvfb.display, site, fake_portals.url("/")).start()
    try:
        time.sleep(0.5)
        click(xvfb.display, *portals.FORM_FIELD)
        time.sleep(0.8)
        screenshot(xvfb.display, "browser-touch-keyboard")
        for key in "1234567890123":
            click(xvfb.display, *portals.keyboard_key(key))
        click(xvfb.display, *portals.keyboard_key("↵"))
        wait_for(lambda: any(path.startswith("/merci") for _, path in fake_portals.hits),
                 what="the form submitted")
        submitted = [path for _, path in fake_portals.hits if path.startswith("/merci")][-1]
        assert submitted == "/merci?fiscal=1234567890123"
    finally:
        browser.stop()


def test_upload_dialog_offers_only_this_sessions_documents(tmp_path, xvfb, fake_portals):
    site = site_for_portal(tmp_path, fake_portals.url("/"))
    browser = Browser(tmp_path, xvfb.display, site, fake_portals.url("/upload"))
    (tmp_path / "downloads").mkdir()
    (tmp_path / "scans").mkdir()
    (tmp_path / "downloads" / "avis.pdf").write_bytes(b"%PDF-1.4")
    time.sleep(0.05)
    (tmp_path / "scans" / "justificatif.pdf").write_bytes(b"%PDF-1.4")
    browser.start()
    try:
        time.sleep(0.5)
        click(xvfb.display, 260, 190)  # the page's « Choose a file » field
        time.sleep(1.5)
        screenshot(xvfb.display, "browser-upload-chooser")
        click(xvfb.display, 640, 181)  # first row: the newest document (the scan)
        time.sleep(0.3)
        click(xvfb.display, 649, 579)  # « Envoyer ce document »
        wait_for(lambda: any(p == "/merci?file=justificatif.pdf" for _, p in fake_portals.hits),
                 what="the scan sent through the upload field")
        uploads = [e for e in browser.entries() if e.get("event") == "upload"]
        assert uploads and uploads[-1]["files"] == 1  # counted, not named
        # The page's own address carried the name in its query: the record keeps neither.
        assert "justificatif" not in browser.audit_path.read_text()
    finally:
        browser.stop()


def test_shortcuts_that_would_leave_do_nothing(tmp_path, xvfb, fake_portals):
    import os
    site = site_for_portal(tmp_path, fake_portals.url("/"))
    browser = Browser(tmp_path, xvfb.display, site, fake_portals.url("/")).start()
    env = {**os.environ, "DISPLAY": xvfb.display}
    try:
        windows = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "."],
                                 capture_output=True, text=True, env=env).stdout.split()
        for keys in ("ctrl+p", "ctrl+n", "ctrl+o", "ctrl+s", "F12", "ctrl+shift+i", "alt+F4",
                     "ctrl+w", "ctrl+q", "ctrl+u", "F11"):
            subprocess.run(["xdotool", "key", keys], env=env, check=True, timeout=10)
            time.sleep(0.2)
        time.sleep(1)
        after = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "."],
                               capture_output=True, text=True, env=env).stdout.split()
        assert sorted(after) == sorted(windows)  # no dialog, no new or closed window
        assert browser.process.poll() is None  # Alt+F4 / Ctrl+Q did not close it
        loads = [e for e in browser.entries() if e.get("event") == "loaded"]
        assert all("view-source" not in e["url"] for e in loads)
    finally:
        browser.stop()
