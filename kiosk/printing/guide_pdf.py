"""A guide as a sheet of paper the resident takes home.

Printed large (14 pt and more), in the resident's language, with a checkbox per
document to gather, the portal's button words in bold, and a QR code to the
public copy so the guide can be followed again at home on a phone. The text is
real PDF text (not pictures) so a screen reader — and the tests — can read it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import qrcode
from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (Image, KeepTogether, ListFlowable, ListItem, Paragraph,
                                SimpleDocTemplate, Spacer, Table, TableStyle)
from xml.sax.saxutils import escape

from kiosk.guides.library import Guide, pick

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu",)


def _fonts() -> tuple[str, str]:
    """DejaVu when installed (every Creole and French letter); Helvetica otherwise."""
    for directory in FONT_DIRS:
        regular, bold = Path(directory) / "DejaVuSans.ttf", Path(directory) / "DejaVuSans-Bold.ttf"
        if regular.is_file() and bold.is_file():
            if "KioskSans" not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont("KioskSans", str(regular)))
                pdfmetrics.registerFont(TTFont("KioskSans-Bold", str(bold)))
            return "KioskSans", "KioskSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def public_url(guide: Guide, base_url: str) -> str:
    return f"{base_url}{guide.id}.html" if base_url else ""


def _qr_image(url: str) -> Image:
    buffer = io.BytesIO()
    qrcode.make(url, border=2).save(buffer, format="PNG")
    buffer.seek(0)
    return Image(buffer, width=38 * mm, height=38 * mm)


def render(guide: Guide, language: str, gettext: Callable[[str], str], *,
           base_url: str = "", site_name: str = "") -> bytes:
    """The guide as PDF bytes. ``gettext`` translates the sheet's own headings."""
    _ = gettext
    regular, bold = _fonts()
    body = ParagraphStyle("body", fontName=regular, fontSize=14, leading=19, alignment=TA_LEFT)
    small = ParagraphStyle("small", parent=body, fontSize=10, leading=13,
                           textColor=colors.HexColor("#333333"))
    heading = ParagraphStyle("heading", parent=body, fontName=bold, fontSize=17, leading=22,
                             spaceBefore=8, spaceAfter=4)
    title = ParagraphStyle("title", parent=body, fontName=bold, fontSize=24, leading=29,
                           spaceAfter=6)
    warning = ParagraphStyle("warning", parent=body, fontName=bold,
                             textColor=colors.HexColor("#8a1c00"))

    def text(value) -> str:
        return escape(pick(value, language))

    story: list = [Paragraph(text(guide.title), title), Paragraph(text(guide.summary), body),
                   Spacer(1, 3 * mm),
                   Paragraph(_("About {minutes} minutes.").format(minutes=guide.minutes), body)]

    story.append(Paragraph(_("Have at hand"), heading))
    story.append(ListFlowable(
        [ListItem(Paragraph(text(item), body), value="☐" if regular == "KioskSans" else "-")
         for item in guide.have_at_hand], bulletType="bullet", bulletFontName=regular,
        bulletFontSize=16, leftIndent=9 * mm))

    story.append(Paragraph(_("Steps"), heading))
    for number, step in enumerate(guide.steps, 1):
        block = [Paragraph(_("Step {number} of {total}").format(number=number,
                                                               total=len(guide.steps))
                           + " — " + text(step.title), ParagraphStyle(
                               "step", parent=body, fontName=bold)),
                 Paragraph(text(step.text), body)]
        if step.button:
            block.append(Paragraph(_("Button to touch:") + f" <b>« {escape(step.button)} »</b>",
                                   ParagraphStyle("button", parent=body, fontName=regular)))
        if step.warning:
            block.append(Paragraph("⚠ " + text(step.warning) if regular == "KioskSans"
                                   else "! " + text(step.warning), warning))
        block.append(Spacer(1, 3 * mm))
        story.append(KeepTogether(block))

    story.append(Paragraph(_("At the end"), heading))
    story.append(Paragraph(text(guide.end_text), body))

    url = public_url(guide, base_url)
    footer = [Paragraph(_("Official page: {url}").format(url=escape(guide.source)), small),
              Paragraph(_("Guide checked on {date}. Sites change: if a button differs, ask an "
                          "agent.").format(date=guide.last_checked), small)]
    if site_name:
        footer.append(Paragraph(_("Printed at a {site} kiosk.").format(site=escape(site_name)),
                                small))
    story.append(Spacer(1, 6 * mm))
    if url:
        table = Table([[_qr_image(url), [Paragraph(_("Read this guide again on your phone:"),
                                                   body), Paragraph(escape(url), small),
                                         Spacer(1, 2 * mm), *footer]]],
                      colWidths=[44 * mm, None])
        table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
        story.append(table)
    else:
        story.extend(footer)

    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=18 * mm, rightMargin=18 * mm,
                                 topMargin=16 * mm, bottomMargin=16 * mm,
                                 title=pick(guide.title, language), author=site_name or "PLUS",
                                 lang={"gcf": "fr"}.get(language, language))
    document.build(story)
    return buffer.getvalue()
