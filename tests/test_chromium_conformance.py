"""Our filter against Chromium's own expectations.

``data/chromium_cases.json`` holds the cases of Chromium's unit and browser
tests for the URLBlocklist / URLAllowlist policies (filters, URL, expected
state), transcribed as data. One documented difference: a URL no browser can
parse is blocked here, where Chromium's matcher may call it neutral.
"""

import json
from pathlib import Path

import pytest

from kiosk import weburl
from kiosk.urlfilter import URLFilter, parse_filter

DATA = json.loads((Path(__file__).parent / "data" / "chromium_cases.json").read_text())


def _id(case):
    return f"{case['from']}|{case['url']}"


@pytest.mark.parametrize("case", DATA["cases"], ids=_id)
def test_chromium_case(case):
    decision = URLFilter(case["block"], case["allow"]).decide(case["url"])
    if weburl.parse(case["url"]) is None:
        assert decision.state == "blocked"  # our rule for unparseable URLs
        return
    expect = case["expect"]
    if "url_util_unittest" in case["from"]:
        # url_util's tests ask the matcher "did any filter match?", not for a state.
        assert (decision.rule is not None) == (expect == "allowed")
    elif expect == "not_blocked":
        assert decision.state != "blocked"
    else:
        assert decision.state == expect


@pytest.mark.parametrize("case", DATA["components"], ids=lambda c: c["filter"])
def test_chromium_filter_components(case):
    rule = parse_filter(case["filter"])
    assert (rule.scheme, rule.host, rule.match_subdomains, rule.port, rule.path) == \
        (case["scheme"], case["host"], case["match_subdomains"], case["port"], case["path"])
