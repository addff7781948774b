"""The anonymous session records (issue #16): real SQLite files, the real daemon."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

from harness import wait_for
from kiosk import config as site_config
from kiosk.daemon_client import DaemonError
from kiosk.records import Recorder, place_of_day, terminal_id
from kiosk.usage import Usage
from test_wipe import make_pdf

NIR = "1850797123456"          # a social-security number, in a URL the browser reports
EMAIL = "josephine.marie@example.org"
PERSON = "Josephine-Marie-Celestin"


def rows(path: Path) -> list[dict]:
    connection = sqlite3.connect(path)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute("SELECT * FROM sessions")]
    finally:
        connection.close()


def records_file(daemon) -> Path:
    return daemon.root / "records.sqlite"


def refused(call) -> DaemonError:
    with pytest.raises(DaemonError) as caught:
        call()
    return caught.value


def usage(client, kind, value):
    return client.request("POST", "/session/usage", json_body={"kind": kind, "value": value})


def feedback(client, answer):
    return client.request("POST", "/session/feedback", json_body={"answer": answer})


def test_a_session_leaves_one_record_with_its_counters(daemon, tmp_path):
    client = daemon.client()
    client.start_session()
    for kind, value in [("portal_opened", "impots"), ("portal_opened", "caf"),
                        ("portal_opened", "impots"), ("guide_started", "impots-declarer-revenus"),
                        ("guide_finished", "impots-declarer-revenus"), ("language", "gcf"),
                        ("text_size", "1.5"), ("contrast", "on")]:
        assert usage(client, kind, value) == {"kind": kind, "value": value}
    source = tmp_path / "two.pdf"
    make_pdf(source, ["page 1", "page 2"])
    client.print_file(source)
    first = client.scan()
    client.scan(append_to=first["id"])  # a page added to the same document
    client.scan()
    client.share(first["id"])
    assert not rows(records_file(daemon))  # written at the end, not before
    report = client.end_session("user")
    assert report["wiped"]
    [record] = rows(records_file(daemon))
    assert json.loads(record["portals"]) == ["impots", "caf"]
    assert json.loads(record["categories"]) == ["money", "family"]
    assert json.loads(record["guides_started"]) == ["impots-declarer-revenus"]
    assert json.loads(record["guides_finished"]) == ["impots-declarer-revenus"]
    assert (record["language"], record["text_size"], record["contrast"]) == ("gcf", "1.5", "on")
    assert (record["pages_printed"], record["scans"], record["shares"]) == (2, 2, 1)
    assert record["ended"] == "terminer" and record["satisfaction"] is None
    assert record["site"] == "PLUS — Pour les Usagers du Sud"
    assert record["commune"] == "Sainte-Luce"  # no bus stop in the bundled schedule
    assert record["started_hour"].endswith(":00") and 0 <= record["duration_s"] < 600
    assert record["record_id"].startswith(record["terminal"] + "-")
    # The end screen's question: once, for this session.
    assert feedback(client, "partly") == {"answer": "partly"}
    assert refused(lambda: feedback(client, "yes")).status == 409
    assert rows(records_file(daemon))[0]["satisfaction"] == "partly"
    # The next session starts with nothing counted, and ends by the idle clock's reason.
    client.start_session()
    client.end_session("idle")
    second = [r for r in rows(records_file(daemon)) if r["record_id"] != record["record_id"]]
    assert len(second) == 1 and second[0]["ended"] == "idle"
    assert (second[0]["pages_printed"], second[0]["scans"], json.loads(second[0]["portals"]),
            second[0]["language"]) == (0, 0, [], "fr")


def test_feedback_is_refused_late_after_a_new_start_or_without_a_session(daemon_factory):
    daemon = daemon_factory(**{"records.feedback_seconds": "1"})
    client = daemon.client()
    assert refused(lambda: feedback(client, "yes")).code == "no_feedback_expected"
    client.start_session()
    client.end_session("user")
    time.sleep(1.2)
    error = refused(lambda: feedback(client, "yes"))
    assert (error.status, error.code) == (409, "no_feedback_expected")
    assert "<" not in error.message and error.message
    client.start_session()
    client.end_session("user")
    client.start_session()  # the next resident: the previous one's question is closed
    assert refused(lambda: feedback(client, "no")).status == 409
    assert refused(lambda: feedback(client, "maybe")).status == 400
    assert [r["satisfaction"] for r in rows(records_file(daemon))] == [None, None]


@pytest.mark.parametrize("body", [
    {"kind": "portal_opened", "value": "evil-portal"},
    {"kind": "portal_opened", "value": "https://www.impots.gouv.fr/"},
    {"kind": "guide_started", "value": "no-such-guide"},
    {"kind": "language", "value": "de"},
    {"kind": "text_size", "value": "3"},
    {"kind": "contrast", "value": True},
    {"kind": "search", "value": "impots"},
    {"kind": "language", "value": "fr", "extra": "x"},
    {"kind": "language"},
])
def test_usage_outside_the_vocabularies_is_refused(daemon, body):
    client = daemon.client()
    client.start_session()
    error = refused(lambda: client.request("POST", "/session/usage", json_body=body))
    assert (error.status, error.code) == (400, "bad_usage")


def test_usage_needs_a_session(daemon):
    error = refused(lambda: usage(daemon.client(), "language", "fr"))
    assert (error.status, error.code) == (409, "no_session")


def test_no_canary_reaches_the_database(daemon):
    """A social-security number in a URL, an e-mail typed as a search, a file named after
    a person: none of them is anywhere in the database file's bytes."""
    client = daemon.client()
    session = client.start_session()
    client.report_location(f"https://www.ameli.fr/assure/compte/{NIR}?nir={NIR}&q={EMAIL}")
    usage(client, "portal_opened", "ameli")
    for kind in ("portal_opened", "guide_started", "language"):  # the search, sent as usage
        assert refused(lambda: usage(client, kind, EMAIL)).status == 400
    (Path(session["dirs"]["downloads"]) / f"attestation-{PERSON}.pdf").write_bytes(
        b"%PDF-1.4 " + PERSON.encode())
    client.end_session("user")
    feedback(client, "yes")
    data = b"".join(p.read_bytes() for p in daemon.root.glob("records.sqlite*"))
    assert b"ameli" in data  # the record is there …
    for canary in (NIR, EMAIL, "josephine", PERSON, "Celestin", "ameli.fr", "https", ".pdf",
                   "attestation"):
        for encoded in {canary.encode(), canary.lower().encode(), canary.encode("utf-16-le")}:
            assert encoded not in data.lower(), canary  # … and nothing of the resident


