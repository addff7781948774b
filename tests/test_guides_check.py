"""The guide validator: the bundled guides pass, and each rule catches its mistake."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
import yaml

from kiosk import config as site_config
from kiosk.guides.check import MAX_STEP_WORDS, check, count_words, example_url
from kiosk.guides.library import content_dir, load_library
from kiosk.i18n import set_language

EXAMPLE = content_dir() / "ameli" / "attestation-droits.yaml"
TODAY = date(2026, 11, 24)


@pytest.fixture(scope="module")
def site():
    return site_config.load(site_config.bundled_config())


def test_bundled_guides_pass_the_check(site):
    report = check(site)
    assert report.files >= 1
    assert report.errors == [], "\n".join(str(p) for p in report.errors)


def test_kioskctl_guides_check_is_part_of_the_tools():
    result = subprocess.run([sys.executable, "-m", "kiosk.kioskctl", "--lang", "fr", "guides",
                             "check"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "0 erreur" in result.stdout


def write_variant(tmp_path: Path, edit, folder: str = "ameli", raw: str | None = None) -> Path:
    data = yaml.load(EXAMPLE.read_text(encoding="utf-8"), Loader=yaml.BaseLoader)
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    data["last_checked"] = "2026-11-01"
    edit(data)
    target = tmp_path / "content" / folder / "guide.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(raw if raw is not None else
                      yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return target


def problems_of(site, tmp_path, edit, **kw):
    path = write_variant(tmp_path, edit, **kw)
    report = check(site, [tmp_path / "content"], today=TODAY)
    lines = path.read_text(encoding="utf-8").splitlines()
    return report.problems, lines


def only_problem(problems):
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


def test_unchanged_copy_is_clean(site, tmp_path):
    problems, _ = problems_of(site, tmp_path, lambda d: None)
    assert problems == []


def test_invalid_yaml_names_the_line(site, tmp_path):
    path = write_variant(tmp_path, lambda d: None, raw="format: 1\nid: [unclosed\nportal: x\n")
    problem = only_problem(check(site, [tmp_path / "content"], today=TODAY).problems)
    assert problem.file == str(path) and problem.line in (2, 3)
    assert "YAML" in problem.message


def test_missing_key(site, tmp_path):
    problems, _ = problems_of(site, tmp_path, lambda d: d.pop("have_at_hand"))
    problem = only_problem(problems)
    assert "have_at_hand" in problem.message and problem.line == 1


def test_unknown_key_suggests_the_right_one(site, tmp_path):
    def edit(d):
        d["steps"][1]["buton"] = d["steps"][1].pop("button")
    problems, lines = problems_of(site, tmp_path, edit)
    problem = only_problem(problems)
    assert problem.key == "steps[1].buton" and "button" in problem.message
    assert lines[problem.line - 1].strip().startswith("buton:")


@pytest.mark.parametrize("language", ["fr", "gcf", "en"])
def test_each_language_must_exist(site, tmp_path, language):
    problems, lines = problems_of(site, tmp_path, lambda d: d["steps"][3]["text"].pop(language))
    problem = only_problem(problems)
    assert problem.key == "steps[3].text" and language in problem.message
    assert lines[problem.line - 1].strip().startswith("text:")


def test_needs_review_is_allowed_but_the_text_must_still_exist(site, tmp_path):
    def edit(d):
        d["needs_review"] = ["gcf"]
        d["title"]["gcf"] = ""
    problem = only_problem(problems_of(site, tmp_path, edit)[0])
    assert problem.key == "title.gcf"


def test_difficulty_range(site, tmp_path):
    problem = only_problem(problems_of(site, tmp_path, lambda d: d.update(difficulty=4))[0])
    assert problem.key == "difficulty" and "1" in problem.message and "3" in problem.message


def test_unknown_portal(site, tmp_path):
    def edit(d):
        d["portal"] = "banque"
    problems, _ = problems_of(site, tmp_path, edit, folder="banque")
    problem = only_problem(problems)
    assert problem.key == "portal" and "banque" in problem.message and "ameli" in problem.message


def test_guide_in_the_wrong_folder(site, tmp_path):
    problem = only_problem(problems_of(site, tmp_path, lambda d: None, folder="caf")[0])
    assert problem.key == "portal" and "caf" in problem.message


def test_start_url_outside_the_allowlist(site, tmp_path):
    problem = only_problem(problems_of(
        site, tmp_path, lambda d: d.update(start_url="https://www.google.com/"))[0])
    assert problem.key == "start_url" and "google" in problem.message


def test_step_pattern_outside_the_allowlist(site, tmp_path):
    problems, lines = problems_of(site, tmp_path,
                                  lambda d: d["steps"][2].update(url="mail.example.org/inbox"))
    problem = only_problem(problems)
    assert problem.key == "steps[2].url" and "mail.example.org" in problem.message
    assert "mail.example.org" in lines[problem.line - 1]


def test_step_pattern_that_is_not_a_filter(site, tmp_path):
    problem = only_problem(problems_of(
        site, tmp_path, lambda d: d["steps"][0].update(url="https://ameli.fr:99999/"))[0])
    assert problem.key == "steps[0].url" and "99999" in problem.message


def test_step_pattern_without_a_host(site, tmp_path):
    problem = only_problem(problems_of(site, tmp_path,
                                       lambda d: d["steps"][0].update(url="*"))[0])
    assert problem.key == "steps[0].url"


def test_plain_http_step_is_refused_on_a_real_site(site, tmp_path):
    problem = only_problem(problems_of(
        site, tmp_path, lambda d: d["steps"][0].update(url="http://www.ameli.fr"))[0])
    assert problem.key == "steps[0].url"


def test_step_too_long(site, tmp_path):
    long_text = " ".join(["mot"] * (MAX_STEP_WORDS + 1))
    problem = only_problem(problems_of(
        site, tmp_path, lambda d: d["steps"][1]["text"].update(en=long_text))[0])
    assert problem.key == "steps[1].text.en" and str(MAX_STEP_WORDS + 1) in problem.message


def test_button_must_be_quoted_in_the_french_text(site, tmp_path):
    problem = only_problem(problems_of(
        site, tmp_path, lambda d: d["steps"][1].update(button="Se connecter"))[0])
    assert problem.key == "steps[1].button" and "Se connecter" in problem.message


def test_duplicate_step_ids(site, tmp_path):
    problem = only_problem(problems_of(
        site, tmp_path, lambda d: d["steps"][2].update(id=d["steps"][1]["id"]))[0])
    assert problem.key == "steps[2].id"


def test_duplicate_guide_ids_across_files(site, tmp_path):
    first = write_variant(tmp_path, lambda d: None)
    second = first.with_name("copy.yaml")
    second.write_text(first.read_text(encoding="utf-8"), encoding="utf-8")
    problems = check(site, [tmp_path / "content"], today=TODAY).problems
    problem = only_problem(problems)
    assert problem.key == "id" and problem.file in (str(first), str(second))


def test_bad_id_format(site, tmp_path):
    problem = only_problem(problems_of(site, tmp_path, lambda d: d.update(id="Ameli Attestation"))[0])
    assert problem.key == "id"


def test_missing_image(site, tmp_path):
    problem = only_problem(problems_of(
        site, tmp_path, lambda d: d["steps"][0].update(image="pictures/mon-compte.png"))[0])
    assert problem.key == "steps[0].image" and "mon-compte.png" in problem.message


def test_existing_image_passes(site, tmp_path):
    target = tmp_path / "content" / "ameli" / "pictures" / "mon-compte.png"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"\x89PNG\r\n\x1a\n")
    assert problems_of(site, tmp_path,
                       lambda d: d["steps"][0].update(image="pictures/mon-compte.png"))[0] == []


def test_dates(site, tmp_path):
    problem = only_problem(problems_of(site, tmp_path, lambda d: d.update(last_checked="24/11/2026"))[0])
    assert problem.key == "last_checked"
    problem = only_problem(problems_of(site, tmp_path, lambda d: d.update(last_checked="2024-01-01"))[0])
    assert problem.severity == "warning"


def test_messages_are_translated(site, tmp_path):
    try:
        set_language("fr")
        problem = only_problem(problems_of(site, tmp_path, lambda d: d.pop("source"))[0])
        assert "manque" in problem.message or "manquante" in problem.message, problem.message
        assert "erreur" in str(problem)
    finally:
        set_language("fr")


def test_the_loader_skips_a_broken_guide_and_keeps_the_others(tmp_path):
    write_variant(tmp_path, lambda d: d.pop("steps"))
    good = tmp_path / "content" / "ameli" / "good.yaml"
    good.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    library = load_library([tmp_path / "content"])
    assert [g.path for g in library.guides] == [good]


def test_word_count_and_example_url():
    assert count_words("Touchez « Mon compte » — puis « Valider ».") == 5
    assert example_url(".www.ameli.fr") == "https://www.ameli.fr/"
    assert example_url("assure.ameli.fr/PortailAS?x=1") == "https://assure.ameli.fr/PortailAS?x=1"
    assert example_url("*") is None


def test_public_copies_stand_alone_in_three_languages(tmp_path):
    result = subprocess.run([sys.executable, "-m", "kiosk.kioskctl", "--lang", "en", "guides",
                             "export", str(tmp_path / "public")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    library = load_library()
    pages = sorted(p.name for p in (tmp_path / "public").iterdir())
    assert pages == sorted([f"{g.id}.html" for g in library.guides] + ["index.html"])
    guide = library.get("ameli-attestation-droits")
    html = (tmp_path / "public" / "ameli-attestation-droits.html").read_text(encoding="utf-8")
    import html as html_lib
    text = html_lib.unescape(html)
    for lang in ("fr", "gcf", "en"):
        assert f'id="{lang}"' in html and guide.title[lang] in text
        assert all(step.text[lang] in text for step in guide.steps)
    assert "<script" not in html and "src=" not in html  # nothing to fetch from elsewhere
    assert "« Valider »" in text
