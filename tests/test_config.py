"""Site configuration: the bundled file, where files are found, precise errors."""

import pytest
from pydantic import ValidationError

from kiosk import config
from kiosk.i18n import set_language

MINIMAL = """\
# a test site
[site]
name = "Test site"
commune = "Le Marin"
kind = "municipal"

[session]
idle_warning_seconds = 90

[[portal]]
id = "caf"
name = { fr = "CAF", gcf = "CAF", en = "CAF" }
start_url = "https://www.caf.fr/"
allow = [
  "caf.fr",
]
"""


@pytest.fixture(autouse=True)
def english():
    set_language("en")
    yield
    set_language("fr")


def problems(text):
    with pytest.raises(config.ConfigError) as caught:
        config.load_text(text, "site.toml")
    return caught.value.problems


def only(text):
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def test_bundled_espace_sud_file_is_valid_and_complete():
    site = config.load(config.bundled_config())
    assert site.site.kind == "bus" and site.site.languages == ("fr", "gcf", "en")
    ids = [p.id for p in site.portal]
    assert ids == ["impots", "caf", "france-travail", "ameli", "edf", "sme", "ants",
                   "service-public", "webmail"]
    policy = site.policy()
    for portal in site.portal:
        assert policy.decide(portal.start_url).allowed, portal.id
        assert portal.name.fr and portal.name.gcf and portal.name.en
    for url in ["https://app.franceconnect.gouv.fr/", "https://oidc.franceconnect.gouv.fr/x",
                "https://cfspart.impots.gouv.fr/LoginMDP", "https://connect.caf.fr/",
                "https://authentification-candidat.francetravail.fr/connexion",
                "https://ameliconnect.ameli.fr/", "https://immatriculation.ants.gouv.fr/",
                "https://lidentitenumerique.laposte.fr/"]:
        assert policy.decide(url).allowed, url
    for url in ["https://www.google.com/", "https://www.facebook.com/", "file:///etc/passwd",
                "https://impots.gouv.fr.evil.example/"]:
        assert not policy.decide(url).allowed, url
    assert policy.decide("https://www.caf.fr/").source == "portal caf"
    assert policy.decide("https://app.franceconnect.gouv.fr/").source == "shared rules"


def test_minimal_file_gets_defaults():
    site = config.load_text(MINIMAL, "site.toml")
    assert site.session.idle_warning_seconds == 90
    assert site.session.idle_countdown_seconds == 30
    assert site.site.default_language == "fr"
    assert site.source == "site.toml"


def test_loaded_configuration_is_immutable():
    site = config.load_text(MINIMAL)
    with pytest.raises(ValidationError):
        site.site.name = "Changed"
    with pytest.raises(AttributeError):
        site.portal[0].allow.append("evil.example")


def test_where_the_file_comes_from(tmp_path, monkeypatch):
    system = tmp_path / "etc.toml"
    monkeypatch.setattr(config, "SYSTEM_CONFIG", system)
    monkeypatch.delenv("KIOSK_CONFIG", raising=False)
    assert config.find_config() == config.bundled_config()
    system.write_text(MINIMAL)
    assert config.find_config() == system
    monkeypatch.setenv("KIOSK_CONFIG", str(tmp_path / "env.toml"))
    assert config.find_config() == tmp_path / "env.toml"
    assert config.find_config(tmp_path / "cli.toml") == tmp_path / "cli.toml"


def test_unknown_key_names_line_and_closest_key():
    problem = only(MINIMAL.replace("idle_warning_seconds = 90", "idle_warnig_seconds = 90"))
    assert (problem.file, problem.line, problem.key) == ("site.toml", 8, "session.idle_warnig_seconds")
    assert "idle_warning_seconds" in problem.message
    assert str(problem).startswith("site.toml:8: session.idle_warnig_seconds: unknown key")


def test_unknown_table_names_closest_table():
    problem = only(MINIMAL.replace("[session]", "[sesion]"))
    assert (problem.line, problem.key) == (7, "sesion")
    assert "'session'" in problem.message


