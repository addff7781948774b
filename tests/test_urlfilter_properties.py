"""Properties that must hold for any input, found by hypothesis."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.policy import KioskPolicy
from kiosk.urlfilter import URLFilter

LABELS = st.sampled_from(["a", "b", "ex", "www", "mail", "xn--bcher-kva", "x1", "co"])
HOSTS = st.lists(LABELS, min_size=1, max_size=4).map(".".join)
SCHEMES = st.sampled_from(["", "http://", "https://", "ws://", "custom://", "HTTP://"])
PORTS = st.sampled_from(["", ":80", ":443", ":8080"])
PATHS = st.sampled_from(["", "/", "/a", "/a/b", "/A", "/a%20b", "/~x", "/%7Ex"])
QUERIES = st.sampled_from(["", "?q=1", "?q=1&r=2", "?q=*", "?q", "?r=2&q=1", "?*"])


@st.composite
def filters(draw):
    host = draw(st.one_of(HOSTS, st.just("*"), HOSTS.map(lambda h: "." + h)))
    return draw(SCHEMES) + host + draw(PORTS) + draw(PATHS) + draw(QUERIES)


@st.composite
def urls(draw):
    scheme = draw(st.sampled_from(["http://", "https://", "ws://", "custom://", "HTTPS://"]))
    host = draw(HOSTS)
    if draw(st.booleans()):
        host = host.upper()
    return scheme + host + draw(PORTS) + draw(PATHS) + draw(QUERIES)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(filters(), max_size=12), st.lists(filters(), max_size=12), urls())
def test_index_decides_like_a_linear_scan(block, allow, url):
    filt = URLFilter(block, allow)
    index, scan = filt.decide(url), filt.decide_by_scan(url)
    assert (index.state, index.rule) == (scan.state, scan.rule)


@settings(max_examples=300)
@given(st.text(), st.lists(st.text(max_size=30), max_size=5), st.lists(st.text(max_size=30), max_size=5))
def test_never_raises_on_any_string(url, block, allow):
    filt = URLFilter(block, allow)
    assert isinstance(filt.is_blocked(url), bool)
    assert filt.is_allowed(url) is not filt.is_blocked(url)


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=80))
def test_kiosk_policy_never_raises_and_blocks_unknown_hosts(text):
    policy = KioskPolicy(["impots.gouv.fr"])
    for candidate in (text, "https://" + text, "http://impots.gouv.fr@" + text):
        verdict = policy.decide(candidate)
        assert isinstance(verdict.allowed, bool)
        if verdict.allowed:
            # Whatever was typed, an allowed page is on the allowed domain.
            from kiosk import weburl
            parsed = weburl.parse(candidate)
            assert parsed.scheme == "about" or ("." + parsed.host + ".").endswith(
                ".impots.gouv.fr.")


@settings(max_examples=300)
@given(HOSTS, HOSTS)
def test_subdomain_rules_match_only_at_label_boundaries(rule_host, url_host):
    matched = URLFilter([rule_host]).is_blocked(f"http://{url_host}/")
    assert matched == (url_host == rule_host or url_host.endswith("." + rule_host))
