"""Squid, the filtering proxy, configured from the same site file as the browser.

Why a proxy at all: the browser decides every request it sees with the kiosk
policy, but some of Chromium's own connections never reach that decision. A
firewall lets the browser's user reach nothing but Squid on loopback, and Squid
connects only to the hosts and ports the site's allow rules can reach. The two
layers read one list, so they cannot drift apart.

What the proxy can and cannot decide: for https it sees a ``CONNECT host:port``
and nothing else, and it must never be told to decrypt (no ssl_bump), so paths
and queries stay the browser's business. Squid is only ever asked "may this host
and port be reached", which every allow rule answers: a rule reaching
``caf.fr/espace`` needs ``caf.fr`` reachable.

The text is the same whatever the language of whoever runs ``kioskctl`` (no
translated comment, no date): ``kioskctl proxy-config --output`` compares it with
the file in place to know whether Squid must reload.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from kiosk import weburl
from kiosk.config import SiteConfig
from kiosk.i18n import _
from kiosk.urlfilter import FilterRule, parse_filter

__all__ = ["ProxyConfigError", "squid_config", "write_if_changed"]

# How each scheme the browser may use leaves through an HTTP proxy. Chromium tunnels
# WebSockets with CONNECT even when unencrypted, so ws travels like https.
TUNNEL, PLAIN = "tunnel", "plain"
_TRANSPORT = {"https": TUNNEL, "wss": TUNNEL, "ws": TUNNEL, "http": PLAIN}
_DEFAULT_PORT = {"https": 443, "wss": 443, "ws": 80, "http": 80}
SECURE_SCHEMES = ("https", "wss")
INSECURE_SCHEMES = ("http", "ws")

# Never reached from a public terminal, whatever a name resolves to: the 4G router's
# admin page, the town hall's network, this machine (DNS rebinding). Squid's own
# to_localhost covers 127.0.0.0/8, 0.0.0.0 and ::1.
PRIVATE_NETWORKS = ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16",
                    "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "fe80::/10")

_NAME_RE = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\Z")


class ProxyConfigError(ValueError):
    """The site file asks for no proxy, or for one this module cannot write."""


@dataclass(frozen=True, order=True)
class Destination:
    """A rule's host as Squid names it: ``.caf.fr`` (and subdomains), ``www.caf.fr``
    (exactly), or an IP address."""

    value: str
    ip: bool = False

    def covers(self, other: "Destination") -> bool:
        if self.ip or other.ip:
            return self == other
        if self.value.startswith("."):
            bare = other.value.lstrip(".")
            return bare == self.value[1:] or bare.endswith(self.value)
        return self == other


def destination(rule: FilterRule) -> Destination | None:
    """Where a rule's host leads, or None (no host, ``*``, not a DNS name)."""
    host = rule.host.rstrip(".")
    if not host.lstrip("."):
        return None
    try:
        return Destination(str(ipaddress.ip_address(_ip_text(host))), ip=True)
    except ValueError:
        pass
    if not _NAME_RE.match(host.lstrip(".")):
        return None
    return Destination(host if rule.match_subdomains else host.lstrip("."))


def _ip_text(host: str) -> str:
    """An IP host in the form ``ipaddress`` reads (0x7f.1 and friends, as browsers do)."""
    parsed = weburl.parse(f"http://{host}/")
    return (parsed.host if parsed is not None else host).strip("[]")


def _schemes(rule: FilterRule, usable: tuple[str, ...]) -> tuple[str, ...]:
    """The schemes (among those the browser sends) a rule can match."""
    if not rule.scheme:
        return usable
    return (rule.scheme,) if rule.scheme in usable else ()


def reach(rule: FilterRule, usable: tuple[str, ...]) -> set[tuple[str, int]]:
    """(transport, port) pairs a rule lets the browser use."""
    return {(_TRANSPORT[scheme], rule.port or _DEFAULT_PORT[scheme])
            for scheme in _schemes(rule, usable)}


def _sources(config: SiteConfig) -> dict[str, list[str]]:
    """Allow rule → where it is written (in English: the file must not follow $LANG)."""
    sources: dict[str, list[str]] = {}
    for rule in config.filter.allow:
        sources.setdefault(rule, []).append("shared rules")
    for portal in config.portal:
        for rule in portal.allow:
            sources.setdefault(rule, []).append(f"portal {portal.id}")
    return sources


def allowed_destinations(config: SiteConfig) -> dict[tuple[str, int], dict[Destination, list[str]]]:
    """(transport, port) → each destination allowed there, with the rules behind it."""
    usable = SECURE_SCHEMES + (INSECURE_SCHEMES if config.filter.insecure_http else ())
    table: dict[tuple[str, int], dict[Destination, list[str]]] = {}
    for text, where in _sources(config).items():
        rule = parse_filter(text, allow=True)
        target = destination(rule)
        if target is None:
            continue
        for key in reach(rule, usable):
            table.setdefault(key, {}).setdefault(target, []).append(
                f"{text} ({', '.join(where)})")
    for entries in table.values():  # Squid refuses a name already covered by ".domain"
        for target in sorted(entries):
            cover = next((o for o in entries if o != target and o.covers(target)), None)
            if cover is not None:
                entries[cover] += entries.pop(target)
    return table


