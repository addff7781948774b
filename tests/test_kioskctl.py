"""kioskctl as technicians and scripts use it: output and exit statuses."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk import kioskctl

KIOSKCTL = Path(sys.executable).parent / "kioskctl"
SITE = Path(__file__).resolve().parent.parent / "kiosk" / "sites" / "espace-sud.toml"


def run(*args, lang="en", env=None):
    """The installed console script, as a shell would run it."""
    environment = {**os.environ, "LANGUAGE": lang, **(env or {})}
    if env is None:
        environment.pop("KIOSK_CONFIG", None)
    return subprocess.run([str(KIOSKCTL), *args], capture_output=True, text=True,
                          env=environment, timeout=60)


def test_check_url_allowed_exits_0_and_names_rule_and_portal():
    result = run("check-url", "https://cfspart.impots.gouv.fr/LoginMDP", "--config", str(SITE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ALLOWED  https://cfspart.impots.gouv.fr/LoginMDP")
    assert "allow impots.gouv.fr (portal impots)" in result.stdout


def test_service_public_moved_to_gouv_fr_is_allowed_and_its_tile_starts_there():
    # service-public.fr became service-public.gouv.fr on 1 October 2025 (issue #14: 1).
    result = run("check-url", "https://www.service-public.gouv.fr/", "--config", str(SITE))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "allow service-public.gouv.fr (portal service-public)" in result.stdout
    # the old host stays reachable, so old links can follow its redirect
    result = run("check-url", "https://www.service-public.fr/particuliers/vosdroits/R11193",
                 "--config", str(SITE))
    assert result.returncode == 0, result.stdout + result.stderr
    result = run("check-config", str(SITE))
    assert "https://www.service-public.gouv.fr/" in result.stdout


@pytest.mark.parametrize("url, rule", [
    ("https://impots.gouv.fr@evil.example/", "block *"),
    ("http://www.impots.gouv.fr/", "scheme:http"),
    ("file:///etc/passwd", "scheme:file"),
    ("javascript:alert(1)", "scheme:javascript"),
    ("https://0x7f.0.0.1/", "block *"),
    ("not a url at all", "unparseable"),
])
def test_check_url_blocked_exits_1(url, rule):
    result = run("check-url", url, "--config", str(SITE))
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("BLOCKED") and f"rule: {rule}" in result.stdout


def test_check_url_json_and_subresource():
    result = run("check-url", "data:image/png;base64,AAAA", "--subresource", "--json",
                 "--config", str(SITE))
    assert result.returncode == 0
    assert json.loads(result.stdout)["rule"] == "data:subresource"


def test_usage_and_configuration_errors_exit_2(tmp_path):
    assert run("check-url").returncode == 2
    assert run("no-such-command").returncode == 2
    bad = tmp_path / "bad.toml"
    bad.write_text(SITE.read_text().replace("print_quota_pages", "print_quota"))
    result = run("check-url", "https://www.caf.fr/", "--config", str(bad))
    assert result.returncode == 2
    line = next(n for n, text in enumerate(SITE.read_text().splitlines(), 1)
                if text.startswith("print_quota_pages"))
    assert f"{bad}:{line}: session.print_quota: unknown key" in result.stderr
    assert "print_quota_pages" in result.stderr
    result = run("check-config", str(bad))
    assert result.returncode == 2 and "print_quota_pages" in result.stderr
    assert run("check-config", str(tmp_path / "missing.toml")).returncode == 2


def test_check_config_prints_effective_rules_with_their_source():
    result = run("check-config", str(SITE))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:3] == ["block", "*", "kiosk"] for line in lines)
    assert any(line.split() == ["allow", "franceconnect.gouv.fr", "shared", "rules"] for line in lines)
    assert any(line.split() == ["allow", "ants.gouv.fr", "portal", "ants"] for line in lines)
    assert "9 portals: the site file is valid." in result.stdout


def test_config_found_through_environment(tmp_path):
    site = tmp_path / "site.toml"
    site.write_text(SITE.read_text().replace('allow = ["smeaux.fr"]',
                                             'allow = ["smeaux.fr", "espacesud.fr"]'))
    result = run("check-url", "https://www.espacesud.fr/", env={"KIOSK_CONFIG": str(site)})
    assert result.returncode == 0 and "(portal sme)" in result.stdout


def test_messages_follow_the_language():
    result = run("check-url", "https://evil.example/", "--config", str(SITE), lang="fr")
    assert result.stdout.startswith("BLOQUÉ") and "n'est pas accessible" in result.stdout
    result = run("--lang", "gcf", "check-url", "https://evil.example/", "--config", str(SITE))
    assert result.stdout.startswith("BLOKÉ")


def test_in_process_main_returns_statuses(capsys):
    assert kioskctl.main(["--lang", "en", "check-url", "https://www.caf.fr/",
                          "--config", str(SITE)]) == 0
    assert kioskctl.main(["--lang", "en", "check-url", "https://x.org/",
                          "--config", str(SITE)]) == 1
    assert "BLOCKED" in capsys.readouterr().out


def test_pin_hash_asks_twice_and_writes_a_file_only_its_owner_reads(monkeypatch, capsys,
                                                                   tmp_path):
    """Before: the hash was printed for the site file, which the browser's group reads, and
    4 digits were enough (they fall in minutes offline)."""
    import getpass
    import stat
    from kiosk import kioskctl
    from kiosk.agent_pin import PinGate
    target = tmp_path / "agent-pin"
    answers = iter(["246813", "246813"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": next(answers))
    assert kioskctl.main(["--lang", "fr", "pin-hash", "--output", str(target)]) == 0
    out, err = capsys.readouterr()
    stored = target.read_text().strip()
    assert stored.startswith("pbkdf2_sha256$") and "246813" not in stored + out + err
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert str(target) in err and "plus-kiosk-shell" in err
    gate = PinGate(stored)
    assert gate.check("246813") and not gate.check("135791")
    answers = iter(["246813", "246814"])
    assert kioskctl.main(["--lang", "fr", "pin-hash", "--output", str(target)]) == 2
    assert "diffèrent" in capsys.readouterr().err
    for short in ("2468", "12345", "1234567890123", "24681a"):
        answers = iter([short, short])
        assert kioskctl.main(["--lang", "gcf", "pin-hash", "--output", str(target)]) == 2
        assert "6 a 12 chif" in capsys.readouterr().err
    assert target.read_text().strip() == stored  # refusals leave the PIN as it was
    answers = iter(["975312", "975312"])
    assert kioskctl.main(["--lang", "en", "pin-hash", "--output", "-"]) == 0
    assert PinGate(capsys.readouterr().out.strip()).check("975312")
