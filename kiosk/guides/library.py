"""Read guide files into immutable objects.

A broken guide must never take a terminal down: the kiosk loads what is valid
and logs the rest, while ``kioskctl guides check`` (``kiosk.guides.check``)
reports every problem with its file and line, so a technician sees it before
residents do. Dates stay text (YAML would turn them into ``date`` objects the
JSON Schema does not know).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import jsonschema
import yaml

from kiosk.urlfilter import URLFilter

log = logging.getLogger(__name__)

LANGUAGES = ("fr", "gcf", "en")
SCHEMA_FILE = "guide-1.json"


def content_dir() -> Path:
    """The guides shipped with the package."""
    return Path(str(resources.files("kiosk.guides") / "content"))


@cache
def schema() -> dict[str, Any]:
    return json.loads((resources.files("kiosk.guides") / "schema" / SCHEMA_FILE).read_text())


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema(),
                                           format_checker=jsonschema.FormatChecker())


class _TextLoader(yaml.SafeLoader):
    """SafeLoader that keeps dates as strings."""


_TextLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


@dataclass(frozen=True)
class Document:
    """A parsed file and where each value sits in it."""

    path: Path
    data: Any
    lines: Mapping[tuple[Any, ...], int]

    def line(self, where: Iterable[Any]) -> int | None:
        """Line of the value at ``where``, or of its nearest parent that exists."""
        key = tuple(where)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), 1)


def _positions(node: yaml.Node, where: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out[where] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            _positions(value_node, (*where, key), out)
            out[(*where, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _positions(item, (*where, index), out)


def read_document(path: Path) -> Document:
    """Parse a YAML file; raise yaml.YAMLError (with its mark) if it is not YAML."""
    text = path.read_text(encoding="utf-8")
    node = yaml.compose(text, Loader=_TextLoader)
    lines: dict[tuple[Any, ...], int] = {}
    if node is not None:
        _positions(node, (), lines)
    return Document(path, yaml.load(text, Loader=_TextLoader), lines)


Text = Mapping[str, str]


def pick(text: Text | None, language: str) -> str:
    """The text in ``language``; French (always present) otherwise."""
    if not text:
        return ""
    return text.get(language) or text.get("fr", "")


@dataclass(frozen=True)
class Step:
    id: str
    title: Text
    text: Text
    url: str
    button: str = ""
    warning: Text | None = None
    image: Path | None = None

    @property
    def matcher(self) -> URLFilter:
        return _matcher(self.url)


@cache
def _matcher(pattern: str) -> URLFilter:
    return URLFilter(blocklist=["*"], allowlist=[pattern])  # unmatched: blocked, not neutral


@dataclass(frozen=True)
class Guide:
    id: str
    portal: str
    title: Text
    summary: Text
    keywords: Text | None
    minutes: int
    difficulty: int
    needs_review: tuple[str, ...]
    start_url: str
    have_at_hand: tuple[Text, ...]
    steps: tuple[Step, ...]
    end_kind: str
    end_text: Text
    source: str
    last_checked: str
    path: Path

    @classmethod
    def from_data(cls, data: Mapping[str, Any], path: Path) -> "Guide":
        steps = tuple(Step(id=s["id"], title=s["title"], text=s["text"], url=s["url"],
                           button=s.get("button", ""), warning=s.get("warning"),
                           image=path.parent / s["image"] if s.get("image") else None)
                      for s in data["steps"])
        return cls(id=data["id"], portal=data["portal"], title=data["title"],
                   summary=data["summary"], keywords=data.get("keywords"),
                   minutes=data["minutes"], difficulty=data["difficulty"],
                   needs_review=tuple(data.get("needs_review", ())),
                   start_url=data["start_url"], have_at_hand=tuple(data["have_at_hand"]),
                   steps=steps, end_kind=data["end_state"]["kind"],
                   end_text=data["end_state"]["text"], source=data["source"],
                   last_checked=data["last_checked"], path=path)


def site_dirs(config: Any) -> list[Path]:
    """The bundled guides, then the site's own folder (``[guides] extra_dir``)."""
    extra = config.guides.extra_dir
    return [content_dir(), *([Path(extra)] if extra else [])]


def guide_files(directories: Iterable[Path]) -> list[Path]:
    files: list[Path] = []
    for directory in directories:
        files.extend(sorted(Path(directory).glob("*/*.yaml")))
    return files


@dataclass(frozen=True)
class GuideLibrary:
    guides: tuple[Guide, ...]

    def get(self, guide_id: str) -> Guide | None:
        return next((g for g in self.guides if g.id == guide_id), None)

    def for_portal(self, portal_id: str) -> list[Guide]:
        return [g for g in self.guides if g.portal == portal_id]

    def __len__(self) -> int:
        return len(self.guides)


def load_library(directories: Iterable[Path] | None = None,
                 portals: Iterable[str] | None = None) -> GuideLibrary:
    """Every valid guide; invalid files are logged and skipped.

    ``portals``: the site's portal ids; a guide for a portal this terminal does
    not show is left out.
    """
    known = set(portals) if portals is not None else None
    checker = validator()
    guides: dict[str, Guide] = {}
    for path in guide_files(directories or [content_dir()]):
        try:
            document = read_document(path)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            log.error("guide %s skipped: %s", path, exc)
            continue
        error = next(iter(checker.iter_errors(document.data)), None)
        if error is not None:
            log.error("guide %s skipped: %s", path, error.message)
            continue
        guide = Guide.from_data(document.data, path)
        if guide.id in guides:
            log.error("guide %s skipped: id %s already used", path, guide.id)
            continue
        if known is None or guide.portal in known:
            guides[guide.id] = guide
    return GuideLibrary(tuple(sorted(guides.values(), key=lambda g: (g.portal, g.title["fr"]))))


def load_for_site(config: Any) -> GuideLibrary:
    """The guides a terminal with this site file shows."""
    return load_library(site_dirs(config), portals=[portal.id for portal in config.portal])
