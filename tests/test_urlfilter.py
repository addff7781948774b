"""The Chrome-format URL filter: format, precedence, queries, browser parsing."""

import pytest

from kiosk.urlfilter import InvalidFilter, URLFilter, parse_filter


def blocked(url, block=(), allow=()):
    return URLFilter(block, allow).is_blocked(url)


def state(url, block=(), allow=()):
    return URLFilter(block, allow).decide(url).state


# --- Cutting filters into components -----------------------------------------

@pytest.mark.parametrize("text, scheme, host, subdomains, port, path, query", [
    ("example.com", "", ".example.com", True, 0, "", ""),
    (".example.com", "", "example.com", False, 0, "", ""),
    ("HTTPS://Example.COM:8443/Path?Q=1", "https", ".example.com", True, 8443, "/Path", "Q=1"),
    ("user:pass@host.com/x", "", "", True, 0, "", None),  # "user" is read as a scheme
    ("http://user:pass@host.com:8080/p", "http", ".host.com", True, 8080, "/p", ""),
    ("example.com:8080", "", ".example.com", True, 8080, "", ""),
    ("localhost:8080/x", "", ".localhost", True, 8080, "/x", ""),
    ("*", "", "", True, 0, "", ""),
    ("*:8080", "", "", True, 8080, "", ""),
    ("*/path", "", "", True, 0, "/path", ""),
    ("*?q=1", "", "", True, 0, "", "q=1"),
    ("https://*", "https", "", True, 0, "", ""),
    ("custom:*", "custom", "", True, 0, "", ""),
    ("192.168.1.2", "", "192.168.1.2", False, 0, "", ""),
    ("[::1]:8080", "", "[::1]", False, 8080, "", ""),
    ("example.com./", "", ".example.com.", True, 0, "/", ""),
    ("example.com#frag", "", ".example.com", True, 0, "", ""),
    ("http:\\\\example.com\\a", "http", ".example.com", True, 0, "\\a", ""),
    ("ftp.example.com", "", ".ftp.example.com", True, 0, "", ""),
    ("example.com;8080", "", ".example.com;8080", True, 0, "", ""),
    ("http;//example.com", "http", ".example.com", True, 0, "", ""),
    ("file:///etc/passwd", "file", "", True, 0, "/etc/passwd", ""),
    ("file://localhost/home//user", "file", "", True, 0, "/home/user", ""),
    ("data:text/html,hi", "data", "", True, 0, "text/html,hi", ""),
    ("://impots.gouv.fr", "", ".impots.gouv.fr", True, 0, "", ""),
    ("\u00a0impots.gouv.fr", "", ".impots.gouv.fr", True, 0, "", ""),
    ("\x01impots.gouv.fr", "", "\x01impots.gouv.fr", False, 0, "", ""),
    ("a;b", "", ".a;b", True, 0, "", ""),
    (":8080", "", "8080", False, 0, "", ""),  # an IP-like host: valid, matches nothing
    ("localhost:8080@evil.com", "", "", True, 0, "", None),
    ("user:1234@example.com", "", "", True, 0, "", None),
])
def test_components(text, scheme, host, subdomains, port, path, query):
    if query is None:
        with pytest.raises(InvalidFilter):
            parse_filter(text)
        return
    rule = parse_filter(text)
    assert (rule.scheme, rule.host, rule.match_subdomains, rule.port, rule.path, rule.query) == \
        (scheme, host, subdomains, port, path, query)


@pytest.mark.parametrize("text", [
    "", "   ", "example.com:*", "host:65536", "host:0", "example.com:-1",
    "custom://app", "javascript:alert(1)", "mailto:someone@example.com", "/etc/passwd",
    "~/docs", "file://server/share", "about:", "http://",
])
def test_invalid_filters_are_reported_not_applied(text):
    with pytest.raises(InvalidFilter):
        parse_filter(text)
    filt = URLFilter([text])
    assert len(filt) == 0 and len(filt.invalid) == 1
    assert not filt.is_blocked("http://example.com/")


# --- Host matching ------------------------------------------------------------

