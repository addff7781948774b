"""Nobody leaves the allowlist at the network layer: the real browser, a hostile page,
and a raw listener playing the refused host.

Chromium opens some connections that no request interceptor sees (preconnect,
speculative loads, WebRTC's STUN and TURN). Each escape page below is loaded on
its own (the shell's « start » word loads the next one), on an allowed host, and
tries to reach ``evil.test`` on the raw listener's port, which logs every TCP
connection and every UDP datagram. It must log nothing: first with the browser
alone (layer 1: interceptor, connection gate, WebRTC without UDP), then with the
real Squid as its proxy (layer 2), the browser then unable to resolve any name
itself, so that the pages it shows can only have come through the proxy.
"""

from __future__ import annotations

import re
import time

import pytest

import escapes
from harness import Browser, site_for_portal, wait_for


@pytest.fixture
def raw():
    listener = escapes.RawListener()
    listener.self_check()
    yield listener
    listener.close()


def run_escapes(browser: Browser, portals, raw) -> dict[str, list]:
    """Every escape page in turn; what the raw listener heard during each."""
    heard: dict[str, list] = {}
    names = list(escapes.ESCAPES)
    portals.escapes[:] = names
    portals.done.clear()
    browser.start()
    for index, name in enumerate(names):
        mark = len(browser.entries()) if index else 0
        if index:
            browser.command("start")  # /escape/next: the next page, a fresh load

        def finished():
            new = browser.entries()[mark:]
            return name in portals.done or any(
                e.get("event") == "loaded" and e.get("url") == "kiosk:refused-page"
                for e in new)

        wait_for(finished, timeout=20, what=f"the escape page {name}")
        time.sleep(1.0)  # late retries (STUN, TURN) still land in this page's window
        heard[name] = list(raw.events)
        raw.events.clear()
    return heard


def nothing_escapes(browser: Browser, portals, raw) -> None:
    """Every escape page in turn: the refused host hears nothing, and each page ran to
    its end or was refused (so the escapes really were attempted)."""
    portals.escaped_to = f"evil.test:{raw.port}"
    portals.hits.clear()
    try:
        heard = run_escapes(browser, portals, raw)
    finally:
        browser.stop()
    assert {name: events for name, events in heard.items() if events} == {}
    assert portals.hosts_hit() == {"portal.test"}, portals.hits
    refused = {e["url"] for e in browser.entries() if e.get("event") == "refused_navigation"}
    assert any("meta-refresh" in url for url in refused), refused
    assert any("top-navigated" in url for url in refused), refused
    assert set(portals.done) >= set(escapes.ESCAPES) - {
        "meta-refresh", "frame-navigates-top"}, portals.done


def test_layer1_the_browser_alone_opens_nothing_to_a_refused_host(tmp_path, xvfb,
                                                                  fake_portals, raw):
    site = site_for_portal(tmp_path, fake_portals.url("/"))
    nothing_escapes(Browser(tmp_path, xvfb.display, site, fake_portals.url("/escape/next")),
                    fake_portals, raw)


def test_browser_says_it_is_plain_chrome(tmp_path, xvfb, fake_portals):
    fake_portals.agents.clear()
    site = site_for_portal(tmp_path, fake_portals.url("/"))
    browser = Browser(tmp_path, xvfb.display, site, fake_portals.url("/")).start()
    browser.stop()
    agent = fake_portals.agents[0]
    assert "QtWebEngine" not in agent and "Qt" not in agent, agent
    assert re.search(r" Chrome/\d+\.\d+\.\d+\.\d+ Safari/537\.36$", agent), agent
    assert agent.startswith("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"), agent


def test_layer2_through_the_real_squid_nothing_reaches_a_refused_host(tmp_path, xvfb,
                                                                      fake_portals, raw,
                                                                      squid_factory):
    """The terminal's path: every page through Squid, which the browser cannot bypass
    here because it resolves no name itself (the proxy maps the test names)."""
    allow = f"portal.test:{fake_portals.port}"
    squid = squid_factory(site_for_portal(tmp_path, fake_portals.url("/"), allow=allow),
                          ("portal.test", "evil.test"), destinations="any")
    (tmp_path / "b").mkdir()
    site = site_for_portal(tmp_path / "b", fake_portals.url("/"), allow=allow,
                           proxy=f"127.0.0.1:{squid.port}")
    nothing_escapes(Browser(tmp_path / "b", xvfb.display, site,
                            fake_portals.url("/escape/next"), resolve_names=False),
                    fake_portals, raw)
    assert "escape-done" not in squid.stderr_path.read_text()  # Squid's log: no URL
