"""``kioskctl stats report --month YYYY-MM``: a month's figures as a PDF for a funder.

The document is in French whatever the terminal's language (it goes to French public
funders). Charts are drawn by matplotlib on its Agg backend (no screen needed) into
PNGs in memory, laid out with reportlab.
"""

from __future__ import annotations

import io
from calendar import monthrange
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from reportlab.lib import colors  # noqa: E402
from reportlab.lib.pagesizes import A4  # noqa: E402
from reportlab.lib.styles import getSampleStyleSheet  # noqa: E402
from reportlab.lib.units import cm  # noqa: E402
from reportlab.platypus import (Image, Paragraph, SimpleDocTemplate, Spacer, Table,  # noqa: E402
                                TableStyle)

from kiosk.stats import DURATION_BANDS, Record, summarize  # noqa: E402

MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
          "septembre", "octobre", "novembre", "décembre")
CATEGORIES_FR = {"identity": "Papiers d'identité et véhicule", "family": "Famille",
                 "health": "Santé et social", "work": "Emploi", "housing": "Logement",
                 "money": "Argent et impôts", "energy": "Énergie et eau", "other": "Autre"}
ANSWERS_FR = (("yes", "Oui"), ("partly", "En partie"), ("no", "Non"), (None, "Sans réponse"))


def month_bounds(month: str) -> tuple[str, str]:
    """"2026-03" → ("2026-03-01", "2026-03-31"); ValueError when not a month."""
    year, number = (int(part) for part in month.split("-"))
    last = monthrange(year, number)[1]  # raises for a month out of 1..12
    return f"{year:04d}-{number:02d}-01", f"{year:04d}-{number:02d}-{last:02d}"


def _chart(kind: str, labels: Sequence[str], values: Sequence[int], title: str) -> Image:
    figure, axes = plt.subplots(figsize=(7, 2.8), dpi=110)
    if kind == "pie" and sum(values):
        axes.pie(values, labels=labels, autopct="%1.0f %%", textprops={"fontsize": 8})
        axes.axis("equal")
    elif kind == "barh":
        axes.barh(list(labels)[::-1], list(values)[::-1], color="#1f6f8b")
        axes.tick_params(labelsize=8)
    else:
        axes.bar(list(labels), list(values), color="#1f6f8b")
        axes.tick_params(labelsize=8)
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    buffer.seek(0)
    return Image(buffer, width=16 * cm, height=16 * cm * 2.8 / 7)


def _weeks(first: str, last: str, records: Sequence[Record]) -> list[tuple[str, int]]:
    """Sessions per week (Monday to Sunday) of the month, labelled by its first day."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    monday = start - timedelta(days=start.weekday())
    counts = Counter(date.fromisoformat(r.day) - timedelta(days=date.fromisoformat(r.day)
                                                           .weekday()) for r in records)
    weeks = []
    while monday <= end:
        weeks.append((f"{max(monday, start):%d/%m}", counts[monday]))
        monday += timedelta(days=7)
    return weeks


def _table(rows: list[list[object]], widths: Sequence[float]) -> Table:
    table = Table([[str(cell) for cell in row] for row in rows],
                  colWidths=[w * cm for w in widths])
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold"), ("FONTSIZE", (0, 0), (-1, -1), 9),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.grey), ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6f0f3"))]))
    return table


def write_report(records: Sequence[Record], month: str, output: Path, site: str,
                 portal_names: dict[str, str] | None = None) -> int:
    """Write the month's PDF; the number of sessions it counts."""
    first, last = month_bounds(month)
    records = [r for r in records if first <= r.day <= last]
    summary = summarize(records)
    names = portal_names or {}
    year, number = (int(part) for part in month.split("-"))
    styles = getSampleStyleSheet()
    story: list = [
        Paragraph(f"Fréquentation de la borne — {MONTHS[number - 1]} {year}", styles["Title"]),
        Paragraph(site, styles["Heading3"]),
        Paragraph("Chiffres anonymes : une ligne par visite, sans nom, adresse, page "
                  "consultée ni document. Les visites sont comptées par borne et par "
                  "identifiant unique, sans doublon.", styles["Normal"]),
        Spacer(1, 0.4 * cm),
        _table([["Indicateur", "Valeur"],
                ["Sessions", summary.sessions],
                ["Bornes", summary.terminals],
                ["Temps passé (minutes)", summary.minutes],
                ["Pages imprimées", summary.pages_printed],
                ["Documents numérisés", summary.scans],
                ["Numérisations envoyées sur un téléphone", summary.shares]], (10, 4)),
        Spacer(1, 0.4 * cm),
    ]
    weeks = _weeks(first, last, records)
    story.append(Paragraph("Sessions par semaine et par commune", styles["Heading2"]))
    story.append(_table([["Semaine", "Sessions"], *[[f"semaine du {w}", n] for w, n in weeks]],
                        (10, 4)))
    story.append(_chart("bar", [f"sem. du {w}" for w, _n in weeks], [n for _w, n in weeks],
                        "Sessions par semaine"))
    places = summary.per_place.most_common()
    story.append(_chart("barh", [p for p, _n in places] or ["-"], [n for _p, n in places] or [0],
                        "Sessions par commune"))
    story.append(_table([["Commune", "Sessions"], *[[p, n] for p, n in places]], (10, 4)))
    categories = [(CATEGORIES_FR[c], summary.per_category[c]) for c in CATEGORIES_FR
                  if summary.per_category[c]]
    story.append(Paragraph("Démarches par catégorie", styles["Heading2"]))
    story.append(_table([["Catégorie", "Sessions", "Part"],
                         *[[c, n, f"{100 * n / max(1, summary.sessions):.0f} %"]
                           for c, n in categories]], (9, 3, 2)))
    if categories:
        story.append(_chart("pie", [c for c, _n in categories], [n for _c, n in categories],
                            "Part par catégorie"))
    portals = summary.per_portal.most_common()
    story.append(Paragraph("Démarches par portail", styles["Heading2"]))
    story.append(_table([["Portail", "Sessions", "Part"],
                         *[[names.get(p, p), n, f"{100 * n / max(1, summary.sessions):.0f} %"]
                           for p, n in portals]], (9, 3, 2)))
    story.append(Paragraph("Temps passé", styles["Heading2"]))
    bands = [(label, summary.per_band[label]) for _limit, label in DURATION_BANDS]
    story.append(_table([["Durée de la visite", "Sessions"], *bands], (10, 4)))
    story.append(_chart("bar", [b for b, _n in bands], [n for _b, n in bands],
                        "Sessions par durée"))
    story.append(Paragraph("Satisfaction — « Avez-vous pu faire votre démarche ? »",
                           styles["Heading2"]))
    answers = [(label, summary.per_answer[key]) for key, label in ANSWERS_FR]
    story.append(_table([["Réponse", "Sessions"], *answers], (10, 4)))
    story.append(_chart("bar", [a for a, _n in answers], [n for _a, n in answers],
                        "Réponses à la question de fin"))
    output.parent.mkdir(parents=True, exist_ok=True)
    SimpleDocTemplate(str(output), pagesize=A4, title=f"Fréquentation {month}",
                      leftMargin=2 * cm, rightMargin=2 * cm, topMargin=1.5 * cm,
                      bottomMargin=1.5 * cm).build(story)
    return summary.sessions
