"""schemathesis against the daemon's own OpenAPI document: no 5xx, replies conform.

The app runs in-process on a real runtime (private cupsd, SANE test backend,
a temporary data directory), fed by schemathesis-generated requests.
"""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from harness import Daemon
from kiosk import config as site_config
from kiosk.daemon.app import create_app
from kiosk.daemon.callers import PEER_KEY, Peer
from kiosk.daemon.runtime import Runtime


@pytest.fixture(scope="module")
def app(tmp_path_factory, cupsd, xvfb):
    root = tmp_path_factory.mktemp("schema")
    daemon = Daemon(root, cupsd, xvfb.display)
    daemon.write_site()
    runtime = Runtime.build(site_config.load(daemon.site_file), daemon.data_dir,
                            share_listener=True)
    runtime.start()
    app = create_app(runtime)
    served = app.wsgi_app

    def as_the_daemons_own_user(environ, start_response):
        """What kiosk.daemon.callers.PeerChannel puts in on the socket (none in-process)."""
        environ[PEER_KEY] = Peer(os.getpid(), os.getuid(), os.getgid())
        return served(environ, start_response)

    app.wsgi_app = as_the_daemons_own_user
    yield app
    runtime.stop()


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_api_conforms_and_never_fails_with_5xx(case):
    response = case.call()
    assert response.status_code < 500 or response.status_code == 503, response.text
    headers = {name.lower(): value for name, value in response.headers.items()}
    content_type = headers.get("content-type")
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith(("application/json", "application/pdf")), (
        case.method, case.path, response.status_code, response.text[:300])
    case.validate_response(response)
