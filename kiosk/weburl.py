"""URLs as the browser will contact them.

The allowlist is only as strong as the URL parsing under it: a rule for
``impots.gouv.fr`` must not be fooled by ``http://impots.gouv.fr@evil.example/``,
by backslashes, by ``0x7f.1`` or by a Unicode host. So URLs are parsed by
ada (a maintained implementation of the WHATWG URL standard, the one browsers
follow) and never by hand. On top of it sit the few places where Chromium's own
URL class (GURL) differs from the standard in a way the Chrome filter format can
see; each is named where it is handled.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import ada_url

# Schemes Chromium registers as "standard" (host-based) although the WHATWG
# standard treats them as opaque: GURL reads ``chrome:settings`` as having the
# host ``settings``, and so does the filter format.
CHROME_STANDARD_SCHEMES = frozenset(
    {"chrome", "chrome-untrusted", "chrome-extension", "chrome-search", "chrome-native",
     "chrome-distiller", "devtools", "isolated-app"}
)

# GURL::EffectiveIntPort: the port a request really goes to.
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}


def _gurl_path(path: str) -> str:
    """GURL escapes "|" in paths where WHATWG keeps it; path rules see GURL's form.

    (Both keep existing %XX escapes as written: "/%70ublic" is not "/public".)
    """
    return path.replace("|", "%7C")


@dataclass(frozen=True, slots=True)
class WebURL:
    """The parts of a parsed URL that a filter decision looks at."""

    href: str
    scheme: str
    host: str          # lowercase punycode for special schemes; "[v6]" for IPv6
    port: int | None   # effective port (explicit, else the scheme's default)
    path: str
    query: str | None  # without "?"; None when the URL has no "?"
    is_ip: bool = False

    @property
    def origin(self) -> str:
        """scheme://host[:port], with the port only when not the default."""
        if not self.host and self.scheme not in DEFAULT_PORTS:
            return "null"
        default = DEFAULT_PORTS.get(self.scheme)
        port = f":{self.port}" if self.port and self.port != default else ""
        return f"{self.scheme}://{self.host}{port}"


def parse(url: str) -> WebURL | None:
    """Parse ``url`` like a browser would; None when a browser would refuse it."""
    if not isinstance(url, str):
        return None
    try:
        parsed = ada_url.URL(url)
        href = parsed.href
        scheme = parsed.protocol[:-1]
        if scheme in CHROME_STANDARD_SCHEMES:
            # Re-read the rest as a host-based URL, the way GURL does.
            rest = href[len(scheme) + 1:]
            parsed = ada_url.URL("http:" + rest)
        host = parsed.hostname
        port_text = parsed.port
        pathname = parsed.pathname
        search = parsed.search
        host_type = parsed.host_type
        bare = parsed.href.split("#", 1)[0]
    except (ValueError, TypeError, UnicodeError):
        return None
    if port_text:
        port: int | None = int(port_text)
    else:
        port = DEFAULT_PORTS.get(scheme)
    hierarchical = pathname.startswith("/")
    return WebURL(
        href=href,
        scheme=scheme,
        host=host,
        port=port,
        path=_gurl_path(pathname) if hierarchical else pathname,
        query=search[1:] if search else ("" if bare.endswith("?") else None),
        is_ip=int(host_type) != 0,
    )


# Addresses without a host kept as they are: nothing of a resident's in them.
OPAQUE_KEPT = ("about", "kiosk")


def address_only(url: str) -> str:
    """``scheme://host[:port]/path`` of ``url``; other schemes keep their name only.

    What is kept of a page's address wherever it is recorded or passed on: the query,
    the fragment and the user-info carry what residents type (searches, OAuth codes).
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return "(unparsable)"
    scheme = parts.scheme.lower()
    if host:
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}{f':{port}' if port else ''}{parts.path}"
    if scheme in OPAQUE_KEPT:
        return f"{scheme}:{parts.path}"
    return f"{scheme}:" if scheme else "(relative)"
