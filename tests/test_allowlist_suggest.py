"""kioskctl allowlist-suggest: from a recorded visit to proposed rules."""

import json
import subprocess
import sys
from pathlib import Path

from kiosk.allowlist_suggest import suggest
from kiosk.urlfilter import parse_filter


def write(path, entries):
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))


RECORDING = [
    {"event": "start", "url": "https://www.impots.gouv.fr/"},
    {"url": "https://www.impots.gouv.fr/", "allowed": True, "rule": "allow impots.gouv.fr",
     "resource_type": "mainframe", "main_frame": True},
    {"url": "https://fonts.example-cdn.net/a.woff2", "allowed": False, "rule": "block *",
     "resource_type": "fontresource", "main_frame": False},
    {"url": "https://fonts.example-cdn.net/b.woff2", "allowed": False, "rule": "block *",
     "resource_type": "fontresource", "main_frame": False},
    {"url": "https://captcha.example.org/api.js", "allowed": False, "rule": "block *",
     "resource_type": "script", "main_frame": False},
    {"event": "refused_navigation", "url": "https://paiement.example.fr/carte", "rule": "block *"},
    {"url": "file:///etc/passwd", "allowed": False, "rule": "scheme:file",
     "resource_type": "mainframe", "main_frame": True},
]


def test_proposals_are_refused_hosts_busiest_first(tmp_path):
    record = tmp_path / "visit.jsonl"
    write(record, RECORDING)
    proposals = suggest(record)
    assert [p.rule for p in proposals] == ["fonts.example-cdn.net", "captcha.example.org",
                                           "paiement.example.fr"]
    assert proposals[0].requests == 2 and proposals[0].resource_types == ("fontresource",)
    assert proposals[2].page and not proposals[0].page
    for proposal in proposals:  # every proposal is a valid Chrome-format rule
        parse_filter(proposal.rule, allow=True)


def test_kioskctl_prints_a_toml_snippet(tmp_path):
    record = tmp_path / "visit.jsonl"
    write(record, RECORDING)
    kioskctl = Path(sys.executable).parent / "kioskctl"
    result = subprocess.run([str(kioskctl), "--lang", "en", "allowlist-suggest", str(record)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert '"fonts.example-cdn.net",  # 2 request(s)' in result.stdout
    assert "etc/passwd" not in result.stdout
    empty = tmp_path / "clean.jsonl"
    write(empty, RECORDING[:2])
    result = subprocess.run([str(kioskctl), "--lang", "en", "allowlist-suggest", str(empty)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Nothing was refused" in result.stdout