def test_unknown_key_in_a_portal_and_in_an_inline_table():
    found = problems(MINIMAL.replace('start_url =', 'start_ulr ='))
    keys = {p.key: p for p in found}
    assert keys["portal[0].start_ulr"].line == 13 and "'start_url'" in keys["portal[0].start_ulr"].message
    assert keys["portal[0].start_url"].message == "this key is required"
    problem = only(MINIMAL.replace('gcf = "CAF"', 'gfc = "CAF"').replace(
        'en = "CAF" }', 'en = "CAF", gcf = "CAF" }'))
    assert (problem.line, problem.key) == (12, "portal[0].name.gfc")
    assert "'gcf'" in problem.message


def test_wrong_type_names_line():
    problem = only(MINIMAL.replace("idle_warning_seconds = 90", 'idle_warning_seconds = "90"'))
    assert (problem.line, problem.key) == (8, "session.idle_warning_seconds")
    assert "whole number" in problem.message
    problem = only(MINIMAL.replace('kind = "municipal"', 'kind = "truck"'))
    assert (problem.line, problem.key) == (5, "site.kind")
    assert "'municipal'" in problem.message and "'bus'" in problem.message
    problem = only(MINIMAL.replace("idle_warning_seconds = 90", "idle_warning_seconds = 2"))
    assert "at least 10" in problem.message


def test_bad_rule_in_a_multiline_list_names_its_own_line():
    problem = only(MINIMAL.replace('  "caf.fr",\n', '  "caf.fr",\n  "example.com:*",\n'))
    assert (problem.line, problem.key) == (16, "portal[0].allow[1]")
    assert "invalid URL rule" in problem.message and "port" in problem.message


def test_unicode_host_rule_suggests_ascii_form():
    problem = only(MINIMAL.replace('  "caf.fr",\n', '  "caf.fr",\n  "bücher.de",\n'))
    assert problem.line == 16 and "xn--bcher-kva.de" in problem.message


def test_start_page_must_be_allowed():
    problem = only(MINIMAL.replace('"https://www.caf.fr/"', '"https://www.impots.gouv.fr/"'))
    assert (problem.line, problem.key) == (13, "portal[0].start_url")
    assert "block *" in problem.message
    problem = only(MINIMAL.replace('"https://www.caf.fr/"', '"www.caf.fr"'))
    assert problem.key == "portal[0].start_url" and "https://" in problem.message


def test_duplicate_portal_and_language_mismatch():
    text = MINIMAL + MINIMAL[MINIMAL.index("[[portal]]"):]
    problem = only(text)
    assert (problem.line, problem.key) == (18, "portal[1].id")
    problem = only(MINIMAL.replace('kind = "municipal"',
                                   'kind = "municipal"\ndefault_language = "en"\nlanguages = ["fr"]'))
    assert (problem.line, problem.key) == (6, "site.default_language")


def test_missing_key_points_at_its_table():
    problem = only(MINIMAL.replace('commune = "Le Marin"\n', ""))
    assert (problem.line, problem.key, problem.message) == (2, "site.commune", "this key is required")


def test_toml_syntax_error_names_line():
    problem = only(MINIMAL.replace("kind = \"municipal\"", "kind = municipal"))
    assert problem.line == 5 and "TOML" in problem.message


def test_unreadable_file(tmp_path):
    with pytest.raises(config.ConfigError) as caught:
        config.load(tmp_path / "missing.toml")
    assert "missing.toml" in str(caught.value)


def test_errors_are_translated():
    set_language("fr")
    problem = only(MINIMAL.replace("idle_warning_seconds = 90", "idle_warnig_seconds = 90"))
    assert "clé inconnue" in problem.message and "idle_warning_seconds" in problem.message
    set_language("gcf")
    problem = only(MINIMAL.replace("idle_warning_seconds = 90", 'idle_warning_seconds = "x"'))
    assert "nonm" in problem.message