def _overlap(a: FilterRule, b: FilterRule) -> bool:
    """Can one host fall under both rules?"""
    def root(rule: FilterRule) -> str:
        return rule.host_key if rule.host_key.startswith(".") else "." + rule.host_key
    return a.matches_host(root(b)) or b.matches_host(root(a))


def proxy_blocks(config: SiteConfig) -> list[tuple[FilterRule, tuple[str, ...], str]]:
    """Block rules Squid can enforce too: (rule, transports, why skipped or "").

    Only a host-only block can be (the proxy sees no path), and only where, for
    every scheme sharing the transport, the browser would refuse every address of
    the block's hosts: a more specific allow — or one for a scheme the block does
    not name (https and wss share CONNECT) — leaves the block to the browser.
    """
    usable = SECURE_SCHEMES + (INSECURE_SCHEMES if config.filter.insecure_http else ())
    allows = [parse_filter(text, allow=True) for text in config.allow_rules()]
    result = []
    for text in config.filter.block:
        block = parse_filter(text)
        if block.path not in ("", "/") or block.query or destination(block) is None:
            continue
        rivals = [a for a in allows if destination(a) is not None and _overlap(a, block)
                  and (not a.port or not block.port or a.port == block.port)]
        if not rivals:
            continue  # reaches nothing allowed: Squid refuses it anyway
        transports, why = [], ""
        for transport in (TUNNEL, PLAIN):
            useful, beaten = False, []
            for scheme in (s for s in usable if _TRANSPORT[s] == transport):
                matching = [a for a in rivals if a.scheme in ("", scheme)]
                useful = useful or bool(matching)
                if block.scheme not in ("", scheme):
                    beaten += matching  # the block does not reach this scheme at all
                else:
                    beaten += [a for a in matching
                               if a.precedence[:-1] >= block.precedence[:-1]]
                why = why or (f"allow {beaten[0].text} wins for {scheme}" if beaten else "")
            if useful and not beaten:
                transports.append(transport)
        result.append((block, tuple(transports), why))
    return result


def _known(table: dict[tuple[str, int], dict[Destination, list[str]]]) -> list[str]:
    """Every allowed destination once, whatever its port (none covered by another)."""
    every = {target for entries in table.values() for target in entries}
    return sorted(t.value for t in every if not any(o != t and o.covers(t) for o in every))


