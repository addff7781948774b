"""Fleet health (issue #16): the real daemon writes node_exporter's textfile, read back with
prometheus_client's own parser and checked by the real ``promtool check metrics``."""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from harness import wait_for
from prometheus_client.parser import text_string_to_metric_families

from kiosk import metrics

CANARY = "Josephine-Marie-avis-impot"


def read(path: Path) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of the file as node_exporter would serve it."""
    samples = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(path: Path, name: str, **labels: str) -> float | None:
    return read(path).get((name, tuple(sorted(labels.items()))))


@pytest.fixture
def monitored(daemon_factory, tmp_path):
    folder = tmp_path / "node-exporter"
    folder.mkdir()
    textfile = folder / "plus_kiosk.prom"
    daemon = daemon_factory(**{"monitoring.textfile": f'"{textfile}"'})
    wait_for(textfile.exists, timeout=15, what="the metrics file")
    return daemon, textfile


def test_the_daemon_writes_its_state_and_it_follows_the_session(monitored):
    daemon, textfile = monitored
    boot = read(textfile)
    assert boot[("plus_kiosk_session_state", (("state", "idle"),))] == 1.0
    assert boot[("plus_kiosk_session_state", (("state", "active"),))] == 0.0
    assert boot[("plus_kiosk_last_wipe_clean", ())] == 1.0  # the boot wipe
    boot_wipe = boot[("plus_kiosk_last_wipe_timestamp_seconds", ())]
    assert time.time() - 60 < boot_wipe <= time.time()
    assert boot[("plus_kiosk_help_asked", ())] == 0.0
    assert boot[("plus_kiosk_leftover_items", ())] == 0.0
    assert boot[("plus_kiosk_free_bytes", (("place", "data"),))] > 0
    assert boot[("plus_kiosk_free_bytes", (("place", "sessions"),))] > 0
    assert boot[("plus_kiosk_pages_printed_total", ())] == 0.0
    # exactly one printer problem is current
    problems = {k[1][0][1]: v for k, v in boot.items() if k[0] == "plus_kiosk_printer_problem"}
    assert sum(problems.values()) == 1.0 and "ok" in problems

    client = daemon.client()
    client.start_session()
    wait_for(lambda: value(textfile, "plus_kiosk_session_state", state="active") == 1.0,
             timeout=15, what="the active state in the metrics")
    assert value(textfile, "plus_kiosk_session_state", state="idle") == 0.0

    time.sleep(1.1)  # the wipe's time is in seconds: the next one must be later
    client.end_session("user")
    wait_for(lambda: (value(textfile, "plus_kiosk_last_wipe_timestamp_seconds") or 0)
             > boot_wipe, timeout=5, what="the wipe's time in the metrics (written at once)")
    after = read(textfile)
    assert after[("plus_kiosk_session_state", (("state", "idle"),))] == 1.0
    assert after[("plus_kiosk_wipes_total", (("result", "clean"),))] == 2.0
    assert after[("plus_kiosk_last_wipe_duration_seconds", ())] >= 0.0


def test_a_planted_leftover_is_counted_by_kind_and_never_named(monitored):
    daemon, textfile = monitored
    client = daemon.client()
    session = client.start_session()
    stuck = Path(session["dirs"]["downloads"]) / f"{CANARY}.pdf"
    stuck.write_text(CANARY)
    if subprocess.run(["chattr", "+i", str(stuck)], capture_output=True, check=False).returncode != 0:
        pytest.skip("this filesystem cannot make a file undeletable (chattr +i)")
    try:
        assert client.end_session("user")["wiped"] is False
        wait_for(lambda: (value(textfile, "plus_kiosk_leftovers", kind="downloads") or 0) >= 1,
                 timeout=5, what="the leftover in the metrics")
        samples = read(textfile)
        assert samples[("plus_kiosk_last_wipe_clean", ())] == 0.0
        assert samples[("plus_kiosk_leftover_items", ())] >= 1
        assert samples[("plus_kiosk_wipes_total", (("result", "dirty"),))] == 1.0
        text = textfile.read_text()
        assert CANARY not in text and "Josephine" not in text
        assert session["id"] not in text  # nor the session's random name
    finally:
        subprocess.run(["chattr", "-i", str(stuck)], check=True)
    assert client.end_session("agent")["wiped"] is True
    wait_for(lambda: value(textfile, "plus_kiosk_leftover_items") == 0.0,
             timeout=5, what="the leftovers gone from the metrics")


def test_the_shells_polls_reset_its_silence(monitored):
    daemon, textfile = monitored
    client = daemon.client()
    time.sleep(6)  # nobody polls: the silence grows from the daemon's start
    silent = value(textfile, "plus_kiosk_shell_last_seen_seconds")
    assert silent is not None and silent >= 4
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:  # the shell's poll, every second
        client.status()
        latest = value(textfile, "plus_kiosk_shell_last_seen_seconds")
        if latest is not None and latest < 2:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("the shell's polls did not reset its silence")


def test_promtool_accepts_the_file(monitored):
    daemon, textfile = monitored
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing: make test installs Debian's prometheus package")
    daemon.client().start_session()
    wait_for(lambda: value(textfile, "plus_kiosk_session_state", state="active") == 1.0,
             timeout=15, what="a written session")
    result = subprocess.run([promtool, "check", "metrics"], input=textfile.read_bytes(),
                            capture_output=True, timeout=30, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_labels_come_from_fixed_lists_only():
    snapshot = metrics.Snapshot(state="active", leftovers={"downloads": 2, CANARY: 1},
                                printer_problem="something-new", printer_state="idle",
                                free_bytes={"data": 10})
    text = metrics.generate(snapshot).decode()
    assert CANARY not in text
    assert 'plus_kiosk_leftovers{kind="other"} 1.0' in text
    assert 'plus_kiosk_leftovers{kind="downloads"} 2.0' in text
    assert 'plus_kiosk_printer_problem{problem="other"} 1.0' in text


def test_an_unwritable_place_is_logged_once_and_not_fatal(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="kiosk.metrics")
    writer = metrics.TextfileWriter(str(tmp_path / "absent" / "plus_kiosk.prom"))
    assert writer.write(metrics.Snapshot()) is False
    assert writer.write(metrics.Snapshot()) is False
    assert len([r for r in caplog.records if "metrics not written" in r.getMessage()]) == 1
    (tmp_path / "absent").mkdir()
    assert writer.write(metrics.Snapshot()) is True
    assert metrics.TextfileWriter("").write(metrics.Snapshot()) is False
