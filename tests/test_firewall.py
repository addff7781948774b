"""The resident's firewall, proven in a private network namespace.

Two throwaway users stand in for the resident (``kiosk``) and Squid's ``proxy``;
the real users of this machine are never touched. Everything network happens
inside ``unshare --net`` (plus a PID namespace, so every process dies with it):
loopback, a private address 10.203.0.1 and fd00:203::1 on an interface of that
namespace, listeners that record what reaches them, the rules loaded with
``nft -f`` there. The host's network and firewall are never touched.

The same probes run before and after the rules are loaded: before, the resident
reaches everything (so these tests can fail); after, only the proxy's port.
What runs inside the namespace is tests/netns_firewall.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kiosk_provision.firewall import TABLE, nft_rules
from netns_firewall import LAN4, PROXY_PORT, TCP_TARGETS, UDP_TARGETS

RESIDENT, PROXY = "plusfw-resident", "plusfw-proxy"
TOOLS = ("unshare", "nft", "setpriv", "ip", "useradd", "userdel")


def needs_root_and_tools():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    return pytest.mark.skipif(
        os.geteuid() != 0 or bool(missing),
        reason="needs root (namespaces, users, nft)" if os.geteuid() != 0
        else f"needs {', '.join(missing)}")


# -- the rule set as text ------------------------------------------------------------------

def test_rules_are_one_table_replaced_atomically():
    text = nft_rules("kiosk", "proxy", "127.0.0.1", 3128)
    lines = [line.strip() for line in text.splitlines()]
    # Declared, deleted, defined: loading twice never fails and never doubles a rule.
    assert lines.index(f"table inet {TABLE} {{}}") < lines.index(f"delete table inet {TABLE}") \
        < lines.index(f"table inet {TABLE} {{")
    assert "flush ruleset" not in text           # other tables are not ours
    assert 'meta skuid "kiosk" ip daddr 127.0.0.1 tcp dport 3128' in text
    statements = [line for line in lines if line and not line.startswith("#")]
    assert not [line for line in statements if " log" in line]   # counts, never addresses
    assert "ip6 daddr ::1 tcp dport 8080" in nft_rules(1000, 13, "[::1]", 8080)


@pytest.mark.parametrize("args", [("kiosk", "proxy", "192.168.1.20", 3128),
                                  ("kiosk", "proxy", "0.0.0.0", 3128),
                                  ("kiosk", "kiosk", "127.0.0.1", 3128),
                                  ("kiosk", "proxy", "127.0.0.1", 0),
                                  ('ki"osk', "proxy", "127.0.0.1", 3128)])
def test_rules_refuse_what_would_open_a_hole(args):
    with pytest.raises(ValueError):
        nft_rules(*args)


@needs_root_and_tools()
def test_nft_accepts_the_file(tmp_path):
    """nft -c parses and checks against the kernel, committing nothing (in a private
    namespace all the same)."""
    for host in ("127.0.0.1", "::1"):
        rules = tmp_path / "firewall.nft"
        rules.write_text(nft_rules(0, 65534, host, 3128))
        result = subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(rules)],
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stderr
    rules.write_text(nft_rules(0, 65534, "127.0.0.1", 3128).replace("tcp dport", "tcp dprt"))
    assert subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(rules)],
                          capture_output=True).returncode != 0


# -- the proof in a namespace ----------------------------------------------------------------

@pytest.fixture(scope="module")
def users():
    """Two system users made for this test, removed afterwards even on failure."""
    made = []
    try:
        for name in (RESIDENT, PROXY):
            subprocess.run(["userdel", name], capture_output=True)  # a crashed run's leftover
            subprocess.run(["useradd", "--system", "--no-create-home", "--user-group",
                            "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
            made.append(name)
        import pwd
        yield {name: (pwd.getpwnam(name).pw_uid, pwd.getpwnam(name).pw_gid) for name in made}
    finally:
        for name in made:
            subprocess.run(["userdel", name], capture_output=True)


def in_namespace(*argv: str, timeout: float = 120) -> dict:
    """Run this file's scenario in fresh network and PID namespaces; its JSON answer."""
    result = subprocess.run(
        ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "--mount",
         sys.executable, "-I", str(Path(__file__).with_name("netns_firewall.py")), *argv],
        capture_output=True, text=True, timeout=timeout, cwd="/")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def proof(users, tmp_path_factory):
    rules = tmp_path_factory.mktemp("fw") / "firewall.nft"
    rules.write_text(nft_rules(users[RESIDENT][0], users[PROXY][0], "127.0.0.1", PROXY_PORT))
    rules.chmod(0o644)
    ids = [f"{uid}:{gid}" for uid, gid in (users[RESIDENT], users[PROXY])]
    return in_namespace("scenario", str(rules), *ids)


