"""The kiosk policy: '*' blocked, the site's rules allowed, dangerous schemes refused."""

import pytest

from kiosk.policy import KioskPolicy

POLICY = KioskPolicy(["impots.gouv.fr", "caf.fr"], block=["caf.fr/forum"],
                     sources={"allow impots.gouv.fr": "portal impots"})


@pytest.mark.parametrize("url, allowed, rule", [
    ("https://www.impots.gouv.fr/accueil", True, "allow impots.gouv.fr"),
    ("https://www.caf.fr/allocataires", True, "allow caf.fr"),
    ("https://www.caf.fr/forum/x", False, "block caf.fr/forum"),
    ("https://evil.example/", False, "block *"),
    ("wss://www.impots.gouv.fr/socket", True, "allow impots.gouv.fr"),
    ("about:blank", True, "about:blank"),
    ("about:blank?x", False, "scheme:about"),
    ("about:config", False, "scheme:about"),
    ("file:///etc/passwd", False, "scheme:file"),
    ("FILE:///etc/passwd", False, "scheme:file"),
    ("javascript:alert(1)", False, "scheme:javascript"),
    (" JavaScript:alert(1)", False, "scheme:javascript"),
    ("data:text/html,<h1>hi</h1>", False, "scheme:data"),
    ("view-source:https://www.impots.gouv.fr/", False, "scheme:view-source"),
    ("chrome://settings", False, "scheme:chrome"),
    ("chrome-extension://abc/", False, "scheme:chrome-extension"),
    ("devtools://devtools/bundled/inspector.html", False, "scheme:devtools"),
    ("filesystem:https://www.impots.gouv.fr/temporary/x", False, "scheme:filesystem"),
    ("ftp://impots.gouv.fr/", False, "scheme:ftp"),
    ("mailto:someone@impots.gouv.fr", False, "scheme:mailto"),
    ("intent://scan/#Intent;scheme=zxing;end", False, "scheme:intent"),
    ("blob:https://www.impots.gouv.fr/0b5c", True, "allow impots.gouv.fr"),
    ("blob:https://evil.example/0b5c", False, "block *"),
    ("blob:null/0b5c", False, "scheme:blob"),
    ("http://%zz/", False, "unparseable"),
])
def test_pages(url, allowed, rule):
    verdict = POLICY.decide(url)
    assert (verdict.allowed, verdict.rule) == (allowed, rule)
    assert verdict.reason


def test_lists_cannot_reopen_refused_schemes():
    policy = KioskPolicy(["*", "file://*", "javascript:*", "data:*", "chrome://*"])
    for url in ["file:///etc/passwd", "javascript:alert(1)", "data:text/html,x",
                "chrome://settings", "view-source:https://a.org/"]:
        assert not policy.decide(url).allowed, url
    assert policy.decide("https://anything.example/").allowed


def test_data_and_blob_as_parts_of_a_page():
    assert POLICY.decide("data:image/png;base64,AAAA", subresource=True).allowed
    same = POLICY.decide("blob:https://www.impots.gouv.fr/0b5c", subresource=True,
                         initiator="https://www.impots.gouv.fr")
    assert same.allowed
    other = POLICY.decide("blob:https://www.impots.gouv.fr/0b5c", subresource=True,
                          initiator="https://www.caf.fr")
    assert (other.allowed, other.rule) == (False, "blob:cross-origin")


def test_sources_name_where_a_rule_comes_from():
    verdict = POLICY.decide("https://cfspart.impots.gouv.fr/LoginMDP")
    assert verdict.source == "portal impots"
    assert verdict.as_dict() == {"url": "https://cfspart.impots.gouv.fr/LoginMDP",
                                 "allowed": True, "rule": "allow impots.gouv.fr",
                                 "source": "portal impots"}


def test_plain_http_is_upgraded_or_refused():
    verdict = POLICY.decide("http://www.impots.gouv.fr/accueil")
    assert (verdict.allowed, verdict.rule) == (False, "scheme:http")
    assert POLICY.secure_version("http://www.impots.gouv.fr/accueil") == \
        "https://www.impots.gouv.fr/accueil"
    assert POLICY.secure_version("http://www.impots.gouv.fr:80/a") == "https://www.impots.gouv.fr/a"
    assert POLICY.secure_version("ws://www.caf.fr/socket") == "wss://www.caf.fr/socket"
    assert POLICY.secure_version("http://evil.example/") is None
    assert POLICY.secure_version("https://www.caf.fr/") is None
    lab = KioskPolicy(["portal.test"], insecure_http=True)
    assert lab.decide("http://portal.test:8080/").allowed
    assert lab.secure_version("http://portal.test:8080/") is None