def test_a_damaged_database_is_moved_aside_and_sessions_go_on(daemon_factory):
    daemon = daemon_factory()
    daemon.stop()
    records_file(daemon).write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
    daemon.start()
    client = daemon.client()
    client.start_session()
    assert client.end_session("user")["wiped"]
    assert len(rows(records_file(daemon))) == 1
    [aside] = daemon.root.glob("records.sqlite.damaged-*")
    assert aside.read_bytes().startswith(b"SQLite format 3\x00\xff")
    log = wait_for(lambda: "inutilisable" in daemon.log() and daemon.log(), what="log")
    assert "records.sqlite" in log and "mise de côté" in log


def test_an_unwritable_database_never_blocks_the_wipe(daemon_factory):
    daemon = daemon_factory(**{"records.path": '"/proc/plus-kiosk-records/records.sqlite"'})
    client = daemon.client()
    client.start_session()
    usage(client, "language", "en")
    assert client.end_session("user")["wiped"]
    assert refused(lambda: feedback(client, "yes")).status == 409
    client.start_session()  # the terminal is open for the next resident


# -- the recorder alone --------------------------------------------------------------

def site(text: str = "", **records: str) -> site_config.SiteConfig:
    bundled = site_config.bundled_config().read_text()
    for key, value in records.items():  # the bundled file's [records] values
        bundled = "\n".join(f"{key} = {value}" if line.startswith(f"{key} = ") else line
                             for line in bundled.splitlines())
    return site_config.load_text(bundled + text)


def test_retention_deletes_old_records_only(tmp_path):
    config = site(path=f'"{tmp_path}/r.sqlite"', retention_days="30")
    recorder = Recorder(config)
    now = time.time()
    old = recorder.session_ended(now - 40 * 86400, 0, Usage(), "user", ended_at=now - 40 * 86400)
    recent = recorder.session_ended(now - 20 * 86400, 3, Usage(), "idle",
                                    ended_at=now - 20 * 86400 + 60)
    assert old and recent
    assert recorder.apply_retention(now) == 1
    assert [r["record_id"] for r in rows(tmp_path / "r.sqlite")] == [recent]


def test_where_the_bus_stood_that_day(tmp_path):
    config = site('\n[[bus_stop]]\nweekday = "monday"\ncommune = "Le Marin"\nplace = "Mairie"\n'
                  'start = "08:00"\nend = "11:00"\n'
                  '\n[[bus_stop]]\nweekday = "monday"\ncommune = "Le Diamant"\n'
                  'start = "11:00"\nend = "13:00"\n')
    assert place_of_day(config, datetime(2026, 3, 2, 9, 15)) == ("Le Marin", "Mairie")
    assert place_of_day(config, datetime(2026, 3, 2, 12, 0)) == ("Le Diamant", "")
    assert place_of_day(config, datetime(2026, 3, 2, 15, 0)) == ("Le Marin", "Mairie")
    assert place_of_day(config, datetime(2026, 3, 3, 9, 0)) == ("Sainte-Luce", "")


def test_terminal_id_is_a_hash_never_the_machine_id(tmp_path):
    machine = tmp_path / "machine-id"
    machine.write_text("0123456789abcdef0123456789abcdef\n")
    derived = terminal_id("", machine)
    assert derived == terminal_id("", machine) and "0123456789" not in derived
    assert terminal_id("bus-1", machine) == "bus-1"


def test_the_daemon_applies_the_retention_when_it_starts(daemon_factory):
    daemon = daemon_factory(**{"records.retention_days": "30"})
    client = daemon.client()
    client.start_session()
    client.end_session("user")
    daemon.stop()
    connection = sqlite3.connect(records_file(daemon))
    with connection:
        connection.execute("UPDATE sessions SET started_hour = '2020-01-06T09:00'")
    connection.close()
    assert len(rows(records_file(daemon))) == 1
    daemon.start()
    assert rows(records_file(daemon)) == []
