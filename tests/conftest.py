"""Shared fixtures: the real components the daemon works with."""

import os
import secrets
import shutil
import tempfile
from pathlib import Path

import pytest


from harness import Cupsd, Daemon, Xvfb, require


@pytest.fixture(scope="session")
def cupsd():
    require("cupsd", "lpadmin")
    # Not under pytest's private tmp: cupsd's filters run as "lp" and must reach the spool.
    root = Path(tempfile.mkdtemp(prefix="plus-kiosk-cups-"))
    root.chmod(0o755)
    server = Cupsd(root, f"plustest{secrets.token_hex(4)}").start()
    previous = os.environ.get("CUPS_SERVER")
    os.environ["CUPS_SERVER"] = server.socket  # for in-process pycups users (schemathesis)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)
    if previous is None:
        os.environ.pop("CUPS_SERVER", None)
    else:
        os.environ["CUPS_SERVER"] = previous


@pytest.fixture(scope="session")
def xvfb():
    require("Xvfb", "xsel")
    server = Xvfb.start()
    yield server
    server.stop()


@pytest.fixture
def daemon_factory(tmp_path, cupsd, xvfb):
    started = []

    def make(**overrides):
        daemon = Daemon(tmp_path / f"d{len(started)}", cupsd, xvfb.display, overrides)
        daemon.root.mkdir()
        started.append(daemon)
        return daemon.start()

    yield make
    for daemon in started:
        daemon.stop()


@pytest.fixture
def daemon(daemon_factory):
    return daemon_factory()


@pytest.fixture(scope="module")
def fake_portals():
    """Small HTTP sites on 127.0.0.1 answering for every test host name."""
    import portals
    server = portals.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def squid_factory():
    """Start real Squids for test sites: ``squid_factory(site_path, hosts=(...),
    destinations="any")``; all are stopped and removed at the end of the module."""
    from harness import Squid
    started = []

    def make(site, hosts=("portal.test", "evil.test"), destinations="any", extra_conf=""):
        squid = Squid(Path(site), tuple(hosts), destinations, extra_conf=extra_conf)
        started.append(squid)
        return squid.start()

    yield make
    for squid in started:  # all asked at once: each takes a second or two to stop
        if squid.process is not None and squid.process.poll() is None:
            squid.process.terminate()
    for squid in started:
        squid.remove()
