"""Issue #12, item 8: nothing about residents in logs, /status or the browser's record.

Canaries: a file named after a person, an address whose query carries a sign-in code.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest

from kiosk.browser.audit import AuditLog, read
from kiosk.daemon_client import DaemonError
from test_wipe import make_pdf

PERSON = "Josephine-Marie-Louise-CANARY"
CODE = "oauthCANARY4711"


def test_a_leftover_is_reported_by_kind_and_count_never_by_name(daemon):
    """Before: its full path (with the name) in the report, /status and the journal."""
    client = daemon.client()
    session = client.start_session()
    stuck = Path(session["dirs"]["downloads"]) / f"avis-impot-{PERSON}.pdf"
    stuck.write_text("x")
    if subprocess.run(["chattr", "+i", str(stuck)], capture_output=True).returncode != 0:
        pytest.skip("this filesystem cannot make a file undeletable (chattr +i)")
    try:
        report = client.end_session("user")
        status = client.status()
    finally:
        subprocess.run(["chattr", "-i", str(stuck)], check=True)
    assert report["wiped"] is False and report["leftovers"]["downloads"] >= 1
    assert status["leftovers"] == report["leftovers"]
    assert all(isinstance(n, int) for n in status["leftovers"].values())
    for text in (json.dumps(report), json.dumps(status), daemon.log()):
        assert PERSON not in text
    assert "left" in daemon.log()  # the wipe did log its failure, by kind


def test_the_page_shown_is_kept_without_its_query(daemon):
    """The guide panel needs the page's path; a sign-in code in the query or a name in
    the user-info must not sit in the daemon's memory or come back in /status."""
    client = daemon.client()
    client.start_session()
    answer = client.report_location(
        f"https://{PERSON}:pw@wwwd.caf.fr/wps/myportal/caffr/moncompte?code={CODE}#{CODE}")
    status = client.status()
    assert answer["location"] == "https://wwwd.caf.fr/wps/myportal/caffr/moncompte"
    assert status["session"]["location"] == answer["location"], status["session"]
    for text in (json.dumps(answer), json.dumps(status), daemon.log()):
        assert CODE not in text and PERSON not in text


def test_an_unexpected_error_logs_the_route_not_the_document_name(daemon):
    """Before: "unexpected error on POST /api/v1/documents/downloads/<the name>/print"."""
    client = daemon.client()
    session = client.start_session()
    make_pdf(os.path.join(session["dirs"]["downloads"], f"{PERSON}.pdf"), ["Avis"])
    os.rmdir(session["dirs"]["prints"])  # the copy for the print job cannot be made: a 500
    with pytest.raises(DaemonError) as caught:
        client.print_document("downloads", f"{PERSON}.pdf")
    assert caught.value.status == 500
    log = daemon.log()
    assert "POST /api/v1/documents/<folder>/<name>/print" in log
    assert PERSON not in log


def test_the_browser_record_keeps_scheme_host_and_path_only(tmp_path):
    """Before: full URLs, with ?code= of a sign-in, #fragments and user-info."""
    path = tmp_path / "visit.jsonl"
    audit = AuditLog(path)
    audit.decision(f"https://sso.impots.gouv.fr/callback?code={CODE}&state=x#{CODE}", True,
                   "allow impots.gouv.fr", "mainframe", True)
    audit.event("loaded", ok=True, url=f"https://{PERSON}:{CODE}@www.caf.fr:8443/mon-compte?q=1")
    audit.event("refused_navigation", url=f"data:text/html,{CODE}", rule="scheme")
    audit.event("upload", files=[f"{PERSON}.pdf", "scan.pdf"])
    audit.close()
    text = path.read_text()
    assert CODE not in text and PERSON not in text
    entries = read(path)
    assert entries[0]["url"] == "https://sso.impots.gouv.fr/callback"
    assert entries[1]["url"] == "https://www.caf.fr:8443/mon-compte"
    assert entries[2]["url"] == "data:" and entries[3]["files"] == 2
    audit = AuditLog(path)
    audit.decision(f"https://cdn.example.fr/lib.js?token={CODE}", False, "block *", "script", False)
    audit.close()
    from kiosk.allowlist_suggest import suggest  # what the record is for still works
    assert [p.rule for p in suggest(path)] == ["cdn.example.fr"]
