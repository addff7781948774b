"""Guides through the daemon: the printed guide out of the real cupsd, the browser's location."""

import io
import subprocess

import pytest
from pypdf import PdfReader

from kiosk.daemon_client import DaemonError
from test_daemon_devices import printed


def pdf_text(path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout


@pytest.mark.parametrize("language, title, heading", [
    ("fr", "Imprimer mon attestation de droits", "sous la main"),
    ("gcf", "Enprimé atèstasyon dwa mwen", "Sa pou ou pòté"),
    ("en", "Print my proof of health cover", "Have at hand"),
])
def test_printed_guide_comes_out_of_cups_with_its_title(daemon_factory, cupsd, language, title,
                                                         heading):
    daemon = daemon_factory(**{"guides.public_base_url": '"https://guides.espace-sud.test/"'})
    client = daemon.client()
    client.start_session()
    before = set(cupsd.outputs())
    job = client.print_guide("ameli-attestation-droits", language)["job"]
    assert job["pages"] >= 1
    output = printed(client, cupsd, job, before)
    text = " ".join(pdf_text(output).split())
    # cups-pdf's Ghostscript keeps the letters' shapes but not the text of accented ones
    # (pdftotext reads "Enprim at stasyon"): compare the words written in plain ASCII.
    plain = [word for word in f"{title} {heading}".split() if word.isascii()]
    assert plain and all(word in text for word in plain), text[:400]
    assert "https://guides.espace-sud.test/ameli-attestation-droits.html" in text
    assert client.status()["session"]["pages_printed"] == job["pages"]
    reader = PdfReader(io.BytesIO(output.read_bytes()))
    assert len(reader.pages) == job["pages"]


@pytest.mark.parametrize("language", ["fr", "gcf", "en"])
def test_rendered_guide_has_the_exact_text_in_every_language(language):
    from kiosk.guides import load_library
    from kiosk.i18n import translation
    from kiosk.printing.guide_pdf import render
    guide = load_library().get("ameli-attestation-droits")
    pdf = render(guide, language, translation(language).gettext, base_url="")
    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert guide.title[language] in text
    assert all(" ".join(step.text[language].split()) in text for step in guide.steps)
    assert "« Valider »" in text  # the portal's own words, verbatim, whatever the language


def test_printed_guide_counts_against_the_quota(daemon_factory):
    daemon = daemon_factory(**{"session.print_quota_pages": "1"})
    client = daemon.client()
    client.start_session()
    with pytest.raises(DaemonError) as caught:
        client.print_guide("ameli-attestation-droits", "fr")
    assert (caught.value.status, caught.value.code) == (403, "print_quota_exceeded")


def test_unknown_guide_and_language(daemon):
    client = daemon.client()
    client.start_session()
    with pytest.raises(DaemonError) as caught:
        client.print_guide("no-such-guide", "fr")
    assert (caught.value.status, caught.value.code) == (404, "unknown_guide")
    with pytest.raises(DaemonError) as caught:
        client.print_guide("ameli-attestation-droits", "de")
    assert (caught.value.status, caught.value.code) == (400, "bad_language")


def test_browser_location_is_kept_for_the_session_only(daemon):
    client = daemon.client()
    with pytest.raises(DaemonError) as caught:
        client.report_location("https://www.ameli.fr/")
    assert caught.value.status == 409
    client.start_session()
    client.report_location("https://assure.ameli.fr/PortailAS/appmanager/PortailAS/assure")
    assert client.status()["session"]["location"].startswith("https://assure.ameli.fr/")
    client.end_session()
    client.start_session()
    assert client.status()["session"]["location"] == ""