@pytest.mark.parametrize("rule, url, expected", [
    ("example.com", "http://example.com", True),
    ("example.com", "http://www.example.com/x", True),
    ("example.com", "http://a.b.example.com/x", True),
    ("example.com", "http://notexample.com/", False),
    ("example.com", "http://example.com.evil.org/", False),
    ("example.com", "http://example.co/", False),
    (".example.com", "http://example.com/", True),
    (".example.com", "http://www.example.com/", False),
    ("www.example.com", "http://example.com/", False),
    ("example.com", "http://EXAMPLE.com/", True),
    ("EXAMPLE.com", "http://example.com/", True),
    ("example.com", "http://example.com./", True),
    (".example.com", "http://example.com./", True),
    ("example.com.", "http://www.example.com/", True),
    ("example.com", "http://example.com../", False),
    ("com", "http://example.com/", True),
    ("*", "http://anything.example/", True),
    ("*", "https://[2001:db8::1]/", True),
    ("10.1.2.3", "http://10.1.2.3:8080/", True),
    ("1.2.3", "http://1.2.0.3/", False),  # the filter keeps its text; no match
    ("2.3", "http://1.2.3/", False),  # IP filters never match by suffix
    ("[::1]", "http://[::1]/", True),
    ("[::1]", "http://[0:0::1]/", True),
    ("xn--bcher-kva.de", "http://bücher.de/", True),
    ("xn--bcher-kva.de", "http://BÜCHER.de/", True),
])
def test_host_matching(rule, url, expected):
    assert blocked(url, [rule]) is expected


# --- Scheme, port, path, query -------------------------------------------------

@pytest.mark.parametrize("rule, url, expected", [
    ("http://example.com", "https://example.com/", False),
    ("http://example.com", "HTTP://example.com/", True),
    ("https://*", "https://x.org/", True),
    ("https://*", "http://x.org/", False),
    ("*:8080", "http://x.org:8080/", True),
    ("*:8080", "http://x.org/", False),
    ("example.com:80", "http://example.com/", True),
    ("example.com:443", "https://example.com/", True),
    ("example.com:443", "http://example.com/", False),
    ("example.com/stuff", "http://www.example.com/stuff/more", True),
    ("example.com/stuff", "http://example.com/stuffing", True),
    ("example.com/stuff", "http://example.com/Stuff", False),
    ("example.com/stuff", "http://example.com/other/stuff", False),
    ("example.com/a b", "http://example.com/a b", False),  # path rules are raw
    ("example.com/a%20b", "http://example.com/a b", True),
    ("example.com/~x", "http://example.com/%7Ex", False),  # escapes stay as written
    ("example.com/%7Ex", "http://example.com/%7Ex/y", True),
    ("example.com/public", "http://example.com/%70ublic", False),
    ("example.com/a|b", "http://example.com/a|b", False),  # GURL escapes "|"
    ("example.com/a%7Cb", "http://example.com/a|b", True),
    ("example.com/admin", "http://example.com/public/../admin", True),
    ("example.com/admin", "http://example.com/public/%2e%2e/admin", True),
    ("example.com/public", "http://example.com/public/../admin", False),
    ("custom://*", "custom://anything/at/all", True),
    ("custom:*", "customs:x", False),
    ("javascript:*", "javascript:alert(1)", True),
    ("data:text/html", "data:text/html,<script>x</script>", True),
    ("data:image", "data:text/html,x", False),
    ("file:///etc", "file:///etc/passwd", True),
    ("file:///etc", "file:///home/x", False),
])
def test_components_matching(rule, url, expected):
    assert blocked(url, [rule]) is expected


@pytest.mark.parametrize("rule, url, expected", [
    ("*?v*", "http://x.org/?video=100", True),
    ("*?video*", "http://x.org/?video=100", True),
    ("*?video=*", "http://x.org/?video=100", True),
    ("*?video=100*", "http://x.org/?video=100", True),
    ("*?video=100", "http://x.org/?video=1000", False),
    ("*?a=1&b=2", "http://x.org/?b=2&a=1", True),
    ("*?a=1&b=2", "http://x.org/?a=1&c=3&b=2", True),
    ("*?a=1&b=2", "http://x.org/?a=1", False),
    ("youtube.com/watch?v=xyz", "http://youtube.com/watch?v=123&v=xyz", True),
    ("*?q=1", "http://x.org/?Q=1", False),
    ("*?q=1", "http://x.org/", False),
    ("*?*", "http://x.org/?anything", True),
    ("*?*", "http://x.org/", False),
    ("*?k", "http://x.org/?k", True),
    ("*?k", "http://x.org/?k=1", False),
    ("*?k=", "http://x.org/?k=", False),
])
def test_query_blocklist(rule, url, expected):
    assert blocked(url, [rule]) is expected


