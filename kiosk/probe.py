"""``kioskctl portals probe``: find where the live sites drifted from the site file and guides.

Portals move without telling anyone (service-public.fr became service-public.gouv.fr
on 1 October 2025): the tile then redirects to a host the allowlist refuses, and the
guides' step patterns stop matching, so residents see a refusal page or a guide panel
stuck on a step. This module finds that on a connected terminal before a resident does.

It fetches, once each, every portal's start page and every guide's start page and
concrete step address (``kiosk.guides.check.example_url``), *as the kiosk would*:

- every hop of a redirect is decided by the site's own policy (``kiosk.policy``), and
  an ``http://`` hop is upgraded to ``https://`` when the policy allows that, as the
  browser's interceptor does; a refused hop is reported and never fetched;
- with the browser's user agent (the plain Chrome string of ``kiosk.browser.network``);
- through the site's filtering proxy when ``[proxy] listen`` is set. The probe runs as
  root (it reads the site file, ``root:kiosk 0640``), and root is not held by the
  firewall, but going direct could call a site fine that Squid refuses the resident
  (a name resolving to a private address, Squid's own DNS): the proxy is the only
  path the resident's browser has, so it is the path probed. ``--direct`` is for a
  technician's machine where no Squid runs;
- one hop at a time (at most ``MAX_REDIRECTS``), each with ``TIMEOUT`` seconds.

What a browser does beyond HTTP redirects (``<meta http-equiv=refresh>``, scripts
changing the address, sign-in) is not followed: pages behind an account cannot be
seen without one, and a step whose address lands on another step's page of the same
guide (usually its sign-in) is reported as a note, not as drift.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

from kiosk import weburl
from kiosk.config import SiteConfig
from kiosk.guides.check import example_url
from kiosk.guides.library import Guide, Step, load_for_site
from kiosk.i18n import _
from kiosk.policy import KioskPolicy, Verdict
from kiosk.urlfilter import InvalidFilter

MAX_REDIRECTS = 10          # Chrome gives up after 20; no portal needs more than a few
TIMEOUT = 15.0              # seconds per connection, read or write
BODY_LIMIT = 64 * 1024      # read a little of each page, never a whole download
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# kiosk.browser.network.plain_chrome() without Qt (kept in step by tests/test_probe.py):
# the probe must also run where Qt WebEngine cannot be imported.
CHROME_MAJOR = "140"
CHROME_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/{major}.0.0.0 Safari/537.36")


def user_agent() -> str:
    """The browser's own user agent: from Qt WebEngine when it is there (exact), else the
    same string for the engine version this kiosk ships."""
    try:
        from kiosk.browser.network import plain_chrome
        return plain_chrome()
    except ImportError:
        return CHROME_UA.format(major=CHROME_MAJOR)


@dataclass
class Finding:
    kind: str        # off_allowlist, status, tls, connection, redirects, pattern, other_step
    message: str     # translated, for a technician
    todo: str = ""   # translated: what to do about it
    rule: str = ""   # off_allowlist: the allow rule that would admit the address
    severity: str = "drift"  # or "note": reported, exit status unchanged

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "severity": self.severity, "message": self.message,
                "todo": self.todo, "rule": self.rule}


@dataclass
class Use:
    """Who sends residents to an address: a portal's tile, a guide, a guide's step."""

    label: str
    portal: str
    guide: Guide | None = None
    step: Step | None = None


@dataclass
class Result:
    url: str
    uses: list[Use] = field(default_factory=list)
    hops: list[tuple[str, int | None]] = field(default_factory=list)  # (url, HTTP status)
    findings: list[Finding] = field(default_factory=list)

    @property
    def drift(self) -> bool:
        return any(f.severity == "drift" for f in self.findings)

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "used_by": [u.label for u in self.uses],
                "hops": [{"url": url, "status": status} for url, status in self.hops],
                "findings": [f.as_dict() for f in self.findings]}


class ProxyUnreachable(Exception):
    """The site's proxy does not answer: nothing can be said about the sites."""


