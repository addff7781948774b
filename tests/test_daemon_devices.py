"""Printing through the private cupsd, scanning through SANE's test backend, share links."""

import io
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from harness import free_port, wait_for
from kiosk.daemon_client import DaemonError
from test_wipe import make_pdf


def pages_of(data: bytes) -> int:
    return len(PdfReader(io.BytesIO(data)).pages)


def printed(client, cupsd, job, before) -> Path:
    """The PDF cups-pdf wrote for ``job``, once CUPS says the job is complete."""
    wait_for(lambda: client.print_job(job["id"])["state"] == "completed", timeout=60,
             what="job completion")
    produced = wait_for(lambda: set(cupsd.outputs()) - before, what="cups-pdf output")
    assert len(produced) == 1
    return produced.pop()


# -- printing ----------------------------------------------------------------------

def test_printed_pdf_comes_out_with_its_pages(daemon, cupsd, tmp_path):
    client = daemon.client()
    client.start_session()
    before = set(cupsd.outputs())
    source = tmp_path / "three.pdf"
    make_pdf(source, ["avis d'imposition 1/3", "2/3", "3/3"])
    job = client.print_file(source)
    assert job["pages"] == 3
    output = printed(client, cupsd, job, before)
    assert pages_of(output.read_bytes()) == 3
    assert b"avis d'imposition" in subprocess.run(["pdftotext", str(output), "-"],
                                                  capture_output=True).stdout
    assert client.status()["session"]["pages_printed"] == 3


def test_printed_image_is_one_page_and_copies_count_against_the_quota(daemon, cupsd, tmp_path):
    client = daemon.client()
    client.start_session()
    picture = tmp_path / "justificatif.png"
    Image.new("RGB", (800, 600), "white").save(picture)
    before = set(cupsd.outputs())
    job = client.print_file(picture, copies=2)
    assert job["pages"] == 2
    assert pages_of(printed(client, cupsd, job, before).read_bytes()) in (1, 2)
    assert client.status()["session"]["pages_printed"] == 2


def test_quota_is_enforced_before_anything_reaches_cups(daemon_factory, cupsd, tmp_path):
    daemon = daemon_factory(**{"session.print_quota_pages": "4"})
    client = daemon.client()
    client.start_session()
    source = tmp_path / "three.pdf"
    make_pdf(source, ["1", "2", "3"])
    jobs_before = len(cupsd.jobs("all"))
    client.print_file(source)
    with pytest.raises(DaemonError) as caught:
        client.print_file(source)
    error = caught.value
    assert (error.status, error.code) == (403, "print_quota_exceeded")
    assert "3" in error.message and "1" in error.message and "4" in error.message
    assert len(cupsd.jobs("all")) == jobs_before + 1
    assert client.status()["session"]["pages_printed"] == 3


@pytest.mark.parametrize("content, code, words", [
    (b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\ngarbage", "document_corrupt", "abîmé"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01", "document_corrupt", "abîmé"),
    (b"Bonjour, ceci est un texte.\n", "document_unsupported", "PDF"),
    (b"", "document_empty", "vide"),
])
def test_bad_documents_get_a_message_a_resident_understands(daemon, cupsd, tmp_path,
                                                             content, code, words):
    client = daemon.client()
    session = client.start_session()
    bad = tmp_path / "document"
    bad.write_bytes(content)
    jobs_before = len(cupsd.jobs("all"))
    with pytest.raises(DaemonError) as caught:
        client.print_file(bad)
    assert (caught.value.status, caught.value.code) == (422, code)
    assert words in caught.value.message
    assert len(cupsd.jobs("all")) == jobs_before
    assert not any(Path(session["dirs"]["prints"]).iterdir())  # nothing kept


def test_printer_problems_are_explained_in_plain_french(daemon, cupsd):
    client = daemon.client()
    cupsd.pause()
    try:
        printer = wait_for(lambda: (lambda p: p if p["problem"] == "paused" else None)(
            client.status()["printer"]), timeout=20, what="paused printer in status")
        assert printer["message"] == "L'imprimante est en pause. Demandez de l'aide à un agent."
    finally:
        cupsd.resume()
    wait_for(lambda: client.status()["printer"]["problem"] is None, timeout=20,
             what="printer ready again")
    english = daemon.client(language="en").status()["printer"]["message"]
    assert english == "The printer is ready."