def test_allowlist_query_needs_every_occurrence():
    filt = URLFilter(["youtube.com"], ["youtube.com/watch?v=V2"])
    assert filt.is_blocked("http://youtube.com/watch?v=V1&v=V2")
    assert not filt.is_blocked("http://youtube.com/watch?v=V2&v=V2")
    assert not filt.is_blocked("http://youtube.com/watch?foo=1&v=V2")
    assert filt.is_blocked("http://youtube.com/watch?v=V2x")


def test_allowlist_query_prefix_and_order():
    filt = URLFilter(["youtube.com"], ["youtube.com/watch?foo=bar*&vid=2*"])
    assert filt.is_blocked("http://youtube.com/watch?vid=2")
    assert not filt.is_blocked("http://youtube.com/watch?vid=234&foo=bar23")
    assert not filt.is_blocked("http://youtube.com/watch?foo=bar&vid=2")


# --- Which filter wins ---------------------------------------------------------

def test_documented_example_block_domain_except_mail_https_and_main_page():
    filt = URLFilter(["example.com"], ["https://mail.example.com", ".example.com"])
    assert not filt.is_blocked("https://mail.example.com/inbox")
    assert filt.is_blocked("http://mail.example.com/inbox")
    assert not filt.is_blocked("http://example.com/")
    assert filt.is_blocked("http://www.example.com/")


def test_exact_host_beats_subdomain_rule_even_with_shorter_path():
    filt = URLFilter(["yyy.com/aaa"], [".yyy.com/a"])
    assert not filt.is_blocked("http://yyy.com/aaa")
    assert filt.is_blocked("http://www.yyy.com/aaa")


def test_longer_host_then_longer_path_then_more_query_tokens():
    assert state("http://plus.google.com/", ["google.com"], ["plus.google.com"]) == "allowed"
    assert state("http://google.com/", ["google.com"], ["plus.google.com"]) == "blocked"
    filt = URLFilter(["s.xxx.com/a", "https://s.xxx.com/a/b/c"],
                     ["s.xxx.com/a/b", "https://s.xxx.com/a/b/c/d"])
    assert filt.is_blocked("https://s.xxx.com/a/x")
    assert not filt.is_blocked("http://s.xxx.com/a/b/c")
    assert filt.is_blocked("https://s.xxx.com/a/b/c/x")
    assert not filt.is_blocked("https://s.xxx.com/a/b/c/d/x")
    filt = URLFilter(["youtube5.com?foo=bar"], ["youtube5.com?foo1=bar1&foo2=bar2&"])
    assert filt.is_blocked("http://youtube5.com/?foo=bar&a=b")
    assert not filt.is_blocked("http://youtube5.com/?a=b&foo=bar&foo1=bar1&foo2=bar2")


def test_allow_wins_a_full_tie_and_reports_the_allow_rule():
    decision = URLFilter(["example.com"], ["example.com"]).decide("http://example.com/")
    assert decision.state == "allowed" and decision.rule.allow


def test_star_is_the_last_resort_even_against_an_allow_star():
    assert state("http://x.org/", ["*"], ["*"]) == "neutral"  # allowed, but not vouched for
    assert not blocked("http://x.org/", ["*"], ["*"])
    assert state("http://x.org/", ["*"], ["http://*"]) == "allowed"
    assert state("http://x.org/", ["*"], ["https://*"]) == "blocked"
    assert state("http://x.org/", ["*", "x.org"], ["*"]) == "blocked"


def test_states_and_which_rule_decided():
    filt = URLFilter(["*"], ["impots.gouv.fr"])
    decision = filt.decide("https://cfspart.impots.gouv.fr/LoginMDP")
    assert decision.state == "allowed" and decision.rule.text == "impots.gouv.fr"
    decision = filt.decide("https://evil.example/")
    assert decision.state == "blocked" and decision.rule.text == "*"
    assert URLFilter(["a.org"]).decide("http://b.org/").state == "neutral"
    assert URLFilter(["a.org"]).is_allowed("http://b.org/")


