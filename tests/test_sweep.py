"""kiosk.sweep on its own: every encoding is found, a PDF's compressed text is found,
names are checked, links are never followed, and a hit never shows the resident's data."""

import base64
import bz2
import gzip
import lzma
import os
import secrets
import shutil
import subprocess
import zlib
from urllib.parse import quote

import pytest

from kiosk import sweep
from kiosk.sweep import Hit, Sweep


@pytest.fixture
def canary():
    return "CANARY" + secrets.token_hex(6)


def run(canary, *places, **options):
    return Sweep(canary, **options).run([str(p) for p in places])


@pytest.mark.parametrize("encode, expected", [
    (lambda c: ("note: " + c).encode(), "utf-8"),
    (lambda c: ("note: " + c.lower()).encode(), "utf-8"),          # case does not hide it
    (lambda c: ("\ufeffnote " + c).encode("utf-16-le"), "utf-16-le"),
    (lambda c: ("note " + c).encode("utf-16-be"), "utf-16-be"),
    (lambda c: ("q=a b/" + c + " x").replace(" ", "+").encode(), "utf-8"),
    (lambda c: quote("a=" + c + " é", safe="").encode(), "utf-8"),
    (lambda c: "".join(f"%{b:02x}" for b in c.encode()).encode(), "url-all"),
])
def test_each_textual_encoding_is_found(tmp_path, canary, encode, expected):
    (tmp_path / "f").write_bytes(b"\x00junk " + encode(canary) + b" junk\xff")
    report = run(canary, tmp_path)
    assert Hit(str(tmp_path / "f"), expected) in report.hits, report.hits
    assert not report.clean


def test_url_encoding_of_a_canary_with_spaces(tmp_path):
    canary = "canary " + secrets.token_hex(4)
    (tmp_path / "plus").write_text("GET /?q=" + canary.replace(" ", "+") + "&x=1")
    (tmp_path / "pct").write_text("GET /" + quote(canary, safe=""))
    report = run(canary, tmp_path)
    assert {h.encoding for h in report.hits} == {"url", "url+"}


@pytest.mark.parametrize("shift", [0, 1, 2])
def test_base64_at_each_alignment(tmp_path, canary, shift):
    text = base64.b64encode(os.urandom(shift) + canary.encode() + os.urandom(5))
    (tmp_path / "mail.eml").write_bytes(b"Content-Transfer-Encoding: base64\n\n" + text)
    report = run(canary, tmp_path)
    assert report.hits == [Hit(str(tmp_path / "mail.eml"), "base64")]


def test_url_safe_base64(tmp_path):
    canary = "CANARY??>>" + secrets.token_hex(4)  # chosen so that it encodes to + and /
    assert b"+" in base64.b64encode(canary.encode()) or b"/" in base64.b64encode(
        canary.encode())
    (tmp_path / "token").write_bytes(base64.urlsafe_b64encode(b"x" + canary.encode()))
    assert {h.encoding for h in run(canary, tmp_path).hits} == {"base64url"}


def test_a_pdf_with_the_canary_only_inside_a_compressed_stream(tmp_path, canary):
    from reportlab.pdfgen import canvas
    pdf = tmp_path / "avis.pdf"
    document = canvas.Canvas(str(pdf), pageCompression=1)
    document.drawString(72, 720, f"Avis {canary}")
    document.showPage()
    document.save()
    data = pdf.read_bytes()
    assert canary.encode() not in data and b"FlateDecode" in data  # a plain search misses it
    assert run(canary, tmp_path).hits == [Hit(str(pdf), "pdf-stream:utf-8")]


def test_a_raw_deflate_stream_and_a_pdf_fragment(tmp_path, canary):
    raw = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = raw.compress(f"BT ({canary}) Tj ET".encode()) + raw.flush()
    # A fragment, as a filter leaves it: no header, no trailer, the stream cut off.
    (tmp_path / "part").write_bytes(b"4 0 obj << /Length 99 >>\nstream\n" + body)
    assert run(canary, tmp_path).hits == [Hit(str(tmp_path / "part"), "pdf-stream:utf-8")]


def test_compressed_logs(tmp_path, canary):
    line = f"Jan 1 session {canary} ended\n".encode()
    (tmp_path / "a.gz").write_bytes(gzip.compress(line))
    (tmp_path / "b.xz").write_bytes(lzma.compress(line))
    (tmp_path / "c.bz2").write_bytes(bz2.compress(line))
    expected = {Hit(str(tmp_path / "a.gz"), "gzip:utf-8"),
                Hit(str(tmp_path / "b.xz"), "xz:utf-8"),
                Hit(str(tmp_path / "c.bz2"), "bzip2:utf-8")}
    if shutil.which("zstd"):
        (tmp_path / "d.zst").write_bytes(subprocess.run(["zstd", "-q", "-c"], input=line,
                                                        capture_output=True).stdout)
        expected.add(Hit(str(tmp_path / "d.zst"), "zstd:utf-8"))
    # (xz and zstd may store a short line as it is: then it is a plain hit as well)
    assert expected <= set(run(canary, tmp_path).hits)


