"""The filtering proxy: the real Squid, configured by kiosk.proxy, asked by real clients.

Every target is on 127.0.0.1 and every test name maps to it through Squid's own
hosts file, so a refusal can only come from the proxy's rules, and a refused
connection is proven by the target never seeing it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import SQUID, SITE, Squid, require
from kiosk import config as site_config, i18n
from kiosk.proxy import ProxyConfigError, squid_config
from kiosk.urlfilter import parse_filter

KIOSKCTL = Path(sys.executable).parent / "kioskctl"
HOSTS = ("portal.test", "sub.portal.test", "blocked.portal.test", "exact.test",
         "sub.exact.test", "tls.test", "evil.test")


class Listener:
    """A TCP server on 127.0.0.1 that records every connection it accepts: what it
    received; it echoes bytes back, and answers an HTTP request with 200."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            index = len(self.received)
            self.received.append(b"")
            threading.Thread(target=self._talk, args=(connection, index), daemon=True).start()

    def _talk(self, connection: socket.socket, index: int) -> None:
        with connection:
            while data := connection.recv(65536):
                self.received[index] += data
                if self.received[index].startswith(b"GET ") and b"\r\n\r\n" in data:
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n"
                                       b"Connection: close\r\n\r\nlistener")
                    return
                connection.sendall(data)

    def close(self) -> None:
        self.server.close()


def connect(squid: Squid, target: str) -> tuple[str, socket.socket]:
    """CONNECT through the proxy: (status line, socket after the answer's headers)."""
    sock = socket.create_connection(("127.0.0.1", squid.port), timeout=10)
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    answer = b""
    while b"\r\n\r\n" not in answer:
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    return answer.split(b"\r\n")[0].decode(), sock


def status_of_connect(squid: Squid, target: str) -> int:
    line, sock = connect(squid, target)
    sock.close()
    return int(line.split()[1])


