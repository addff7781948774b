"""The fleet playbook: ansible-playbook --syntax-check, ansible-lint, and a valid site
file rendered for every terminal of the inventory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kiosk import config as site_config

ROOT = Path(__file__).resolve().parent.parent
ANSIBLE = ROOT / "provisioning" / "ansible"
BIN = Path(sys.executable).parent
HOSTS = ["plus-bus", "mairie-sainte-luce", "mairie-le-marin", "mairie-riviere-pilote",
         "mairie-le-diamant"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    if not (BIN / "ansible-playbook").exists():
        pytest.skip("ansible is installed by the test extra")
    home = tmp_path_factory.mktemp("ansible-home")
    return {**os.environ, "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "XDG_CACHE_HOME": str(home / "cache"), "ANSIBLE_NOCOLOR": "1", "NO_COLOR": "1",
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}


def test_inventory_is_the_bus_and_four_town_halls():
    inventory = yaml.safe_load((ANSIBLE / "inventory.yml").read_text())["all"]["children"]
    assert list(inventory["bus"]["hosts"]) == ["plus-bus"]
    assert len(inventory["municipal"]["hosts"]) == 4
    assert sorted(p.stem for p in (ANSIBLE / "host_vars").glob("*.yml")) == sorted(HOSTS)


def test_playbook_syntax(env):
    result = subprocess.run([str(BIN / "ansible-playbook"), "-i", "inventory.yml", "playbook.yml",
                             "--syntax-check"], cwd=ANSIBLE, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ansible_lint(env):
    result = subprocess.run([str(BIN / "ansible-lint"), "--offline", "--profile", "production",
                             "playbook.yml", "inventory.yml", "host_vars/"], cwd=ANSIBLE, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_terminal_gets_a_valid_site_file(env, tmp_path):
    """The playbook's template, rendered with each host's values, passes check-config."""
    for host in HOSTS:
        target = tmp_path / f"{host}.toml"
        result = subprocess.run(
            [str(BIN / "ansible"), "-i", "inventory.yml", host, "--connection", "local",
             "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"kiosk_source={ROOT}",
             "-m", "ansible.builtin.copy", "-a",
             f"content={{{{ lookup('ansible.builtin.template', 'templates/site.toml.j2') }}}} "
             f"dest={target}"], cwd=ANSIBLE, env=env, capture_output=True, text=True,
            timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
        config = site_config.load(target)
        values = yaml.safe_load((ANSIBLE / "host_vars" / f"{host}.yml").read_text())
        assert config.site.commune == values["kiosk_commune"]
        assert config.printing.device_uri == values["kiosk_printer_uri"]
        assert config.site.kind == ("bus" if host == "plus-bus" else "municipal")
        assert [p.id for p in config.portal] == [p.id for p in site_config.load().portal]
