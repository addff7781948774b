"""The agent's test page: proves paper, ink and the whole print path in one sheet."""

from __future__ import annotations

import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from kiosk.config import SiteConfig


def make_test_page(folder: Path, config: SiteConfig) -> Path:
    page = Image.new("RGB", (1240, 1754), "white")
    draw = ImageDraw.Draw(page)
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 48)
    except OSError:
        font = ImageFont.load_default()
    lines = ["PLUS kiosk — page de test", config.site.name, config.site.commune,
             time.strftime("%d/%m/%Y %H:%M"), f"File d'impression : {config.printing.queue}"]
    for number, line in enumerate(lines):
        draw.text((100, 120 + number * 90), line, fill="black", font=font)
    for index, color in enumerate(["black", "red", "green", "blue"]):
        draw.rectangle((100 + index * 260, 700, 320 + index * 260, 920), fill=color)
    path = folder / "test-page.png"
    page.save(path)
    return path
