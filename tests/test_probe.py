"""kioskctl portals probe against fake portals on 127.0.0.1 only.

Every test host name reaches 127.0.0.1 through a fake proxy standing in for Squid (as
on a terminal, the probe asks the proxy, which resolves names): it opens CONNECT
tunnels and forwards plain http, always to 127.0.0.1, and records what it was asked.
The https portals use a certificate from a throwaway authority the probe is told to
trust with SSL_CERT_FILE (OpenSSL's own variable), so the TLS path is the real one.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from kiosk import i18n, kioskctl, probe

KIOSKCTL = Path(sys.executable).parent / "kioskctl"


# --- certificates ------------------------------------------------------------------------

def _certificates(folder: Path) -> dict[str, Path]:
    """A test authority and a certificate it signed for secure.test; a self-signed one."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def make(name, issuer_name=None, issuer_key=None, ca=False):
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        builder = (x509.CertificateBuilder().subject_name(subject)
                   .issuer_name(issuer_name or subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(days=1))
                   .not_valid_after(now + datetime.timedelta(days=2))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName(name)]), critical=False)
        cert = builder.sign(issuer_key or key, hashes.SHA256())
        return key, cert

    def write(stem, key, cert):
        (folder / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (folder / f"{stem}.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    ca_key, ca_cert = make("PLUS probe test authority", ca=True)
    write("ca", ca_key, ca_cert)
    write("secure", *make("secure.test", ca_cert.subject, ca_key))
    write("selfsigned", *make("selfsigned.test"))
    return {stem: folder / f"{stem}.pem" for stem in ("ca", "secure", "selfsigned")}


# --- the fake portals ---------------------------------------------------------------------

class Portals:
    """One handler for every test host, told apart by the Host header."""

    def __init__(self):
        self.hits: list[tuple[str, str]] = []
        self.agents: list[str] = []  # the User-Agent of each hit
        self.servers: list[ThreadingHTTPServer] = []

    def start(self, tls_cert: Path | None = None) -> int:
        portals = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send(self, status, location=""):
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                body = f"<h1>{status}</h1>".encode()
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
                port = self.server.server_address[1]
                portals.hits.append((host, self.path))
                portals.agents.append(self.headers.get("User-Agent") or "")
                route = ROUTES.get((host, self.path))
                if route is None:
                    self.send(404)
                elif isinstance(route, int):
                    self.send(route)
                else:
                    self.send(302, route.format(port=port, http=portals.http_port))

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if tls_cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls_cert, tls_cert.with_suffix(".key"))
            server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.servers.append(server)
        return server.server_address[1]

    def hosts(self) -> set[str]:
        return {host for host, _ in self.hits}


# (host, path) -> status, or the Location of a 302 ({port}: this server's, {http}: plain http's)
ROUTES: dict[tuple[str, str], int | str] = {
    ("clean.test", "/"): 200,
    ("moved.test", "/"): "http://www.moved-gouv.test:{port}/",            # service-public
    ("gone.test", "/"): 404,
    ("broken.test", "/"): 503,
    ("chain.test", "/"): "/etape-1",
    ("chain.test", "/etape-1"): "http://cdn.chain.test:{port}/etape-2",
    ("cdn.chain.test", "/etape-2"): "http://tracker.test:{port}/collect",
    ("loop.test", "/"): "/",
    ("guide.test", "/"): 200,
    ("guide.test", "/connexion"): 200,
    ("guide.test", "/compte/"): "/moncompte/tableaudebord",                # CAF's move
    ("guide.test", "/moncompte/tableaudebord"): 200,
    ("guide.test", "/espace/"): "/connexion",                              # behind sign-in
    ("guide.test", "/aide/"): 200,
    ("secure.test", "/"): 200,
    ("secure.test", "/ancien"): "http://secure.test:{port}/nouveau",       # upgraded to https
    ("secure.test", "/nouveau"): 200,
    ("127.0.0.1", "/"): 200,
}


class FakeProxy:
    """Squid's stand-in: CONNECT tunnels and absolute-address requests, every name sent to
    127.0.0.1 (and nowhere else); names in ``refuse`` get Squid's 403."""

    def __init__(self, refuse=("squid-refuses.test",)):
        self.asked: list[tuple[str, str]] = []
        self.refuse = set(refuse)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    @staticmethod
    def _pipe(source, target):
        try:
            while chunk := source.recv(65536):
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _handle(self, client):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                client.close()
                return
            head += chunk
        first, rest = head.split(b"\r\n", 1)
        method, target, _version = first.decode().split(" ")
        self.asked.append((method, target))
        if method == "CONNECT":
            host, port = target.rsplit(":", 1)
            if host in self.refuse:
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                client.close()
                return
            upstream = socket.create_connection(("127.0.0.1", int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            parts = urlsplit(target)
            upstream = socket.create_connection(("127.0.0.1", parts.port or 80))
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            upstream.sendall(f"{method} {path} HTTP/1.1\r\n".encode() + rest)
        threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()
        self._pipe(upstream, client)

    def connected_hosts(self) -> set[str]:
        return {(t.rsplit(":", 1)[0] if m == "CONNECT" else urlsplit(t).hostname)
                for m, t in self.asked}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("probe-lab")
    certs = _certificates(folder)
    portals = Portals()
    portals.http_port = portals.start()
    portals.tls_port = portals.start(certs["secure"])
    portals.selfsigned_port = portals.start(certs["selfsigned"])
    proxy = FakeProxy()
    yield portals, proxy, certs
    for server in portals.servers:
        server.shutdown()
    proxy.listener.close()


@pytest.fixture(autouse=True)
def trust_the_test_authority(lab, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(lab[2]["ca"]))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    yield
    i18n.set_language("fr")


# --- site files and guides ----------------------------------------------------------------

TEXT = {"fr": "Touchez « Suivant ».", "gcf": "Touché « Suivant ».", "en": "Touch « Suivant »."}


def guide(guide_id, portal, start_url, steps):
    return {"format": 1, "id": guide_id, "portal": portal, "title": TEXT, "summary": TEXT,
            "minutes": 5, "difficulty": 1, "start_url": start_url, "have_at_hand": [TEXT],
            "steps": [{"id": step_id, "title": TEXT, "text": TEXT, "url": url}
                      for step_id, url in steps],
            "end_state": {"kind": "confirmation", "text": TEXT},
            "source": "https://portal.test/", "last_checked": "2026-01-15"}


def site(tmp_path, portals, guides=(), proxy="", insecure=True) -> Path:
    """A site file: ``portals`` are (id, start_url, [allow rules])."""
    folder = tmp_path / "guides"
    for data in guides:
        (folder / data["portal"]).mkdir(parents=True, exist_ok=True)
        (folder / data["portal"] / f"{data['id']}.yaml").write_text(
            yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    text = ("[site]\nname = \"Labo sonde\"\ncommune = \"Sainte-Luce\"\nkind = \"municipal\"\n\n"
            f"[proxy]\nlisten = \"{proxy}\"\n\n[guides]\nextra_dir = \"{folder}\"\n\n"
            f"[filter]\ninsecure_http = {str(insecure).lower()}\n\n")
    for portal_id, start_url, allow in portals:
        text += (f"[[portal]]\nid = \"{portal_id}\"\nname = {{ fr = \"{portal_id}\", "
                 f"gcf = \"{portal_id}\", en = \"{portal_id}\" }}\n"
                 f"start_url = \"{start_url}\"\nallow = {json.dumps(allow)}\n\n")
    path = tmp_path / "site.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_probe(capsys, path, *extra, lang="en"):
    """kioskctl portals probe --json in this process: (exit status, report)."""
    status = kioskctl.main(["--lang", lang, "portals", "probe", "--config", str(path),
                            "--json", *extra])
    out = capsys.readouterr().out
    return status, (json.loads(out) if out.strip() else None)


def by_url(report, url):
    return next(a for a in report["addresses"] if a["url"] == url)


# --- the cases ----------------------------------------------------------------------------

def test_moved_host_is_drift_naming_the_rule_to_add_and_is_never_contacted(lab, tmp_path,
                                                                           capsys):
    """The service-public case: the start page redirects to a host the allowlist refuses."""
    portals, proxy, _certs = lab
    port = portals.http_port
    path = site(tmp_path, [("demarches", f"http://moved.test:{port}/", ["moved.test"])],
                proxy=f"127.0.0.1:{proxy.port}")
    status, report = run_probe(capsys, path)
    assert status == 1 and report["drift"] == 1
    address = by_url(report, f"http://moved.test:{port}/")
    [finding] = address["findings"]
    assert finding["kind"] == "off_allowlist" and finding["severity"] == "drift"
    assert finding["rule"] == "moved-gouv.test"  # "www." dropped, as for service-public.gouv.fr
    assert f"http://www.moved-gouv.test:{port}/" in finding["message"]
    assert "block *" in finding["message"]
    assert "allow moved-gouv.test" in finding["todo"] and "demarches" in finding["todo"]
    assert address["hops"] == [{"url": f"http://moved.test:{port}/", "status": 302},
                               {"url": f"http://www.moved-gouv.test:{port}/", "status": None}]
    # Decided before it is fetched: the refused host was never asked for, not even of the proxy.
    assert "www.moved-gouv.test" not in portals.hosts() | proxy.connected_hosts()
    assert "moved.test" in proxy.connected_hosts()  # the probe went through the proxy


def test_error_statuses_are_drift(lab, tmp_path, capsys):
    portals, proxy, _certs = lab
    port = portals.http_port
    path = site(tmp_path, [("gone", f"http://gone.test:{port}/", ["gone.test"]),
                           ("broken", f"http://broken.test:{port}/", ["broken.test"]),
                           ("clean", f"http://clean.test:{port}/", ["clean.test"])],
                proxy=f"127.0.0.1:{proxy.port}")
    status, report = run_probe(capsys, path)
    assert status == 1 and report["drift"] == 2
    for host, code in (("gone", 404), ("broken", 503)):
        [finding] = by_url(report, f"http://{host}.test:{port}/")["findings"]
        assert finding["kind"] == "status" and f"answers {code}" in finding["message"]
    assert by_url(report, f"http://clean.test:{port}/")["findings"] == []


def test_off_allowlist_redirect_chain_is_followed_hop_by_hop(lab, tmp_path, capsys):
    portals, proxy, _certs = lab
    port = portals.http_port
    path = site(tmp_path, [("chain", f"http://chain.test:{port}/", ["chain.test"]),
                           ("loop", f"http://loop.test:{port}/", ["loop.test"])],
                proxy=f"127.0.0.1:{proxy.port}")
    status, report = run_probe(capsys, path)
    assert status == 1 and report["drift"] == 2
    chain = by_url(report, f"http://chain.test:{port}/")
    assert [h["url"] for h in chain["hops"]] == [
        f"http://chain.test:{port}/", f"http://chain.test:{port}/etape-1",
        f"http://cdn.chain.test:{port}/etape-2", f"http://tracker.test:{port}/collect"]
    [finding] = chain["findings"]
    assert finding["kind"] == "off_allowlist" and finding["rule"] == "tracker.test"
    assert "tracker.test" not in portals.hosts() | proxy.connected_hosts()
    loop = by_url(report, f"http://loop.test:{port}/")
    assert len(loop["hops"]) == probe.MAX_REDIRECTS + 1  # never more than that many requests
    assert [f["kind"] for f in loop["findings"]] == ["redirects"]


def test_tls_and_connection_failures_are_drift(lab, tmp_path, capsys):
    """A plain-TCP server answered as https, a self-signed certificate, Squid's refusal."""
    portals, proxy, _certs = lab
    path = site(tmp_path, [
        ("plain", f"https://clean.test:{portals.http_port}/", ["clean.test"]),
        ("self", f"https://selfsigned.test:{portals.selfsigned_port}/", ["selfsigned.test"]),
        ("squid", f"https://squid-refuses.test:{portals.tls_port}/", ["squid-refuses.test"]),
        ("secure", f"https://secure.test:{portals.tls_port}/", ["secure.test"])],
        proxy=f"127.0.0.1:{proxy.port}", insecure=False)
    status, report = run_probe(capsys, path)
    assert status == 1 and report["drift"] == 3
    [plain] = by_url(report, f"https://clean.test:{portals.http_port}/")["findings"]
    assert plain["kind"] == "tls" and "clean.test" in plain["message"]
    [self_signed] = by_url(report, f"https://selfsigned.test:{portals.selfsigned_port}/")[
        "findings"]
    assert self_signed["kind"] == "tls" and "not trusted" in self_signed["message"]
    assert "self-signed" in self_signed["message"] or "self signed" in self_signed["message"]
    [refused] = by_url(report, f"https://squid-refuses.test:{portals.tls_port}/")["findings"]
    assert refused["kind"] == "connection" and "403" in refused["message"]
    # The trusted certificate, through a CONNECT tunnel, is fine.
    secure = by_url(report, f"https://secure.test:{portals.tls_port}/")
    assert secure["findings"] == [] and secure["hops"][-1]["status"] == 200


def test_http_hop_is_upgraded_to_https_as_the_browser_does(lab, tmp_path, capsys):
    portals, proxy, _certs = lab
    port = portals.tls_port
    path = site(tmp_path, [("secure", f"https://secure.test:{port}/ancien", ["secure.test"])],
                proxy=f"127.0.0.1:{proxy.port}", insecure=False)
    before = len(proxy.asked)
    status, report = run_probe(capsys, path)
    assert status == 0, report
    assert by_url(report, f"https://secure.test:{port}/ancien")["hops"] == [
        {"url": f"https://secure.test:{port}/ancien", "status": 302},
        {"url": f"https://secure.test:{port}/nouveau", "status": 200}]
    assert all(method == "CONNECT" for method, _ in proxy.asked[before:])  # no plain http


def guide_site(tmp_path, portals, proxy, step_paths):
    port = portals.http_port
    steps = [("login", f"http://guide.test:{port}/connexion")] + [
        (name, f"http://guide.test:{port}{step_path}") for name, step_path in step_paths]
    return site(tmp_path, [("guichet", f"http://guide.test:{port}/", ["guide.test"])],
                [guide("guichet-attestation", "guichet", f"http://guide.test:{port}/", steps)],
                proxy=f"127.0.0.1:{proxy.port}")


def test_step_landing_on_a_page_its_pattern_no_longer_matches_is_drift(lab, tmp_path, capsys):
    """The CAF case: the account pages moved from /compte/ to /moncompte/."""
    portals, proxy, _certs = lab
    port = portals.http_port
    path = guide_site(tmp_path, portals, proxy, [("certificates", "/compte/")])
    before = portals.hits.count(("guide.test", "/"))
    status, report = run_probe(capsys, path)
    assert status == 1 and report["drift"] == 1
    address = by_url(report, f"http://guide.test:{port}/compte/")
    assert address["used_by"] == ["guide guichet-attestation, step certificates"]
    [finding] = address["findings"]
    assert finding["kind"] == "pattern"
    assert f"http://guide.test:{port}/moncompte/tableaudebord" in finding["message"]
    assert f"http://guide.test:{port}/compte/" in finding["message"]
    assert "guichet-attestation.yaml" in finding["todo"]
    # The portal's and the guide's start page are one address, probed once.
    assert by_url(report, f"http://guide.test:{port}/")["used_by"] == [
        "portal guichet: start page", "guide guichet-attestation: start page"]
    assert portals.hits.count(("guide.test", "/")) == before + 1


def test_clean_site_exits_0_and_a_sign_in_step_is_a_note(lab, tmp_path, capsys):
    portals, proxy, _certs = lab
    path = guide_site(tmp_path, portals, proxy, [("account", "/espace/"), ("help", "/aide/")])
    before = len(portals.agents)
    status, report = run_probe(capsys, path)
    assert status == 0 and report["drift"] == 0 and report["notes"] == 1
    [note] = by_url(report, f"http://guide.test:{portals.http_port}/espace/")["findings"]
    assert note["kind"] == "other_step" and note["severity"] == "note" and "login" in \
        note["message"]
    sent = portals.agents[before:]
    assert len(sent) == 5 and set(sent) == {probe.user_agent()}  # /, /connexion, /espace/ (2), /aide/


def test_the_probe_sends_the_browsers_user_agent_with_or_without_qt(monkeypatch):
    network = pytest.importorskip("kiosk.browser.network")
    pytest.importorskip("qtpy.QtWebEngineCore")
    browser = network.plain_chrome()
    assert probe.user_agent() == browser and "QtWebEngine" not in browser
    monkeypatch.setitem(sys.modules, "qtpy.QtWebEngineCore", None)  # Qt cannot be imported
    assert probe.user_agent() == browser, \
        "update kiosk.probe.CHROME_MAJOR to the engine's Chromium version"


def test_direct_mode_and_exit_2_when_the_proxy_is_down(lab, tmp_path, capsys):
    portals, _proxy, _certs = lab
    closed = socket.create_server(("127.0.0.1", 0))
    down = closed.getsockname()[1]
    closed.close()
    path = site(tmp_path, [("local", f"http://127.0.0.1:{portals.http_port}/", ["127.0.0.1"])],
                proxy=f"127.0.0.1:{down}")
    assert kioskctl.main(["--lang", "en", "portals", "probe", "--config", str(path)]) == 2
    assert f"127.0.0.1:{down} does not answer" in capsys.readouterr().err
    status, report = run_probe(capsys, path, "--direct")
    assert status == 0 and report["proxy"] == ""
    assert by_url(report, f"http://127.0.0.1:{portals.http_port}/")["hops"][0]["status"] == 200


def test_usage_and_config_errors_exit_2(tmp_path, capsys):
    assert kioskctl.main(["portals", "probe", "--config", str(tmp_path / "none.toml")]) == 2
    with pytest.raises(SystemExit) as exit_:
        kioskctl.main(["portals", "probe", "--no-such-option"])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit) as exit_:
        kioskctl.main(["portals"])
    assert exit_.value.code == 2


def test_command_line_report_in_french(lab, tmp_path):
    """The installed kioskctl, as a technician runs it: plain French, exit 1 on drift."""
    portals, proxy, certs = lab
    port = portals.http_port
    path = site(tmp_path, [("demarches", f"http://moved.test:{port}/", ["moved.test"]),
                           ("clean", f"http://clean.test:{port}/", ["clean.test"])],
                proxy=f"127.0.0.1:{proxy.port}")
    env = {**os.environ, "LANGUAGE": "fr", "SSL_CERT_FILE": str(certs["ca"])}
    result = subprocess.run([str(KIOSKCTL), "portals", "probe", "--config", str(path)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert f"par le proxy 127.0.0.1:{proxy.port}" in out
    assert f"DÉRIVE  http://moved.test:{port}/" in out
    assert "que la liste d'autorisation refuse (block *)" in out
    assert "allow moved-gouv.test" in out and "kioskctl check-url" in out
    assert f"OK      http://clean.test:{port}/ (200)" in out
    assert "2 adresse(s) : 1 en dérive, 0 remarque(s)." in out