class _Refused(Exception):
    """The proxy would not open a tunnel (Squid answers 403 or 503 to CONNECT)."""


def addresses(config: SiteConfig) -> dict[str, Result]:
    """Every address residents are sent to, each once, with who sends them there."""
    results: dict[str, Result] = {}

    def add(url: str | None, use: Use) -> None:
        if url:
            results.setdefault(url, Result(url)).uses.append(use)

    for portal in config.portal:
        add(portal.start_url, Use(_("portal {id}: start page").format(id=portal.id), portal.id))
    for guide in load_for_site(config).guides:
        add(guide.start_url, Use(_("guide {id}: start page").format(id=guide.id), guide.portal))
        for step in guide.steps:
            try:
                url = example_url(step.url)
            except InvalidFilter:
                continue  # kioskctl guides check reports it
            add(url, Use(_("guide {id}, step {step}").format(id=guide.id, step=step.id),
                         guide.portal, guide, step))
    return results


class Prober:
    def __init__(self, config: SiteConfig, direct: bool = False, agent: str | None = None):
        self.config = config
        self.policy = config.policy()
        self.proxy = None if direct or not config.proxy.listen else (
            config.proxy.host, config.proxy.port)
        self.agent = agent or user_agent()
        self.tls = ssl.create_default_context()  # the system's authorities, as the browser

    def check_proxy(self) -> None:
        if self.proxy:
            try:
                socket.create_connection(self.proxy, timeout=TIMEOUT).close()
            except OSError as exc:
                raise ProxyUnreachable(exc.strerror or str(exc)) from None

    # -- one request ----------------------------------------------------------------

    def _connect(self, url: weburl.WebURL) -> socket.socket:
        host = url.host.strip("[]")
        port = url.port or weburl.DEFAULT_PORTS[url.scheme]
        if not self.proxy:
            sock = socket.create_connection((host, port), timeout=TIMEOUT)
        else:
            sock = socket.create_connection(self.proxy, timeout=TIMEOUT)
            if url.scheme == "http":
                return sock  # plain http is asked of the proxy with the full address
            target = f"{url.host}:{port}"
            sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n"
                         f"User-Agent: {self.agent}\r\n\r\n".encode())
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 16384:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
            status = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            if len(status) < 2 or status[1] != "200":
                sock.close()
                raise _Refused(" ".join(status[1:]) or "?")
        if url.scheme == "https":
            sock = self.tls.wrap_socket(sock, server_hostname=host)
        return sock

    def fetch(self, url: weburl.WebURL) -> tuple[int, str, str]:
        """GET one address without following anything: (status, reason, Location)."""
        sock = self._connect(url)
        connection = http.client.HTTPConnection(url.host.strip("[]"), timeout=TIMEOUT)
        connection.sock = sock
        target = url.href.split("#", 1)[0]
        if not (self.proxy and url.scheme == "http"):
            target = target[len(url.origin):] or "/"
        try:
            connection.request("GET", target, headers={
                "Host": url.origin.split("://", 1)[1], "User-Agent": self.agent,
                "Accept": "text/html,application/xhtml+xml,*/*;q=0.8",
                "Accept-Language": "fr-FR,fr;q=0.9", "Connection": "close"})
            response = connection.getresponse()
            response.read(BODY_LIMIT)
            return response.status, response.reason, response.getheader("Location") or ""
        finally:
            connection.close()

    # -- one address, hop by hop ------------------------------------------------------------

    def follow(self, result: Result) -> None:
        url = result.url
        for _hop in range(MAX_REDIRECTS + 1):
            secure = self.policy.secure_version(url)
            url = secure or url   # the browser's https upgrade
            verdict = self.policy.decide(url)
            if not verdict.allowed:
                result.hops.append((verdict.url, None))
                result.findings.append(self._off_allowlist(result, verdict))
                return
            parsed = weburl.parse(url)
            assert parsed is not None  # an allowed address always parses
            try:
                status, reason, location = self.fetch(parsed)
            except ssl.SSLCertVerificationError as exc:
                result.hops.append((url, None))
                result.findings.append(Finding("tls", _("the certificate of {host} is not "
                                                        "trusted: {reason}").format(
                    host=parsed.host, reason=exc.verify_message or exc.reason), _(
                    "The kiosk shows residents an error page here. If it lasts, tell the "
                    "site's owner; never add an exception on the terminal.")))
                return
            except (ssl.SSLError, ssl.CertificateError) as exc:
                result.hops.append((url, None))
                result.findings.append(Finding("tls", _("TLS failure with {host}: {reason}")
                                               .format(host=parsed.host,
                                                       reason=getattr(exc, "reason", None) or exc),
                                               _("The kiosk shows residents an error page "
                                                 "here. If it lasts, tell the site's owner.")))
                return
            except (_Refused, OSError, http.client.HTTPException) as exc:
                result.hops.append((url, None))
                detail = (_("the proxy refused to connect ({status})").format(status=exc)
                          if isinstance(exc, _Refused) else
                          getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
                result.findings.append(Finding("connection", _(
                    "cannot reach {host}: {reason}").format(host=parsed.host, reason=detail), _(
                    "If every address fails, check the terminal's network and the proxy; if "
                    "only this one, the site is down or has moved: try again later.")))
                return
            result.hops.append((url, status))
            if status in REDIRECT_STATUSES and location:
                try:
                    url = weburl.ada_url.join_url(url, location)
                except ValueError:
                    url = location  # decided (and refused) as it is written
                continue
            if status >= 400:
                result.findings.append(Finding("status", _(
                    "the site answers {status} {reason} at {url}").format(
                    status=status, reason=reason, url=url), _(
                    "Open the address on a computer. If the page moved, correct the portal's "
                    "start_url or the guide; if the site is down, try again later.")))
                return
            self._check_steps(result, url)
            return
        result.findings.append(Finding("redirects", _(
            "more than {count} redirects: the browser gives up").format(count=MAX_REDIRECTS),
            _("Tell the site's owner: the page loops.")))

    def admitting_rule(self, url: str) -> str:
        """The allow rule that would let the browser open ``url`` ("" when none can):
        the host without "www." (a Chrome host rule also admits subdomains), else the
        host, each checked against the site's real policy with that rule added."""
        parsed = weburl.parse(url)
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
            return ""
        host = parsed.host
        for rule in dict.fromkeys([host.removeprefix("www."), host]):
            trial = KioskPolicy([*self.config.allow_rules(), rule], self.config.filter.block,
                                insecure_http=self.config.filter.insecure_http)
            if trial.decide(url).allowed or trial.secure_version(url):
                return rule
        return ""

    def _off_allowlist(self, result: Result, verdict: Verdict) -> Finding:
        if len(result.hops) == 1:
            message = _("the address itself is refused by the allowlist ({rule})")
        else:
            message = _("redirects to {url}, which the allowlist refuses ({rule})")
        message = message.format(url=verdict.url, rule=verdict.rule)
        rule = self.admitting_rule(verdict.url)
        portals = ", ".join(dict.fromkeys(use.portal for use in result.uses))
        todo = (_("Rule that would admit it: allow {rule} (in the allow list of portal "
                  "{portal}). Check the new host belongs to the same service, add the rule, "
                  "check it with kioskctl check-url {url} and provision again.").format(
                    rule=rule, portal=portals, url=verdict.url) if rule else
                _("No allow rule can open it ({rule} refuses it whatever the portal list "
                  "says): the portal or guide must change its address.").format(
                    rule=verdict.rule))
        return Finding("off_allowlist", message, todo, rule=rule)

    def _check_steps(self, result: Result, landing: str) -> None:
        """A step's address must land on a page its own pattern matches, or the guide
        panel would not follow the resident there."""
        for use in result.uses:
            if use.step is None or use.guide is None or use.step.matcher.is_allowed(landing):
                continue
            other = next((s for s in use.guide.steps if s.matcher.is_allowed(landing)), None)
            if other is not None:
                result.findings.append(Finding("other_step", _(
                    "{who}: lands on {url}, the page of step {step} (often the sign-in page: "
                    "without an account this step cannot be checked)").format(
                    who=use.label, url=landing, step=other.id), _(
                    "Walk this step by hand with a test account."), severity="note"))
                continue
            result.findings.append(Finding("pattern", _(
                "{who}: lands on {url}, which the step's pattern {pattern} no longer "
                "matches").format(who=use.label, url=landing, pattern=use.step.url), _(
                "Walk the guide on the live site, correct the step's url in {file} and run "
                "kioskctl guides check.").format(file=use.guide.path.name)))

    def run(self) -> list[Result]:
        self.check_proxy()
        results = list(addresses(self.config).values())
        for result in results:
            self.follow(result)
        return results


def report_json(config: SiteConfig, prober: Prober, results: list[Result]) -> dict[str, Any]:
    return {"site": config.site.name, "config": config.source,
            "proxy": config.proxy.listen if prober.proxy else "", "user_agent": prober.agent,
            "drift": sum(r.drift for r in results),
            "notes": sum(f.severity == "note" for r in results for f in r.findings),
            "addresses": [r.as_dict() for r in results]}


def report_text(config: SiteConfig, prober: Prober, results: list[Result]) -> str:
    lines = [(_("Probed {count} address(es) of {site} ({path}) through the proxy {proxy}")
              if prober.proxy else _("Probed {count} address(es) of {site} ({path}) directly, "
                                     "without the proxy")).format(
        count=len(results), site=config.site.name, path=config.source,
        proxy=config.proxy.listen), _("User agent: {agent}").format(agent=prober.agent), ""]
    for result in results:
        if not result.findings:
            final, status = result.hops[-1] if result.hops else (result.url, None)
            landing = f" → {final}" if final != result.url else ""
            lines.append(f"{_('OK'):<7} {result.url}{landing} ({status})")
            continue
        word = _("DRIFT") if result.drift else _("NOTE")
        lines.append(f"{word:<7} {result.url}")
        lines.append("  " + "; ".join(use.label for use in result.uses))
        for finding in result.findings:
            lines.append("  " + finding.message)
            if finding.todo:
                lines.append("    " + finding.todo)
        if len(result.hops) > 1:
            lines.append("  " + _("path: {hops}").format(hops=" → ".join(
                f"{url} ({status})" if status else url for url, status in result.hops)))
    drift = sum(r.drift for r in results)
    notes = sum(f.severity == "note" for r in results for f in r.findings)
    lines += ["", _("{count} address(es): {drift} with drift, {notes} note(s).").format(
        count=len(results), drift=drift, notes=notes)]
    return "\n".join(lines) + "\n"


def main(config: SiteConfig, *, direct: bool = False, as_json: bool = False) -> int:
    """Run the probe and print its report: 0 all well, 1 drift, 2 the proxy is down."""
    import json
    import sys
    prober = Prober(config, direct=direct)
    try:
        results = prober.run()
    except ProxyUnreachable as exc:
        print(_("The proxy {proxy} does not answer ({error}). Start it (systemctl start "
                "plus-kiosk-proxy), or use --direct on a machine without Squid.").format(
            proxy=config.proxy.listen, error=exc), file=sys.stderr)
        return 2
    if as_json:
        print(json.dumps(report_json(config, prober, results), ensure_ascii=False, indent=2))
    else:
        sys.stdout.write(report_text(config, prober, results))
    return 1 if any(r.drift for r in results) else 0
