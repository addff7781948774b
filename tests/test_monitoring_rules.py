"""The agents' office (issue #16): the alert rules checked and unit-tested by the real
promtool, and the dashboard reading only metrics the daemon writes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kiosk import metrics

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "provisioning" / "monitoring"
RULES = MONITORING / "plus-kiosk-rules.yml"
RULES_TEST = MONITORING / "plus-kiosk-rules.test.yml"
DASHBOARD = MONITORING / "plus-kiosk-dashboard.json"
ALERTS = {"PlusKioskTerminalDown", "PlusKioskDaemonSilent", "PlusKioskWipeLeftSomething",
          "PlusKioskPrinterNeedsAnAgent", "PlusKioskShellFrozen", "PlusKioskHelpAsked"}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: make test installs Debian's prometheus package")
    return path


def run(promtool: str, *args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess:
    return subprocess.run([promtool, *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60, check=False)


def test_rules_are_valid(promtool):
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_rules_fire_as_their_unit_tests_say(promtool):
    result = run(promtool, "test", "rules", str(RULES_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", RULES_TEST.read_text()))
    assert tested == ALERTS  # every alert has a test


def test_a_broken_rule_fails_its_unit_test(promtool, tmp_path):
    """The unit tests can fail: a printer alert that forgot the jam is caught."""
    (tmp_path / RULES.name).write_text(
        RULES.read_text().replace('problem=~"out_of_paper|paper_jam"', 'problem="paper_jam"'))
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    result = run(promtool, "test", "rules", RULES_TEST.name, cwd=tmp_path)
    assert result.returncode != 0
    assert "PlusKioskPrinterNeedsAnAgent" in result.stdout + result.stderr


def written_names() -> set[str]:
    snapshot = metrics.Snapshot(last_wipe_clean=True, scanner_present=True,
                                leftovers={"downloads": 1}, free_bytes={"sessions": 1})
    text = metrics.generate(snapshot).decode()
    return {line.split("{")[0].split()[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    found += re.findall(r"^\s+expr: (.+)$", RULES.read_text(), re.MULTILINE)
    return found


def test_rules_and_dashboard_read_only_what_the_daemon_writes():
    written = written_names()
    used = {name for expr in expressions() for name in re.findall(r"\bplus_kiosk_\w+", expr)}
    assert used and used <= written, used - written


def test_dashboard_has_one_row_per_terminal_with_state_wipe_printer_and_help():
    dashboard = json.loads(DASHBOARD.read_text())
    table = next(panel for panel in dashboard["panels"] if panel["type"] == "table")
    queries = " ".join(target["expr"] for target in table["targets"])
    for name in ("up", "plus_kiosk_session_state", "plus_kiosk_last_wipe_timestamp_seconds",
                 "plus_kiosk_printer_problem", "plus_kiosk_help_asked"):
        assert name in queries
    assert all("by (instance" in target["expr"] for target in table["targets"])
    problems = next(o for o in table["fieldConfig"]["overrides"]
                    if o["matcher"]["options"] == "Imprimante")["properties"][0]["value"][0]
    assert set(problems["options"]) == set(metrics.PRINTER_PROBLEMS)


def test_no_label_could_carry_a_residents_data():
    """Rules and dashboard group and match on fixed labels only."""
    allowed = {"job", "instance", "state", "problem", "kind", "place", "result", "severity"}
    for expr in expressions():
        labels = set(re.findall(r"(\w+)\s*(?:=~|!=|=)\s*\"", expr))
        labels |= {label.strip() for group in re.findall(r"by \(([^)]*)\)", expr)
                   for label in group.split(",") if label.strip()}
        assert labels <= allowed, (expr, labels - allowed)