@needs_root_and_tools()
def test_without_the_rules_the_resident_reaches_everything(proof):
    """The control: the probes can tell an open network from a closed one."""
    before = proof["open"]["resident"]
    assert all(before["tcp"][name] == "connected" for name in TCP_TARGETS), before["tcp"]
    assert set(proof["open"]["heard"]["resident"]) >= set(UDP_TARGETS)
    assert before["ping"] == "answered"


@needs_root_and_tools()
def test_the_resident_reaches_the_proxy_and_nothing_else(proof):
    after = proof["closed"]["resident"]
    assert after["tcp"]["proxy"] == "connected"
    refused = {name: result for name, result in after["tcp"].items() if name != "proxy"}
    assert set(refused.values()) == {"ECONNREFUSED"}, refused   # a reset: no waiting
    assert all(after["seconds"][name] < 1.0 for name in refused), after["seconds"]
    assert after["ping"] != "answered"


@needs_root_and_tools()
def test_no_datagram_of_the_resident_arrives_dns_included(proof):
    assert proof["closed"]["heard"]["resident"] == []
    # A connected UDP socket learns it at once too (the ICMP error of the reject).
    errors = proof["closed"]["resident"]["udp"]
    assert all(result != "sent" for result in errors.values()), errors


@needs_root_and_tools()
def test_the_proxy_user_and_root_are_not_restricted(proof):
    for user in ("proxy", "root"):
        closed = proof["closed"][user]
        assert all(result == "connected" for result in closed["tcp"].values()), (user, closed)
        assert sorted(proof["closed"]["heard"][user]) == sorted(UDP_TARGETS), user


@needs_root_and_tools()
def test_refusals_are_counted_and_loading_twice_keeps_one_table(proof):
    counters = proof["counters"]
    assert counters["resident_refused"] >= len(TCP_TARGETS) - 1 + len(UDP_TARGETS)
    assert counters["resident_to_proxy"] >= 1
    assert proof["tables"] == [["inet", TABLE]] and proof["rules"] == 4


# -- the real Squid, as on a terminal ---------------------------------------------------------

@pytest.fixture(scope="module")
def squid_proof(users):
    """Squid started from kiosk.proxy's configuration as the proxy user, the resident
    behind the firewall: through the proxy to an allowed name, never around it."""
    if shutil.which("squid") is None:
        pytest.skip("needs squid (the terminal's proxy)")
    proxy = pytest.importorskip("kiosk.proxy")
    import tempfile

    from kiosk.config import bundled_config, load_text
    uid, gid = users[PROXY]
    runtime = Path(tempfile.mkdtemp(prefix="plusfw-squid-", dir="/tmp"))
    try:
        os.chown(runtime, uid, gid)
        runtime.chmod(0o755)
        hosts = runtime / "hosts"
        hosts.write_text(f"{LAN4} www.impots.gouv.fr www.newportal.example\n")
        site = bundled_config().read_text(encoding="utf-8")
        assert 'listen = "127.0.0.1:3128"' in site and 'allow = [\n  "franceconnect' in site
        later = site.replace('allow = [\n  "franceconnect',
                             'allow = [\n  "newportal.example",\n  "franceconnect')
        for name, text in (("squid.conf", site), ("squid-reloaded.conf", later)):
            conf = proxy.squid_config(load_text(text), destinations="any", hosts_file=str(hosts),
                                      runtime_dir=str(runtime))
            (runtime / name).write_text(conf)
            (runtime / name).chmod(0o644)
        rules = runtime / "firewall.nft"
        rules.write_text(nft_rules(users[RESIDENT][0], uid, "127.0.0.1", PROXY_PORT))
        ids = [f"{u}:{g}" for u, g in (users[RESIDENT], users[PROXY])]
        yield in_namespace("squid", str(rules), *ids, str(runtime))
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


@needs_root_and_tools()
def test_squid_starts_as_on_a_terminal(squid_proof):
    """squid -N as its own user, no new privileges, no writable+executable memory
    (the unit's MemoryDenyWriteExecute=), tells systemd it is ready (Type=notify)."""
    assert squid_proof["parse"] == 0, squid_proof.get("log")
    assert squid_proof["notify"] == "READY=1", squid_proof.get("log")
    assert squid_proof["mdwe"] in ("on", "kernel too old")


@needs_root_and_tools()
def test_the_resident_goes_through_squid_to_an_allowed_name_and_nowhere_else(squid_proof):
    resident = squid_proof["resident"]
    assert resident["allowed"] == "200" and "through the proxy" in squid_proof["origin"]
    assert resident["blocked"] == "403"
    assert resident["not_yet_allowed"] == "403"
    assert resident["direct"] == "ECONNREFUSED"          # around the proxy: the firewall
    assert resident["dns"] != "sent"


@needs_root_and_tools()
def test_squid_follows_the_site_file_on_sighup(squid_proof):
    """What ExecReload= does: a new configuration, then SIGHUP; Squid keeps running."""
    assert squid_proof["after_reload"] == "200"
    assert squid_proof["still_running"]