def test_chrome_internal_pages_pass_the_star_but_not_an_explicit_rule():
    assert not blocked("chrome-extension://xyz/", ["*"])
    assert not blocked("chrome-search://most-visited/title.html", ["*"])
    assert blocked("chrome-extension://xyz/", ["*", "chrome-extension://*"])
    assert not blocked("chrome-extension://abc/", ["*", "chrome-extension://*"],
                       ["chrome-extension://abc"])
    assert not blocked("chrome://settings/", ["*"])  # on by default in current Chrome
    assert blocked("chrome://settings/", ["*", "chrome://*"])


def test_max_filters_restores_chromes_cap():
    rules = [f"example-{i}.com" for i in range(1005)]
    assert URLFilter(rules).is_blocked("http://example-1004.com/")
    capped = URLFilter(rules, max_filters=1000)
    assert capped.is_blocked("http://example-999.com/")
    assert not capped.is_blocked("http://example-1000.com/")


# --- URLs parsed as the browser parses them --------------------------------------

KIOSK = URLFilter(["*"], ["impots.gouv.fr", "127.0.0.1", "[::1]", "xn--bcher-kva.de"])


@pytest.mark.parametrize("url, allowed", [
    ("https://www.impots.gouv.fr/", True),
    ("https://WWW.IMPOTS.GOUV.FR/", True),
    ("https://www.impots.gouv.fr./", True),
    ("HTTPS://www.impots.gouv.fr:443/accueil", True),
    ("https:\\\\www.impots.gouv.fr\\accueil", True),
    ("https:www.impots.gouv.fr/", True),
    ("https://www%2eimpots.gouv.fr/", True),
    ("https://\uff49\uff4d\uff50\uff4f\uff54\uff53.gouv.fr/", True),  # fullwidth letters
    ("  https://www.impots.gouv.fr/\n", True),
    ("https://www.impo\tts.gouv.fr/", True),  # tabs and newlines are dropped
    ("http://impots.gouv.fr@evil.example/", False),
    ("http://user:pw@impots.gouv.fr/", True),
    ("https://impots.gouv.fr.evil.example/", False),
    ("https://evilimpots.gouv.fr/", False),
    ("https://evil.example/impots.gouv.fr", False),
    ("https://evil.example/?u=impots.gouv.fr", False),
    ("https://evil.example#impots.gouv.fr", False),
    ("https://evil.example\\@impots.gouv.fr/", False),
    ("https://www.impots.gouv.fr%2eevil.example/", False),
    ("http://0x7f.0.0.1/", True),
    ("http://0x7f000001/", True),
    ("http://2130706433/", True),
    ("http://017700000001/", True),
    ("http://127.1/", True),
    ("http://127.0.0.2/", False),
    ("http://[0:0:0:0:0:0:0:1]/", True),
    ("http://[::ffff:127.0.0.1]/", False),
    ("https://bücher.de/", True),
    ("https://xn--bcher-kva.de/", True),
    ("https://bucher.de/", False),
    ("http://[::1/", False),
    ("http://exa mple.com/", False),
    ("http://%zz/", False),
    ("", False),
    ("not a url", False),
    ("//impots.gouv.fr/", False),  # relative: nothing to resolve it against
])
def test_urls_land_on_the_host_a_browser_contacts(url, allowed):
    assert KIOSK.is_allowed(url) is allowed
    assert KIOSK.is_blocked(url) is (not allowed)


def test_index_and_linear_scan_agree_on_the_examples():
    filt = URLFilter(["*", "example.com/private", "https://*/admin", ".mail.example.com"],
                     ["example.com", "*?token=ok", "mail.example.com/inbox"])
    for url in ["http://example.com/private/x", "https://a.example.com/admin",
                "http://mail.example.com/inbox", "http://mail.example.com/x?token=ok",
                "http://other.org/", "https://x.mail.example.com/"]:
        index, scan = filt.decide(url), filt.decide_by_scan(url)
        assert (index.state, index.rule) == (scan.state, scan.rule), url
