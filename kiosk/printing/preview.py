"""A page of a resident's document as a picture, for the shell to show.

Residents want to see what they saved before printing it (is it the right
certificate?). The daemon renders it — the shell never opens the session's
files itself — with poppler's ``pdftoppm`` for PDFs and Pillow for pictures,
into memory only: a preview leaves nothing on disk.
"""

from __future__ import annotations

import io
import subprocess

from PIL import Image

from kiosk.printing.documents import Document

PREVIEW_PIXELS = 1100  # the long side: sharp on a 1280×800 screen, quick to render


class PreviewError(Exception):
    pass


def render_page(document: Document, page: int) -> bytes:
    """PNG bytes of ``page`` (1-based) of an inspected document."""
    if not 1 <= page <= document.pages:
        raise PreviewError("no_page")
    if document.kind == "pdf":
        try:
            result = subprocess.run(
                ["pdftoppm", "-png", "-f", str(page), "-l", str(page), "-singlefile",
                 "-scale-to", str(PREVIEW_PIXELS), str(document.path)],
                capture_output=True, timeout=30, check=True)
        except (OSError, subprocess.SubprocessError):
            raise PreviewError("render_failed") from None
        return result.stdout
    with Image.open(document.path) as image:
        image = image.convert("RGB")
        image.thumbnail((PREVIEW_PIXELS, PREVIEW_PIXELS))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