def test_an_unreachable_printer_is_reported_offline(daemon_factory, cupsd, tmp_path):
    cupsd.add_unreachable_queue("offline", free_port())
    daemon = daemon_factory(**{"printing.queue": '"offline"'})
    client = daemon.client()
    client.start_session()
    source = tmp_path / "one.pdf"
    make_pdf(source, ["1"])
    client.print_file(source)
    printer = wait_for(lambda: (lambda p: p if p["problem"] == "offline" else None)(
        client.status()["printer"]), timeout=40, what="offline printer in status")
    assert printer["message"] == "L'imprimante ne répond pas. Vérifiez qu'elle est allumée."
    assert client.end_session()["wiped"]  # its stuck job is purged like any other


def test_print_requires_a_session_and_valid_copies(daemon, tmp_path):
    client = daemon.client()
    source = tmp_path / "one.pdf"
    make_pdf(source, ["1"])
    with pytest.raises(DaemonError) as caught:
        client.print_file(source)
    assert caught.value.code == "no_session"
    client.start_session()
    for copies in (0, 11):
        with pytest.raises(DaemonError) as caught:
            client.print_file(source, copies=copies)
        assert (caught.value.status, caught.value.code) == (400, "bad_copies")
    with pytest.raises(DaemonError) as caught:
        client.print_job(999999)
    assert caught.value.status == 404


# -- scanning -------------------------------------------------------------------------

def test_scans_are_real_pdfs_and_can_have_many_pages(daemon):
    client = daemon.client()
    client.start_session()
    single = client.scan(resolution=150, mode="color")
    assert single["pages"] == 1
    assert pages_of(client.scan_pdf(single["id"])) == 1
    fed = client.scan(resolution=300, mode="gray", source="adf")
    assert fed["pages"] == 10  # SANE's test feeder holds ten sheets
    grown = client.scan(append_to=fed["id"])
    assert (grown["id"], grown["pages"]) == (fed["id"], 11)
    assert pages_of(client.scan_pdf(fed["id"])) == 11
    with pytest.raises(DaemonError) as caught:
        client.scan(append_to="0000unknown")
    assert caught.value.status == 404
    with pytest.raises(DaemonError) as caught:
        client.request("POST", "/scan", json_body={"resolution": 600})
    assert caught.value.code == "bad_scan_request"


# -- share links -----------------------------------------------------------------------

def test_share_link_works_once_and_the_listener_serves_nothing_else(daemon):
    client = daemon.client()
    client.start_session()
    scan = client.scan()
    shared = client.share(scan["id"])
    qr = Image.open(io.BytesIO(__import__("base64").b64decode(shared["qr_png"])))
    assert qr.format == "PNG" and qr.size[0] > 100
    assert len(shared["url"].rsplit("/", 1)[1]) >= 40  # unguessable token
    with urllib.request.urlopen(shared["url"], timeout=10) as response:
        assert response.headers["Content-Type"] == "application/pdf"
        reader = PdfReader(io.BytesIO(response.read()))  # encrypted: tests/test_sharing.py
        assert reader.decrypt(shared["code"]) and len(reader.pages) == 1
    base = shared["url"].split("/s/")[0]
    for path in ("/s/" + shared["url"].rsplit("/", 1)[1], "/", "/api/v1/status",
                 "/s/../api/v1/status", "/s/"):
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(base + path, timeout=10)
        assert caught.value.code == 404
    request = urllib.request.Request(base + "/s/x", method="POST", data=b"")
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=10)
    assert shared["url"].rsplit("/", 1)[1] not in daemon.log()  # tokens stay out of logs


def test_share_links_expire_and_die_with_the_wipe(tmp_path):
    from kiosk.sharing import ShareLinks

    now = [1000.0]
    links = ShareLinks(lifetime_seconds=600, clock=lambda: now[0])
    document = tmp_path / "scan.pdf"
    document.write_bytes(b"%PDF-1.4")
    late = links.create(document)
    now[0] += 600
    assert links.take(late.token) is None  # ten minutes later: dead
    early = links.create(document)
    now[0] += 599
    assert links.take(early.token).path == document
    assert links.take(early.token) is None  # only once
    pending = links.create(document)
    assert links.leftovers()
    links.wipe()
    assert links.take(pending.token) is None and links.leftovers() == []


def test_parallel_prints_cannot_overrun_the_quota(daemon_factory, cupsd, tmp_path):
    from concurrent.futures import ThreadPoolExecutor
    daemon = daemon_factory(**{"session.print_quota_pages": "2"})
    daemon.client().start_session()
    source = tmp_path / "one.pdf"
    make_pdf(source, ["1"])
    cupsd.pause()
    try:
        def attempt(_):
            try:
                return daemon.client().print_file(source)["pages"]
            except DaemonError as error:
                return error.code
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(attempt, range(8)))
        assert results.count(1) == 2 and results.count("print_quota_exceeded") == 6, results
        assert daemon.client().status()["session"]["pages_printed"] == 2
    finally:
        daemon.client().end_session()
        cupsd.resume()
