"""How the browser's own connections leave: the connection gate, WebRTC, the user agent.

The request interceptor decides every request Chromium shows it, but Chromium also
opens connections it never shows: ``<link rel=preconnect>``, speculative and
background connections, WebRTC's STUN and TURN. Those all ask Chromium's proxy
resolution where to go, so the site's hosts are also written into a proxy
auto-config script (PAC) that Chromium consults for every connection: a host some
allow rule can match goes to the filtering proxy (or directly when the site runs
none), any other host to a closed port on loopback, where the connection dies
before a byte leaves the machine. The script only compares names: it never looks a
name up, so a refused name is not even sent to a DNS server.

WebRTC's UDP is not proxied at all, so it is turned off
(``disable_non_proxied_udp``): STUN and TURN can then only use TCP, through the
gate. No portal of the kiosk uses WebRTC; it is left to fail rather than removed
from pages, because removing it from every frame and popup cannot be made certain
in page scripts, and the gate already is.

One thing the gate cannot do: Chromium never asks a PAC script about loopback and
link-local addresses (127.0.0.0/8, ::1, 169.254.0.0/16, fe80::/10) and connects to
them directly. Those stay on the terminal or its wire; the firewall (only the
proxy's port on loopback) and the browser unit's IPAddressAllow=localhost close them.

The firewall and the proxy's own rules are the second, independent layer: this
module keeps the browser honest on its own.
"""

from __future__ import annotations

import base64
import json
import os
import re
from typing import Any

from kiosk.urlfilter import parse_filter

# Where refused connections go: loopback's discard port, where nothing listens on
# a terminal (and which the firewall refuses to the browser's user anyway).
BLACKHOLE = "PROXY 127.0.0.1:9"
# Chromium's own phoning home (safe browsing, component updates, pings, metrics).
QUIET_FLAGS = ("--disable-background-networking", "--disable-component-update", "--no-pings",
               "--disable-domain-reliability")
WEBRTC_FLAG = "--force-webrtc-ip-handling-policy=disable_non_proxied_udp"


def _bare(host: str) -> str:
    return host.strip(".").strip("[]").lower()


def gate_hosts(allow: list[str], block: list[str]) -> dict[str, list[str]]:
    """The hosts an allow rule can match, and the host-wide blocks that override them.

    "caf.fr" lets in caf.fr and its subdomains (a suffix), ".www.caf.fr" only that
    host (exact). Rules without a host (``*``, ``file:``) let in no host. A block
    rule counts here only when it names a whole host (no path, query or port):
    path-level rules are the interceptor's.
    """
    hosts: dict[str, list[str]] = {"suffix": [], "exact": [], "block_suffix": [],
                                   "block_exact": []}
    for text, allowed in [(r, True) for r in allow] + [(r, False) for r in block]:
        rule = parse_filter(text, allow=allowed)
        host = _bare(rule.host)
        if not host or rule.scheme in ("file", "data", "about", "chrome", "javascript"):
            continue
        if not allowed and (rule.path not in ("", "/") or rule.query or rule.port):
            continue
        kind = ("suffix" if rule.match_subdomains else "exact")
        key = kind if allowed else "block_" + kind
        if host not in hosts[key]:
            hosts[key].append(host)
    return hosts


PAC_TEMPLATE = """// PLUS kiosk: where Chromium may open a connection (generated from the site file).
var HOSTS = %(hosts)s;
function under(host, list) {
  for (var i = 0; i < list.length; i++) {
    if (host === list[i] || host.endsWith("." + list[i])) return true;
  }
  return false;
}
function FindProxyForURL(url, host) {
  host = host.toLowerCase().replace(/^\\[|\\]$/g, "").replace(/\\.$/, "");
  var allowed = (under(host, HOSTS.suffix) || HOSTS.exact.indexOf(host) >= 0)
      && !under(host, HOSTS.block_suffix) && HOSTS.block_exact.indexOf(host) < 0;
  return allowed ? %(route)s : %(blackhole)s;
}
"""


def pac_script(allow: list[str], block: list[str], proxy_listen: str) -> str:
    """The PAC script: allowed hosts to the proxy (``host:port``), or direct when ""."""
    route = f"PROXY {proxy_listen}" if proxy_listen else "DIRECT"
    return PAC_TEMPLATE % {"hosts": json.dumps(gate_hosts(allow, block)),
                           "route": json.dumps(route), "blackhole": json.dumps(BLACKHOLE)}


def chromium_flags(config: Any, no_sandbox: bool) -> None:
    """Set the Chromium switches the browser runs with (before Qt WebEngine starts)."""
    pac = pac_script(config.allow_rules(), list(config.filter.block), config.proxy.listen)
    url = "data:application/x-ns-proxy-autoconfig;base64," + base64.b64encode(
        pac.encode()).decode()
    flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
    # Whatever came from outside may not turn the gate off or point it elsewhere.
    flags = re.sub(r"--(no-proxy-server|proxy-server|proxy-pac-url|proxy-bypass-list|"
                   r"force-webrtc-ip-handling-policy|webrtc-ip-handling-policy)(=\S*)?", "",
                   flags)
    ours = " ".join((*QUIET_FLAGS, WEBRTC_FLAG, "--proxy-pac-url=" + url))
    os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = f"{flags} {ours}".strip()
    if no_sandbox:
        os.environ["QTWEBENGINE_DISABLE_SANDBOX"] = "1"
    else:
        os.environ.pop("QTWEBENGINE_DISABLE_SANDBOX", None)


def plain_chrome() -> str:
    """The user agent of the ordinary Chrome of this engine's Chromium version.

    Sign-in pages (webmail, some portals) refuse "embedded browsers", which they
    recognise by the QtWebEngine token; the engine is Chromium all the same. Chrome
    itself announces only its major version ("Chrome/140.0.0.0"). The client hints'
    brands (Sec-CH-UA) carry no Qt name: Qt WebEngine 6.11 sends "Chromium" only.
    """
    from qtpy.QtWebEngineCore import qWebEngineChromiumVersion

    major = qWebEngineChromiumVersion().split(".")[0]
    return ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            f"Chrome/{major}.0.0.0 Safari/537.36")


def quiet_profile(profile: Any) -> None:
    """The profile's settings that keep it from opening anything on its own."""
    from qtpy.QtWebEngineCore import QWebEngineSettings

    settings = profile.settings()
    attribute = QWebEngineSettings.WebAttribute
    settings.setAttribute(attribute.DnsPrefetchEnabled, False)
    settings.setAttribute(attribute.WebRTCPublicInterfacesOnly, True)
    settings.setAttribute(attribute.LocalContentCanAccessRemoteUrls, False)
