"""The kiosk's own policy: block everything, allow the site's portals.

The Chrome-format filter decides host, port, path and query; this module adds
what a public terminal needs on top and that no list may undo: pages that would
show local files, run a typed script, render attacker-supplied HTML or open the
browser's internals are refused whatever the lists say.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from kiosk import weburl
from kiosk.i18n import _
from kiosk.urlfilter import URLFilter

# Schemes the filter may allow, each for pages and subresources alike. Plain http and
# ws only where the site says so (test portals): on the bus's public wifi, an
# unencrypted page of an allowed host could be anybody's page.
NETWORK_SCHEMES = frozenset({"https", "wss"})
INSECURE_SCHEMES = frozenset({"http", "ws"})


@dataclass(frozen=True, slots=True)
class Verdict:
    """A decision as the browser, its audit log and ``kioskctl`` report it."""

    url: str
    allowed: bool
    rule: str          # the filter or policy rule that decided
    source: str = ""   # where that rule comes from (a portal, shared rules…)
    reason: str = ""   # a sentence for people

    def as_dict(self) -> dict[str, object]:
        return {"url": self.url, "allowed": self.allowed, "rule": self.rule, "source": self.source}


class KioskPolicy:
    """``*`` blocked, the given rules allowed, dangerous schemes refused."""

    def __init__(self, allow: Iterable[str], block: Iterable[str] = (),
                 sources: Mapping[str, str] | None = None, insecure_http: bool = False):
        self.filter = URLFilter(blocklist=["*", *block], allowlist=list(allow))
        self.sources = dict(sources or {})
        self.schemes = NETWORK_SCHEMES | (INSECURE_SCHEMES if insecure_http else frozenset())

    def _refuse(self, url: str, rule: str, reason: str) -> Verdict:
        return Verdict(url, False, rule, _("kiosk policy"), reason)

    def decide(self, url: str, *, subresource: bool = False,
               initiator: str | None = None) -> Verdict:
        """Decide one request.

        ``subresource`` is true for images, scripts, XHR… (false for a page or
        a frame); ``initiator`` is the origin of the page that made the request,
        when known.
        """
        parsed = weburl.parse(url)
        if parsed is None:
            return self._refuse(str(url), "unparseable",
                                _("This address cannot be read, so it is not opened."))
        scheme = parsed.scheme
        if scheme == "about":
            if parsed.path == "blank" and not parsed.query:
                return Verdict(parsed.href, True, "about:blank", _("kiosk policy"),
                               _("An empty page."))
            return self._refuse(parsed.href, f"scheme:{scheme}",
                                _("Browser internal pages are not shown on this kiosk."))
        if scheme == "data":
            if subresource:
                return Verdict(parsed.href, True, "data:subresource", _("kiosk policy"),
                               _("Inline content of an allowed page."))
            return self._refuse(parsed.href, "scheme:data",
                                _("Pages built from a data: address are never shown."))
        if scheme == "blob":
            return self._decide_blob(parsed, subresource, initiator)
        if scheme in INSECURE_SCHEMES and scheme not in self.schemes:
            return self._refuse(parsed.href, f"scheme:{scheme}",
                                _("Unencrypted pages are not opened on this kiosk."))
        if scheme not in self.schemes:
            return self._refuse(parsed.href, f"scheme:{scheme}",
                                _("Addresses starting with {scheme}: are never opened on this kiosk.")
                                .format(scheme=scheme))
        return self._from_filter(parsed)

    def _from_filter(self, parsed: weburl.WebURL) -> Verdict:
        decision = self.filter.decide_parsed(parsed)
        rule = decision.rule
        if rule is None:  # cannot happen with "*" blocked, kept for safety
            return self._refuse(parsed.href, "no-rule", _("No rule allows this address."))
        label = ("allow " if rule.allow else "block ") + rule.text
        source = self.sources.get(label, _("kiosk policy") if rule.text == "*" else "")
        if decision.blocked:
            return Verdict(parsed.href, False, label, source,
                           _("This site is not reachable from this kiosk."))
        return Verdict(parsed.href, True, label, source, _("Allowed by the site's portal list."))

    def secure_version(self, url: str) -> str | None:
        """The https:// (wss://) address to use instead of an http:// (ws://) one, if
        that one is allowed: the browser upgrades rather than refuses."""
        parsed = weburl.parse(url)
        if parsed is None or parsed.scheme not in INSECURE_SCHEMES or parsed.scheme in self.schemes:
            return None
        secure = ("https" if parsed.scheme == "http" else "wss") + parsed.href[len(parsed.scheme):]
        if parsed.port == 80:
            secure = secure.replace(":80/", "/", 1)
        return secure if self.decide(secure).allowed else None

    def _decide_blob(self, parsed: weburl.WebURL, subresource: bool,
                     initiator: str | None) -> Verdict:
        inner = weburl.parse(parsed.path)
        if inner is None or inner.scheme not in ("http", "https"):
            return self._refuse(parsed.href, "scheme:blob",
                                _("This blob: address does not belong to an allowed page."))
        if initiator is not None and initiator != inner.origin:
            return self._refuse(parsed.href, "blob:cross-origin",
                                _("A page may only open its own blob: content."))
        verdict = self._from_filter(inner)
        return Verdict(parsed.href, verdict.allowed, verdict.rule, verdict.source, verdict.reason)

    def is_allowed(self, url: str, **context: object) -> bool:
        return self.decide(url, **context).allowed  # type: ignore[arg-type]