def squid_config(config: SiteConfig, *, destinations: str = "public",
                 hosts_file: str | None = None,
                 runtime_dir: str = "/run/plus-kiosk-proxy") -> str:
    """The complete squid.conf for a site.

    ``destinations="public"`` (terminals) refuses loopback and private addresses even
    for allowed names; ``"any"`` is for tests whose portals live on 127.0.0.1.
    ``hosts_file`` replaces /etc/hosts (tests map their names to 127.0.0.1).
    ``runtime_dir`` holds the pid file and Squid's small log, and must be writable
    by Squid's effective user (``proxy`` on Debian).
    """
    if not config.proxy.listen:
        raise ProxyConfigError(_("The site file's [proxy] listen is empty: this terminal runs "
                                 "no filtering proxy, so there is no Squid configuration to "
                                 "write. Set it to \"127.0.0.1:3128\"."))
    if destinations not in ("public", "any"):
        raise ValueError(f"destinations must be 'public' or 'any', not {destinations!r}")
    lines = _HEADER.format(source=config.source or "<site>", listen=config.proxy.listen,
                           runtime=runtime_dir).splitlines()
    if hosts_file:
        lines += ["# Names resolved from this file first (a test's fake portals).",
                  f"hosts_file {hosts_file}"]
    lines += ["", "# --- Where the browser may go: the site file's allow rules ---",
              "acl CONNECT method CONNECT", "acl http_url proto HTTP",
              "# The address was written as an IP (a name holds no colon, nor only digits).",
              "acl ip_literal dstdom_regex -n ^[0-9.]+$ :"]
    access: list[str] = []
    ports: set[int] = set()
    table = allowed_destinations(config)
    for (transport, port) in sorted(table):
        entries = table[(transport, port)]
        tunnel = transport == TUNNEL
        lines += ["", f"# {'CONNECT tunnels (https, wss, ws)' if tunnel else 'plain http requests'}"
                      f" to port {port}, allowed by:"]
        if port not in ports:
            ports.add(port)
            lines.append(f"acl port_{port} port {port}")
        method = "CONNECT" if tunnel else "!CONNECT http_url"
        for ip in (False, True):
            chosen = sorted(t for t in entries if t.ip == ip)
            if not chosen:
                continue
            acl = f"{transport}_{port}_{'ips' if ip else 'names'}"
            for target in chosen:
                lines.append("#   " + "; ".join(entries[target]))
                lines.append(f"acl {acl} {'dst' if ip else 'dstdomain -n'} {target.value}")
            access.append(f"http_access allow {method} port_{port} "
                          + (f"ip_literal {acl}" if ip else acl))
    lines += ["", "# --- Blocks of the site file that the proxy enforces too ---"]
    denies: list[str] = []
    blocks = proxy_blocks(config)
    if not blocks:
        lines.append("# (none: no host-only block narrows an allow rule)")
    for index, (block, transports, why) in enumerate(blocks, 1):
        left = f" ({why}: left to the browser)" if why else ""
        if not transports:
            lines.append(f"# block {block.text}{left}")
            continue
        target = destination(block)
        assert target is not None
        acl = f"block_{index}"
        lines.append(f"# block {block.text}: refused for "
                     + " and ".join("tunnels" if t == TUNNEL else "plain http" for t in transports)
                     + left)
        lines.append(f"acl {acl} {'dst' if target.ip else 'dstdomain -n'} {target.value}")
        guard = "ip_literal " if target.ip else ""  # first: a dst ACL would look a name up
        extra = ""
        if block.port:
            lines.append(f"acl {acl}_port port {block.port}")
            extra += f" {acl}_port"
        method = "" if len(transports) == 2 else "CONNECT " if transports[0] == TUNNEL \
            else "!CONNECT "
        denies.append(f"http_access deny {method}{guard}{acl}{extra}")
    lines += ["", "# --- Decisions, in order: the first line that matches wins ---",
              "http_access deny manager", "http_access deny !localhost",
              "# A name no rule allows is refused before anything else, by its text alone:",
              "# the rules below that look at addresses would send it to a DNS server, and a",
              "# page could smuggle what a resident types out in a refused name's labels.",
              "acl known_destinations dstdomain -n " + " ".join(_known(table)),
              "http_access deny !known_destinations"]
    if destinations == "public":
        lines += ["# Never loopback or private addresses, whatever a name resolves to",
                  "# (DNS rebinding, the 4G router's admin page).",
                  "acl private_destinations dst " + " ".join(PRIVATE_NETWORKS),
                  "http_access deny to_localhost", "http_access deny private_destinations"]
    else:
        lines.append("# destinations=any: loopback and private addresses allowed (tests only).")
    lines += denies + access + ["http_access deny all", ""]
    return "\n".join(lines)


def write_if_changed(path: Path, text: str, mode: int = 0o644) -> bool:
    """Replace ``path`` atomically (readers see the old or the new file, never half)."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fchmod(stream.fileno(), mode)
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return True


_HEADER = """\
# Squid configuration of the PLUS kiosk's filtering proxy.
# Generated by `kioskctl proxy-config` from the site file {source}:
# do not edit it, edit the site file and generate it again.
#
# The browser reaches the Internet only through this proxy (the firewall sees to
# it). Squid opens a connection only to the hosts and ports the site's allow
# rules can reach; paths are decided by the browser, since Squid never decrypts.

# --- Listening: loopback only, never the wifi ---
http_port {listen}
visible_hostname plus-kiosk-proxy
httpd_suppress_version_string on
# Hide the proxy from sites: no X-Forwarded-For, no Via. (Not `via off`, which
# makes Squid 5 warn at every start; Squid still sees its own loops.)
forwarded_for delete
request_header_access Via deny all
reply_header_access Via deny all
# The error page says nothing about the terminal.
email_err_data off

# --- Nothing about residents is kept: no access log, no cache, no statistics ---
access_log none
cache_store_log none
strip_query_terms on
cache deny all
cache_mem 0 MB
netdb_filename none
client_db off
pinger_enable off
log_icp_queries off
icp_port 0
htcp_port 0
snmp_port 0
# Squid's own log keeps level 0 only: start, stop and fatal errors, never an
# address or a client. It lives in {runtime} (tmpfs on a terminal: gone at
# power-off, never in the persistent journal); run squid with `-d 0` to copy
# those same lines to stderr, so a failed start shows in `systemctl status`.
debug_options ALL,0
cache_log {runtime}/cache.log
pid_filename {runtime}/squid.pid
coredump_dir {runtime}

# --- Connections ---
client_persistent_connections on
server_persistent_connections on
client_idle_pconn_timeout 1 minute
pconn_timeout 30 seconds
connect_timeout 20 seconds
request_timeout 1 minute
read_timeout 5 minutes
client_lifetime 4 hours
# A restart (the site file changed) must not keep residents waiting.
shutdown_lifetime 1 seconds
"""
