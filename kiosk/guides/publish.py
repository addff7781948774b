"""The public copies of the guides: static pages a site publishes at its
``public_base_url``, where the QR code of a printed guide leads.

A resident reads them again at home on a phone, so each page stands alone:
no script, no external font or image, large text, the three languages one
under the other (French first), each reachable by its anchor (``#gcf``).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from kiosk.guides.library import LANGUAGES, Guide, GuideLibrary, pick
from kiosk.i18n import translation

STYLE = """body{font:20px/1.5 "DejaVu Sans",sans-serif;max-width:42em;margin:0 auto;padding:1em;
color:#111;background:#fff}h1{font-size:1.6em}h2{font-size:1.3em;margin-top:1.5em}
ol>li{margin:.8em 0}.button{font-weight:bold}.warning{color:#8a1c00;font-weight:bold}
nav a{margin-right:1em}section{border-top:3px solid #0a5bad;margin-top:2em}"""
LANGUAGE_NAMES = {"fr": "Français", "gcf": "Kréyòl", "en": "English"}


def _section(guide: Guide, language: str) -> str:
    _ = translation(language).gettext
    text = lambda value: escape(pick(value, language))  # noqa: E731
    have = "".join(f"<li>{text(item)}</li>" for item in guide.have_at_hand)
    steps = []
    for step in guide.steps:
        parts = [f"<strong>{text(step.title)}</strong><br>{text(step.text)}"]
        if step.button:
            parts.append(f'<br>{escape(_("Button to touch:"))} '
                         f'<span class="button">« {escape(step.button)} »</span>')
        if step.warning:
            parts.append(f'<br><span class="warning">{escape(_("Careful:"))} '
                         f'{text(step.warning)}</span>')
        steps.append("<li>" + "".join(parts) + "</li>")
    review = ""
    if language in guide.needs_review:
        note = _("This translation is waiting for a review.")
        review = f"<p><em>{escape(note)}</em></p>"
    return (f'<section id="{language}" lang="{language}"><h1>{text(guide.title)}</h1>{review}'
            f"<p>{text(guide.summary)} "
            f"{escape(_('About {minutes} minutes.').format(minutes=guide.minutes))}</p>"
            f"<h2>{escape(_('Have at hand'))}</h2><ul>{have}</ul>"
            f"<h2>{escape(_('Steps'))}</h2><ol>{''.join(steps)}</ol>"
            f"<h2>{escape(_('At the end'))}</h2><p>{text(guide.end_text)}</p>"
            f"<p>{escape(_('Official page: {url}').format(url=''))}"
            f'<a href="{escape(guide.source)}">{escape(guide.source)}</a></p></section>')


def page(guide: Guide, site_name: str = "") -> str:
    nav = "".join(f'<a href="#{lang}">{LANGUAGE_NAMES[lang]}</a>' for lang in LANGUAGES)
    sections = "".join(_section(guide, lang) for lang in LANGUAGES)
    footer = escape(translation("fr").gettext(
        "Guide checked on {date}. Sites change: if a button differs, ask an agent.").format(
        date=guide.last_checked))
    return ("<!DOCTYPE html><html lang=\"fr\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(guide.title['fr'])}</title><style>{STYLE}</style></head>"
            f"<body><nav>{nav}</nav>{sections}<footer><p>{footer}</p>"
            f"<p>{escape(site_name)}</p></footer></body></html>\n")


def index(library: GuideLibrary, site_name: str = "") -> str:
    items = "".join(f'<li><a href="{escape(g.id)}.html">{escape(g.title["fr"])}</a> — '
                    f'<span lang="gcf">{escape(g.title["gcf"])}</span></li>'
                    for g in library.guides)
    return ("<!DOCTYPE html><html lang=\"fr\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(site_name or 'Guides')}</title><style>{STYLE}</style></head>"
            f"<body><h1>{escape(site_name)}</h1><ul>{items}</ul></body></html>\n")


def export(library: GuideLibrary, target: Path, site_name: str = "") -> list[Path]:
    """Write ``<id>.html`` per guide and ``index.html``; returns the files written."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for guide in library.guides:
        path = target / f"{guide.id}.html"
        path.write_text(page(guide, site_name), encoding="utf-8")
        written.append(path)
    (target / "index.html").write_text(index(library, site_name), encoding="utf-8")
    return [*written, target / "index.html"]
