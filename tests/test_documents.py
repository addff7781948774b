"""The session's documents through the daemon: listed, looked at, printed; nothing else."""

import io
import os

import pytest
from PIL import Image

from kiosk.daemon_client import DaemonError
from test_daemon_devices import printed
from test_wipe import make_pdf


def test_downloads_and_scans_are_listed_previewed_and_printed(daemon, cupsd, tmp_path):
    client = daemon.client()
    session = client.start_session()
    downloads = session["dirs"]["downloads"]
    make_pdf(os.path.join(downloads, "attestation.pdf"), ["Attestation de droits", "page 2"])
    Image.new("RGB", (600, 400), (200, 30, 30)).save(os.path.join(downloads, "photo.png"))
    with open(os.path.join(downloads, "abime.pdf"), "wb") as handle:
        handle.write(b"%PDF-1.4 cut short")
    scan = client.scan()
    listed = {d["name"]: d for d in client.documents()}
    assert listed["attestation.pdf"]["pages"] == 2 and listed["attestation.pdf"]["type"] == "pdf"
    assert listed["photo.png"]["type"] == "png"
    assert listed["abime.pdf"]["error"] == "document_corrupt" and "abîmé" in \
        listed["abime.pdf"]["message"]
    assert listed[f"{scan['id']}.pdf"]["folder"] == "scans"

    page = Image.open(io.BytesIO(client.document_page("downloads", "attestation.pdf", 2)))
    assert max(page.size) == 1100  # rendered, in memory, at screen size
    photo = Image.open(io.BytesIO(client.document_page("downloads", "photo.png")))
    assert photo.convert("RGB").getpixel((10, 10)) == (200, 30, 30)
    with pytest.raises(DaemonError) as caught:
        client.document_page("downloads", "attestation.pdf", 3)
    assert caught.value.code == "no_page"
    with pytest.raises(DaemonError) as caught:
        client.document_page("downloads", "abime.pdf")
    assert (caught.value.status, caught.value.code) == (422, "document_corrupt")

    before = set(cupsd.outputs())
    job = client.print_document("downloads", "attestation.pdf")["job"]
    assert job["pages"] == 2
    printed(client, cupsd, job, before)
    assert client.status()["session"]["pages_printed"] == 2


@pytest.mark.parametrize("folder, name", [
    ("downloads", "../../../etc/passwd"), ("prints", "x.pdf"), ("downloads", ".hidden"),
    ("downloads", "nothing.pdf"), ("browser", "Cookies")])
def test_nothing_outside_the_two_folders(daemon, folder, name):
    client = daemon.client()
    client.start_session()
    with pytest.raises(DaemonError) as caught:
        client.document_page(folder, name)
    assert caught.value.status == 404


def test_a_symlink_planted_in_downloads_is_not_followed(daemon):
    client = daemon.client()
    session = client.start_session()
    os.symlink("/etc/passwd", os.path.join(session["dirs"]["downloads"], "passwd.png"))
    assert client.documents() == []
    with pytest.raises(DaemonError):
        client.print_document("downloads", "passwd.png")
