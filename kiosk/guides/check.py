"""``kioskctl guides check``: every rule a guide must follow, with file and line.

A guide that sends a resident to a page the terminal refuses is worse than no
guide, so the allowlist check is as strict as the schema. Messages are
translated (a technician in a town hall reads them); the schema's own English
wording is replaced by ours for each kind of mistake.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Iterable

import jsonschema
import yaml

from kiosk.config import SiteConfig
from kiosk.guides.library import LANGUAGES, Document, guide_files, read_document, site_dirs, \
    validator
from kiosk.i18n import _
from kiosk.policy import KioskPolicy
from kiosk.urlfilter import InvalidFilter, parse_filter

MAX_STEP_WORDS = 25
STALE_DAYS = 365


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    key: str
    message: str
    severity: str = "error"  # or "warning": reported, but the guide is still shown

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        label = _("warning") if self.severity == "warning" else _("error")
        key = f" {self.key}:" if self.key else ""
        return f"{where}: {label}:{key} {self.message}"


def dotted(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def count_words(text: str) -> int:
    """Words a reader reads: quotes and dashes standing alone do not count."""
    return sum(1 for token in text.split() if any(c.isalnum() for c in token))


def example_url(pattern: str) -> str | None:
    """A concrete https address a step pattern stands for (None: no host to go to)."""
    rule = parse_filter(pattern, allow=True)
    host = rule.host.lstrip(".")
    if not host:
        return None
    port = f":{rule.port}" if rule.port else ""
    path = rule.path or "/"
    query = f"?{rule.query}" if rule.query else ""
    return f"{rule.scheme or 'https'}://{host}{port}{path}{query}"


def _schema_message(error: jsonschema.ValidationError) -> tuple[list[Any], str]:
    """Our translated words for one schema error, and where it points."""
    where = list(error.absolute_path)
    kind, value = error.validator, error.validator_value
    if kind == "required":
        missing = next((k for k in value if k not in error.instance), value[0])
        if set(value) == set(LANGUAGES):
            return where, _("the {language} text is missing (fr, gcf and en are all "
                            "required)").format(language=missing)
        return where, _("the key {key} is missing").format(key=missing)
    if kind == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        key = extra[0] if extra else "?"
        close = difflib.get_close_matches(str(key), allowed, n=1)
        hint = " " + _("(did you mean {key}?)").format(key=close[0]) if close else ""
        return [*where, key], _("unknown key {key}").format(key=key) + hint
    if kind == "type":
        return where, _("must be {kind}").format(kind={
            "object": _("a set of keys"), "array": _("a list"), "string": _("text"),
            "integer": _("a whole number")}.get(value, value))
    if kind in ("enum", "const"):
        choices = value if kind == "enum" else [value]
        return where, _("must be one of: {choices}").format(
            choices=", ".join(str(c) for c in choices))
    if kind == "minItems":
        return where, _("needs at least {count} item(s)").format(count=value)
    if kind == "minLength":
        return where, _("must not be empty")
    if kind in ("minimum", "maximum"):
        return where, _("must be between {low} and {high}").format(
            low=error.schema.get("minimum", "…"), high=error.schema.get("maximum", "…"))
    if kind == "pattern":
        if where and where[-1] == "last_checked":
            return where, _("must be a date written YYYY-MM-DD")
        if where and where[-1] in ("start_url", "source"):
            return where, _("must be an https:// address")
        if where and where[-1] == "image":
            return where, _("must be a .png or .jpg file next to the guide")
        return where, _("must be lower-case letters, digits and dashes (e.g. caf-attestation)")
    if kind == "uniqueItems":
        return where, _("lists the same value twice")
    return where, error.message


def _check_document(doc: Document, config: SiteConfig, policy: KioskPolicy,
                    today: date) -> list[Problem]:
    problems: list[Problem] = []
    file = str(doc.path)

    def report(where: Iterable[Any], message: str, severity: str = "error") -> None:
        where = list(where)
        problems.append(Problem(file, doc.line(where), dotted(where), message, severity))

    errors = sorted(validator().iter_errors(doc.data), key=lambda e: list(e.absolute_path))
    for error in errors:
        report(*_schema_message(error))
    if errors or not isinstance(doc.data, dict):
        return problems
    data = doc.data

    portal = config.portal_by_id(data["portal"])
    if portal is None:
        report(["portal"], _("no portal {id} in the site file {file} (portals: {known})").format(
            id=data["portal"], file=config.source or "?",
            known=", ".join(p.id for p in config.portal)))
    if doc.path.parent.name != data["portal"]:
        report(["portal"], _("the file is in the folder {folder} but names the portal {id}; "
                             "keep guides in content/<portal>/").format(
            folder=doc.path.parent.name, id=data["portal"]))

    verdict = policy.decide(data["start_url"])
    if not verdict.allowed:
        report(["start_url"], _("{url} is refused by the site's allowlist ({rule}): the guide "
                                "would lead outside it").format(url=data["start_url"],
                                                               rule=verdict.rule))

    seen_steps: set[str] = set()
    for index, step in enumerate(data["steps"]):
        at = ["steps", index]
        if step["id"] in seen_steps:
            report([*at, "id"], _("the step id {id} is used twice").format(id=step["id"]))
        seen_steps.add(step["id"])
        try:
            url = example_url(step["url"])
        except InvalidFilter as exc:
            report([*at, "url"], _("{pattern} is not a valid URL pattern: {reason}").format(
                pattern=step["url"], reason=exc.reason))
        else:
            if url is None:
                report([*at, "url"], _("{pattern} names no host: a step must say which site it "
                                       "happens on").format(pattern=step["url"]))
            else:
                verdict = policy.decide(url)
                if not verdict.allowed:
                    report([*at, "url"], _("{pattern} is refused by the site's allowlist "
                                           "({rule}): the guide would lead outside it").format(
                        pattern=step["url"], rule=verdict.rule))
        for language in LANGUAGES:
            words = count_words(step["text"][language])
            if words > MAX_STEP_WORDS:
                report([*at, "text", language], _("{count} words; a step says one thing in at "
                                                  "most {max} words").format(
                    count=words, max=MAX_STEP_WORDS))
        button = step.get("button")
        if button and button not in step["text"]["fr"]:
            report([*at, "button"], _("the button label « {label} » does not appear in the "
                                      "French text; quote it exactly").format(label=button))
        if step.get("image") and not (doc.path.parent / step["image"]).is_file():
            report([*at, "image"], _("the image {path} does not exist").format(
                path=step["image"]))

    try:
        checked = date.fromisoformat(data["last_checked"])
    except ValueError:
        report(["last_checked"], _("must be a date written YYYY-MM-DD"))
    else:
        if checked > today:
            report(["last_checked"], _("the date {date} is in the future").format(
                date=data["last_checked"]))
        elif (today - checked).days > STALE_DAYS:
            report(["last_checked"], _("checked more than a year ago ({date}): walk through "
                                       "the live site again").format(date=data["last_checked"]),
                   "warning")
    return problems


@dataclass
class Report:
    files: int
    guides: dict[str, str]  # id -> file
    problems: list[Problem]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def check(config: SiteConfig, directories: Iterable[Path] | None = None,
          today: date | None = None) -> Report:
    today = today or date.today()
    directories = list(directories or site_dirs(config))
    policy = config.policy()
    files = guide_files(directories)
    problems: list[Problem] = []
    ids: dict[str, str] = {}
    for path in files:
        try:
            doc = read_document(path)
        except UnicodeDecodeError:
            problems.append(Problem(str(path), None, "", _("the file is not UTF-8 text")))
            continue
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problems.append(Problem(str(path), mark.line + 1 if mark else None, "",
                                    _("not valid YAML: {reason}").format(reason=exc.problem)))
            continue
        problems.extend(_check_document(doc, config, policy, today))
        guide_id = doc.data.get("id") if isinstance(doc.data, dict) else None
        if isinstance(guide_id, str):
            if guide_id in ids:
                problems.append(Problem(str(path), doc.line(["id"]), "id",
                                        _("the id {id} is already used by {other}").format(
                                            id=guide_id, other=ids[guide_id])))
            else:
                ids[guide_id] = str(path)
    if not files:
        problems.append(Problem(", ".join(str(d) for d in directories),
                                None, "", _("no guide found (expected content/<portal>/*.yaml)")))
    return Report(len(files), ids, problems)