def get(squid: Squid, url: str) -> tuple[int, bytes]:
    """A plain http request through the proxy, as a browser sends it."""
    host = re.match(r"[a-z]+://([^/]+)", url).group(1)
    with socket.create_connection(("127.0.0.1", squid.port), timeout=10) as sock:
        sock.sendall(f"GET {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return int(answer.split(b" ", 2)[1]), answer.partition(b"\r\n\r\n")[2]


def write_site(path: Path, allow: list[str], block: list[str] = (), insecure: bool = False,
               start_url: str = "", listen: str = "127.0.0.1:3128") -> Path:
    path.write_text(
        f'[site]\nname = "Test"\ncommune = "Le Marin"\nkind = "bus"\n\n'
        f'[proxy]\nlisten = "{listen}"\n\n'
        f'[filter]\ninsecure_http = {str(insecure).lower()}\nblock = {list(block)!r}\n\n'
        '[[portal]]\nid = "test"\nname = { fr = "Test", gcf = "Tès", en = "Test" }\n'
        f'start_url = "{start_url or "https://portal.test/"}"\nallow = {allow!r}\n'
        .replace("'", '"'))
    return path


@pytest.fixture(scope="module")
def targets(fake_portals):
    tunnel, refused = Listener(), Listener()
    yield tunnel, refused, fake_portals
    tunnel.close()
    refused.close()


@pytest.fixture(scope="module")
def secure(targets, squid_factory, tmp_path_factory):
    """A terminal's site: https only; one host-only block narrows an allow."""
    tunnel, _refused, portals = targets
    site = write_site(tmp_path_factory.mktemp("secure") / "site.toml",
                      [f"portal.test:{tunnel.port}", f"portal.test:{portals.port}",
                       f".exact.test:{tunnel.port}"],
                      block=["blocked.portal.test", "portal.test/forum"],
                      start_url=f"https://portal.test:{tunnel.port}/")
    return squid_factory(site, HOSTS)


@pytest.fixture(scope="module")
def insecure(targets, squid_factory, tmp_path_factory):
    """A test site with insecure_http = true: plain http allowed where the rules say."""
    tunnel, _refused, portals = targets
    site = write_site(tmp_path_factory.mktemp("insecure") / "site.toml",
                      [f"portal.test:{portals.port}", f"portal.test:{tunnel.port}",
                       f"https://tls.test:{portals.port}", f"127.0.0.1:{tunnel.port}"],
                      block=["blocked.portal.test"],
                      insecure=True, start_url=f"http://portal.test:{portals.port}/")
    return squid_factory(site, HOSTS)


def test_connect_to_an_allowed_host_and_port_is_tunnelled(secure, targets):
    tunnel = targets[0]
    for host in ("portal.test", "sub.portal.test", "PORTAL.TEST", "exact.test"):
        before = len(tunnel.received)
        line, sock = connect(secure, f"{host}:{tunnel.port}")
        with sock:
            assert line.split()[1] == "200", (host, line)
            sock.sendall(b"hello through the tunnel")
            assert sock.recv(100) == b"hello through the tunnel"
        assert len(tunnel.received) == before + 1


@pytest.mark.parametrize("target", [
    "evil.test:{tunnel}",          # a host no rule allows, on an allowed port
    "portal.test:{refused}",       # an allowed host on another port
    "portal.test:443",             # ... or on the default https port: the rule names its port
    "sub.exact.test:{tunnel}",     # ".exact.test" is that host only
    "blocked.portal.test:{tunnel}",  # the host-only block wins over "portal.test"
    "127.0.0.1:{tunnel}", "127.0.0.1:{refused}", "0x7f.0.0.1:{tunnel}", "2130706433:{tunnel}",
    "[::1]:{tunnel}", "[::ffff:127.0.0.1]:{tunnel}",  # IP literals: no rule names an address
])
def test_connect_elsewhere_is_refused_and_never_reaches_the_target(secure, targets, target):
    tunnel, refused, _portals = targets
    seen = len(tunnel.received), len(refused.received)
    assert status_of_connect(secure, target.format(tunnel=tunnel.port,
                                                   refused=refused.port)) == 403
    assert (len(tunnel.received), len(refused.received)) == seen


def test_plain_http_is_refused_unless_the_site_allows_insecure_http(secure, insecure, targets):
    portals = targets[2]
    url = f"http://portal.test:{portals.port}/merci?from=proxy-test"
    assert get(secure, url)[0] == 403
    assert ("portal.test", "/merci?from=proxy-test") not in portals.hits
    status, body = get(insecure, url)
    assert status == 200 and b"Merci" in body
    assert ("portal.test", "/merci?from=proxy-test") in portals.hits


@pytest.mark.parametrize("url", [
    "http://evil.test:{portals}/evil-get",           # no rule
    "http://tls.test:{portals}/https-only",          # its rule says https://
    "http://blocked.portal.test:{portals}/blocked",  # the host-only block wins
    "http://portal.test:{refused}/other-port",
    "http://127.0.0.1:{portals}/ip-literal",
    "ftp://portal.test:{portals}/not-http",
])
def test_plain_http_elsewhere_is_refused(insecure, targets, url):
    _tunnel, refused, portals = targets
    url = url.format(portals=portals.port, refused=refused.port)
    before = len(refused.received)
    assert get(insecure, url)[0] == 403
    assert not any(path == "/" + url.rsplit("/", 1)[1] for _host, path in portals.hits)
    assert len(refused.received) == before


def test_the_site_sees_neither_via_nor_the_terminal_address(insecure, targets):
    tunnel = targets[0]
    status, body = get(insecure, f"http://portal.test:{tunnel.port}/headers")
    assert (status, body) == (200, b"listener")
    request = tunnel.received[-1].decode().lower()
    assert request.startswith("get /headers ")
    assert "via:" not in request and "forwarded" not in request and "127.0.0.1" not in request


def test_an_address_rule_allows_that_address_written_as_such_not_a_name_for_it(insecure,
                                                                              targets):
    tunnel = targets[0]
    for target in ("127.0.0.1", "0x7f.1", "[::ffff:127.0.0.1]"):
        assert status_of_connect(insecure, f"{target}:{tunnel.port}") == 200, target
    assert get(insecure, f"http://127.0.0.1:{tunnel.port}/by-address")[0] == 200
    before = len(tunnel.received)
    assert status_of_connect(insecure, f"evil.test:{tunnel.port}") == 403  # also 127.0.0.1
    assert get(insecure, f"http://evil.test:{tunnel.port}/by-name")[0] == 403
    assert status_of_connect(insecure, f"[::1]:{tunnel.port}") == 403
    assert len(tunnel.received) == before


def test_public_destinations_refuse_an_allowed_name_on_loopback(targets, squid_factory,
                                                                 tmp_path_factory):
    tunnel, _refused, portals = targets
    site = write_site(tmp_path_factory.mktemp("public") / "site.toml",
                      [f"portal.test:{tunnel.port}", f"portal.test:{portals.port}"],
                      insecure=True, start_url=f"http://portal.test:{portals.port}/")
    squid = squid_factory(site, HOSTS, destinations="public")
    before = len(tunnel.received), len(portals.hits)
    assert status_of_connect(squid, f"portal.test:{tunnel.port}") == 403
    assert get(squid, f"http://portal.test:{portals.port}/rebinding")[0] == 403
    assert (len(tunnel.received), len(portals.hits)) == before


def test_a_refused_name_is_never_looked_up(targets, squid_factory, tmp_path_factory):
    """A page could smuggle typed text out in a refused name's labels, through the
    proxy's DNS queries: Squid must refuse such a name by its text, before any rule
    that looks at addresses. A DNS listener on a loopback address of its own plays the
    terminal's resolver; an allowed name that is not in the hosts file shows it hears."""
    if os.geteuid() != 0:
        pytest.skip("binding port 53 needs root")
    tunnel, _refused, _portals = targets
    resolver = "127.0.0.153"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dns:
        dns.bind((resolver, 53))
        dns.settimeout(0.2)
        site = write_site(tmp_path_factory.mktemp("dns") / "site.toml",
                          [f"portal.test:{tunnel.port}", "lookedup.test"],
                          start_url=f"https://portal.test:{tunnel.port}/")
        squid = squid_factory(site, HOSTS, destinations="public",
                              extra_conf=f"dns_nameservers {resolver}\n")

        def queries() -> bytes:
            heard = b""
            try:
                while True:
                    heard += dns.recvfrom(4096)[0]
            except OSError:
                return heard

        queries()
        for target in ("secret-1234567890123.evil.test:443", "exfil.example:443",
                       f"portal.test.evil.test:{tunnel.port}"):
            assert status_of_connect(squid, target) == 403
        heard = queries()
        assert b"evil" not in heard and b"exfil" not in heard and b"secret" not in heard, heard
        probe = socket.create_connection(("127.0.0.1", squid.port), timeout=10)
        probe.sendall(b"CONNECT lookedup.test:443 HTTP/1.1\r\nHost: lookedup.test\r\n\r\n")
        deadline = time.monotonic() + 5
        while b"lookedup" not in heard and time.monotonic() < deadline:
            heard += queries()
        probe.close()
        assert b"lookedup" in heard, heard


def test_nothing_about_residents_is_written(targets, tmp_path):
    tunnel, _refused, portals = targets
    site = write_site(tmp_path / "site.toml", [f"portal.test:{portals.port}",
                                               f"portal.test:{tunnel.port}"],
                      insecure=True, start_url=f"http://portal.test:{portals.port}/")
    squid = Squid(site, HOSTS)
    canary = "canary-" + os.urandom(6).hex()
    try:
        squid.start()
        assert get(squid, f"http://portal.test:{portals.port}/{canary}?q={canary}")[0] == 404
        assert get(squid, f"http://evil.test:{portals.port}/{canary}?q={canary}")[0] == 403
        assert status_of_connect(squid, f"{canary}.evil.test:{tunnel.port}") == 403
        assert status_of_connect(squid, f"portal.test:{tunnel.port}") == 200
        squid.stop()
        written = [squid.stderr_path, *(p for p in squid.runtime_dir.rglob("*") if p.is_file())]
        assert "Starting Squid" in squid.stderr_path.read_text()  # the capture works
        assert "Starting Squid" in (squid.runtime_dir / "cache.log").read_text()
        for path in written:
            text = path.read_bytes()
            assert canary.encode() not in text, path
            assert b"127.0.0.1" not in text and b"portal.test" not in text, path
        for path in (p for p in Path("/var/log/squid").rglob("*") if p.is_file()):
            assert canary.encode() not in path.read_bytes(), path
    finally:
        squid.remove()


def test_squid_accepts_the_bundled_site_and_lists_every_portal(tmp_path):
    require(SQUID)
    config = site_config.load(SITE)
    text = squid_config(config, runtime_dir=str(tmp_path))
    (tmp_path / "squid.conf").write_text(text)
    result = subprocess.run([SQUID, "-k", "parse", "-f", str(tmp_path / "squid.conf")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert not re.search(r"WARNING|ERROR|FATAL", output), output
    directives = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert [d for d in directives if d.startswith("http_port")] == ["http_port 127.0.0.1:3128"]
    for name in (".impots.gouv.fr", ".caf.fr", ".franceconnect.gouv.fr", ".yris.eu"):
        assert f"acl tunnel_443_names dstdomain -n {name}" in directives
    hosts = {d.rsplit(" ", 1)[1] for d in directives if d.startswith("acl tunnel_443_names ")}
    expected = set()
    for rule in map(parse_filter, config.allow_rules()):
        name = rule.host.strip(".")
        expected.add("." + name if rule.match_subdomains else name)
    # a name under a wider ".domain" is not written twice (Squid refuses it)
    expected = {e for e in expected if not any(
        o != e and o.startswith(".") and (e.lstrip(".") + ".").endswith(o[1:] + ".")
        and ("." + e.lstrip(".")).endswith(o) for o in expected)}
    assert hosts == expected
    assert not any(re.match(r"acl \w+_80_", d) for d in directives)  # insecure_http = false
    for needed in ("access_log none", "cache_store_log none", "cache deny all",
                   "strip_query_terms on", "netdb_filename none", "forwarded_for delete",
                   "debug_options ALL,0", "http_access deny to_localhost",
                   "http_access deny private_destinations", "shutdown_lifetime 1 seconds"):
        assert needed in directives
    assert directives[-1] == "http_access deny all"
    assert not any(d.startswith(("ssl_bump", "sslcrtd", "cache_dir", "https_port"))
                   for d in directives)


def test_generated_rules(tmp_path):
    site = write_site(tmp_path / "site.toml", [
        "caf.fr", ".www.caf.fr", "https://203.0.113.5", "[2001:db8::1]:8443", "wss://ws.test",
        "impots.gouv.fr/espace?x=1", "file:///tmp", "data:*", "*"],
        block=[".caf.fr", "caf.fr/forum", "https://only.caf.fr", "x.www.caf.fr", "nothere.test"],
        start_url="https://www.caf.fr/")
    text = squid_config(site_config.load(site))
    assert "acl tunnel_443_names dstdomain -n .caf.fr\n" in text
    assert "dstdomain -n www.caf.fr" not in text   # covered by .caf.fr: Squid would refuse it
    assert "acl tunnel_443_ips dst 203.0.113.5\n" in text
    assert "acl tunnel_8443_ips dst 2001:db8::1\n" in text
    assert "dstdomain -n .ws.test\n" in text and "dstdomain -n .impots.gouv.fr\n" in text
    assert "http_access allow CONNECT port_443 ip_literal tunnel_443_ips\n" in text
    known = next(line for line in text.splitlines() if line.startswith("acl known_destinations"))
    assert known.split()[4:] == sorted([".caf.fr", "203.0.113.5", "2001:db8::1", ".ws.test",
                                        ".impots.gouv.fr"]), known
    assert text.index("http_access deny !known_destinations") < text.index("deny to_localhost")
    assert "http_access allow !CONNECT" not in text  # insecure_http = false: tunnels only
    assert "acl block_1 dstdomain -n caf.fr\n" in text  # exact beats caf.fr's subdomain match
    assert "http_access deny CONNECT block_1\n" in text
    assert "acl block_3 dstdomain -n .x.www.caf.fr\n" in text  # longer host than caf.fr
    assert "forum" not in "".join(line for line in text.splitlines() if not line.startswith("#"))
    assert "# block https://only.caf.fr (allow caf.fr wins for wss: left to the browser)" in text
    assert "nothere.test" not in text  # reaches nothing allowed: refused anyway


def test_empty_listen_is_a_clear_error(tmp_path):
    site = write_site(tmp_path / "site.toml", ["portal.test"], listen="")
    try:
        i18n.set_language("en")
        with pytest.raises(ProxyConfigError, match=r"\[proxy\] listen is empty"):
            squid_config(site_config.load(site))
    finally:
        i18n.set_language("fr")


def kioskctl(*args: str, lang: str = "en") -> subprocess.CompletedProcess:
    env = {**os.environ, "LANGUAGE": lang}
    env.pop("KIOSK_CONFIG", None)
    return subprocess.run([str(KIOSKCTL), *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_kioskctl_proxy_config_prints_and_installs_once(tmp_path):
    printed = kioskctl("proxy-config", "--config", str(SITE))
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == squid_config(site_config.load(SITE))
    output = tmp_path / "squid.conf"
    first = kioskctl("proxy-config", "--config", str(SITE), "--output", str(output))
    assert first.returncode == 0 and first.stderr == f"Proxy configuration written to {output}.\n"
    assert output.read_text() == printed.stdout and output.stat().st_mode & 0o777 == 0o644
    inode = output.stat().st_ino
    again = kioskctl("proxy-config", "--config", str(SITE), "--output", str(output), lang="fr")
    assert again.returncode == 0
    assert again.stderr == f"Configuration du proxy {output} inchangée.\n"
    assert output.stat().st_ino == inode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["squid.conf"]  # no temporary left


def test_kioskctl_proxy_config_errors_exit_2(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(SITE.read_text().replace('listen = "127.0.0.1:3128"', 'listen = "0.0.0.0:3128"'))
    line = next(n for n, text in enumerate(bad.read_text().splitlines(), 1)
                if text.startswith('listen = "0.0.0.0:3128"'))
    result = kioskctl("proxy-config", "--config", str(bad))
    assert result.returncode == 2 and result.stdout == ""
    assert f"{bad}:{line}: proxy.listen: must be a loopback address" in result.stderr
    off = tmp_path / "off.toml"
    off.write_text(SITE.read_text().replace('listen = "127.0.0.1:3128"', 'listen = ""'))
    output = tmp_path / "squid.conf"
    result = kioskctl("proxy-config", "--config", str(off), "--output", str(output), lang="fr")
    assert result.returncode == 2 and not output.exists()
    assert "[proxy] listen du fichier du site est vide" in result.stderr
