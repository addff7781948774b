"""kioskctl stats: summary, CSV, the funders' PDF (read back with pdftotext), the fleet."""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from harness import require

from kiosk import config as site_config
from kiosk import kioskctl
from kiosk.records import Recorder
from kiosk.usage import Usage

BUS_STOPS = ('\n[[bus_stop]]\nweekday = "monday"\ncommune = "Le Marin"\nplace = "Mairie"\n'
             '\n[[bus_stop]]\nweekday = "tuesday"\ncommune = "Le Diamant"\n')


def site_file(root: Path, terminal: str, kind: str, commune: str, extra: str = "") -> Path:
    text = site_config.bundled_config().read_text()
    for old, new in {'kind = "bus"': f'kind = "{kind}"',
                     'commune = "Sainte-Luce"': f'commune = "{commune}"',
                     'path = "/var/lib/plus-kiosk-records/records.sqlite"':
                         f'path = "{root}/{terminal}.sqlite"',
                     'terminal_id = ""': f'terminal_id = "{terminal}"'}.items():
        assert old in text
        text = text.replace(old, new, 1)
    path = root / f"{terminal}.toml"
    path.write_text(text + extra)
    return path


def visit(recorder: Recorder, when: str, minutes: int, portals: list[str], pages: int = 0,
          scans: int = 0, shares: int = 0, answer: str | None = None) -> str:
    started = datetime.fromisoformat(when).timestamp()
    usage = Usage(portals=portals, scans=scans, shares=shares)
    record = recorder.session_ended(started, pages, usage, "user",
                                    ended_at=started + minutes * 60)
    assert record
    if answer:
        assert recorder.feedback(answer)
    return record


@pytest.fixture
def fleet(tmp_path):
    """Two terminals' databases: the bus (two stops) and a town hall."""
    root = tmp_path / "terminals"
    root.mkdir()
    bus = Recorder(site_config.load(site_file(root, "bus-1", "bus", "Sainte-Luce", BUS_STOPS)))
    visit(bus, "2026-03-02T09:10", 20, ["impots"], pages=3, scans=1, shares=1, answer="yes")
    visit(bus, "2026-03-02T10:05", 45, ["caf", "ameli"], scans=2, answer="partly")
    visit(bus, "2026-03-03T09:30", 90, ["ants"], pages=5)
    hall = Recorder(site_config.load(site_file(root, "mairie-1", "municipal", "Rivière-Pilote")))
    visit(hall, "2026-03-10T14:00", 150, ["edf", "sme"], answer="no")
    visit(hall, "2026-04-01T10:00", 10, ["impots"])
    return root


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = kioskctl.main(["--lang", "fr", *argv])
    out, err = capsys.readouterr()
    return status, out, err


def line_of(text: str, label: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith(label))


def test_summary_and_csv_of_a_month(fleet, tmp_path, capsys):
    table = tmp_path / "march.csv"
    status, out, err = run(capsys, "stats", "--from", str(fleet / "bus-1.sqlite"),
                           str(fleet / "mairie-1.sqlite"), "--since", "2026-03-01",
                           "--until", "2026-03-31", "--csv", str(table))
    assert status == 0, err
    assert "Sessions : 4 sur 2 borne(s), du 2026-03-02 au 2026-03-10" in out
    assert line_of(out, "Le Marin").split() == ["Le", "Marin", "2"]
    assert line_of(out, "Le Diamant").split()[-1] == "1"
    assert line_of(out, "Rivière-Pilote").split()[-1] == "1"
    assert line_of(out, "Énergie et eau").split()[-1] == "1"  # edf + sme: one session
    assert line_of(out, "Papiers d'identité").split()[-1] == "1"
    for band in ("< 30 min", "30–60 min", "60–120 min", "> 2 h"):
        assert line_of(out, band).split()[-1] == "1"
    assert line_of(out, "oui").split()[-1] == "1" and line_of(out, "sans réponse").split()[-1] == "1"
    assert "Pages imprimées : 8 ; numérisations : 3, envoyées sur un téléphone : 1" in out
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 6  # caf+ameli and edf+sme count on each portal's row
    impots = next(r for r in rows if r["portal"] == "impots")
    assert (impots["day"], impots["commune"], impots["place"], impots["category"],
            impots["sessions"], impots["minutes"], impots["pages_printed"],
            impots["shares"]) == ("2026-03-02", "Le Marin", "Mairie", "money", "1", "20", "3", "1")
    assert {r["commune"] for r in rows} == {"Le Marin", "Le Diamant", "Rivière-Pilote"}
    assert not any("2026-04" in r["day"] for r in rows)


def test_the_fleet_folder_counts_each_record_once(fleet, tmp_path, capsys):
    collected = tmp_path / "collected"
    (collected / "2026-03").mkdir(parents=True)
    (collected / "2026-04").mkdir()
    for terminal in ("bus-1", "mairie-1"):  # two collections of both terminals
        status, _out, err = run(capsys, "stats", "backup", "--config",
                                str(fleet / f"{terminal}.toml"),
                                str(collected / "2026-03" / f"{terminal}.sqlite"))
        assert status == 0, err
        shutil.copy(collected / "2026-03" / f"{terminal}.sqlite", collected / "2026-04")
    status, out, _err = run(capsys, "stats", "--from", str(collected))
    assert status == 0
    assert "Sessions : 5 sur 2 borne(s), du 2026-03-02 au 2026-04-01" in out
    # A damaged copy among them is named, and the others still count.
    (collected / "broken.sqlite").write_bytes(b"not a database at all" * 100)
    status, out, err = run(capsys, "stats", "--from", str(collected))
    assert status == 1 and "broken.sqlite" in err and "Non compté" in err
    assert "Sessions : 5 sur 2 borne(s)" in out


def test_the_funders_pdf_says_the_months_numbers(fleet, tmp_path, capsys):
    require("pdftotext")
    pdf = tmp_path / "rapport-2026-03.pdf"
    status, _out, err = run(capsys, "stats", "report", "--month", "2026-03", "--output",
                            str(pdf), "--from", str(fleet))
    assert status == 0, err
    assert "4 session(s)" in err
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert "Fréquentation de la borne — mars 2026" in text
    assert line_of(text, "Sessions ").split()[-1] == "4"
    assert line_of(text, "Pages imprimées").split()[-1] == "8"
    assert line_of(text, "Documents numérisés").split()[-1] == "3"
    assert line_of(text, "Temps passé (minutes)").split()[-1] == str(20 + 45 + 90 + 150)
    assert line_of(text, "Le Marin").split()[-1] == "2"
    assert "Énergie et eau" in text and "Papiers d'identité et véhicule" in text
    assert line_of(text, "Impôts").split()[-3:] == ["1", "25", "%"]
    assert line_of(text, "En partie").split()[-1] == "1"
    assert re.search(r">\s*2\s*h\s+1\n", text)  # pdftotext may close up "> 2 h"
    assert line_of(text, "semaine du 02/03").split()[-1] == "3"
    assert line_of(text, "semaine du 09/03").split()[-1] == "1"


def test_bad_months_and_days_are_usage_errors(fleet, tmp_path, capsys):
    status, _out, err = run(capsys, "stats", "report", "--month", "2026-13", "--output",
                            str(tmp_path / "x.pdf"), "--from", str(fleet))
    assert status == 2 and "AAAA-MM" in err
    status, _out, err = run(capsys, "stats", "--since", "mars", "--from", str(fleet))
    assert status == 2