def test_symlinks_are_never_followed(tmp_path, canary):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text(canary)
    place = tmp_path / "place"
    place.mkdir()
    (place / "to-file").symlink_to(outside / "secret")
    (place / "to-dir").symlink_to(outside)
    report = run(canary, place)
    assert report.clean and report.files == 0, report
    # The place itself given as a link is not followed either.
    (tmp_path / "place-link").symlink_to(outside)
    assert run(canary, tmp_path / "place-link").clean
    assert not run(canary, outside).clean  # …while the target itself is searched


def test_fifos_sockets_and_devices_are_skipped_not_read(tmp_path, canary):
    import socket
    os.mkfifo(tmp_path / "fifo")  # reading it would block forever
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock"))
    try:
        report = run(canary, tmp_path, time_budget=20)
    finally:
        server.close()
    assert report.clean and report.special == 2


def test_names_carrying_the_canary_are_found_and_masked(tmp_path, canary):
    folder = tmp_path / f"dossier-{canary}-Marie Dupont"
    folder.mkdir()
    (folder / "avis.txt").write_text(f"{canary} numéro fiscal 1234")
    report = run(canary, tmp_path)
    shown = f"{tmp_path}/{sweep.MASK}"
    assert set(report.hits) == {Hit(str(tmp_path), "name:utf-8"),
                                Hit(f"{shown}/avis.txt", "utf-8")}
    assert not any("Dupont" in h.place or "1234" in h.place for h in report.hits)


def test_size_cap_exclusions_and_nesting(tmp_path, canary):
    (tmp_path / "big").write_bytes(b"x" * 4096 + canary.encode())
    (tmp_path / "paper").mkdir()
    (tmp_path / "paper" / "page.txt").write_text(canary)
    report = run(canary, tmp_path, tmp_path / "paper", max_file_bytes=1024,
                 exclude=[tmp_path / "paper"])
    assert report.clean and report.truncated == 1 and report.files == 1
    report = run(canary, tmp_path, tmp_path / "big")  # nested: searched once
    assert report.files == 2 and len(report.hits) == 2


def test_time_budget_makes_the_sweep_unfinished_not_clean(tmp_path, canary):
    (tmp_path / "f").write_text("nothing")
    report = run(canary, tmp_path, time_budget=-1)
    assert report.hits == [] and report.unfinished and not report.clean


def test_the_journal_is_read_through_journalctl(tmp_path, canary):
    fake = tmp_path / "journalctl"
    fake.write_text(f"#!/bin/sh\nprintf '__CURSOR=s\\nMESSAGE=ok {canary}\\n\\n'\n")
    fake.chmod(0o755)
    report = Sweep(canary, journalctl=str(fake)).run(["journal:plus-kiosk", "journal:system"])
    assert report.hits == [Hit("journal:plus-kiosk", "utf-8"), Hit("journal:system", "utf-8")]


def test_the_kiosks_own_code_is_left_out(tmp_path, canary):
    report = sweep.sweep(canary, [os.path.dirname(sweep.__file__)])
    assert report.files == 0 and report.clean


# -- kioskctl sweep: the agent's check on a terminal -----------------------------------

def kioskctl(*args):
    import sys
    return subprocess.run([sys.executable, "-m", "kiosk.kioskctl", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "LANGUAGE": "fr"})


def test_kioskctl_sweep_exit_statuses_and_messages(tmp_path, canary):
    clean = kioskctl("sweep", "--canary", canary, "--place", str(tmp_path))
    assert clean.returncode == 0 and clean.stdout.startswith("Propre"), clean
    (tmp_path / "avis.pdf").write_bytes(gzip.compress(f"Marie {canary} 1234".encode()))
    found = kioskctl("--lang", "gcf", "sweep", "--canary", canary, "--place", str(tmp_path),
                     "--place", "journal:plus-kiosk")
    assert found.returncode == 1, found
    assert f"JWENN : {tmp_path}/avis.pdf (gzip:utf-8)" in found.stdout
    assert "Marie" not in found.stdout and "1234" not in found.stdout
    for usage in (["sweep", "--place", str(tmp_path)],                      # no canary
                  ["sweep", "--canary", "abc", "--place", str(tmp_path)],  # found by chance
                  ["sweep", "--canary", canary, "--place", str(tmp_path / "nowhere")]):
        refused = kioskctl(*usage)
        assert refused.returncode == 2 and refused.stderr, (usage, refused)
    assert "n'existe pas" in refused.stderr


def test_kioskctl_sweep_wants_root(monkeypatch, capsys, canary, tmp_path):
    from kiosk import kioskctl as ctl
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert ctl.main(["--lang", "en", "sweep", "--canary", canary, "--place",
                     str(tmp_path)]) == 2
    assert "root" in capsys.readouterr().err


def test_terminal_places_cover_the_issue(monkeypatch):
    places = sweep.terminal_places(("root",))
    for place in ("/tmp", "/var/tmp", "/var", "/run", "/dev/shm", "journal:plus-kiosk",
                  "journal:system"):
        assert place in places
    assert sweep._outermost(places).count("/var/tmp") == 0  # searched once, inside /var
