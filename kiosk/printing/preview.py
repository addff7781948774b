"""A page of a resident's document as a picture, for the shell to show.

Residents want to see what they saved before printing it (is it the right
certificate?). The daemon renders it — the shell never opens the session's
files itself — with poppler's ``pdftoppm`` for PDFs and Pillow for pictures,
into memory only: a preview leaves nothing on disk. Both run in the confined
child (``kiosk.printing.confined``), reading the descriptor the daemon opened.
"""

from __future__ import annotations

from kiosk.printing import confined
from kiosk.printing.documents import Document

PREVIEW_PIXELS = confined.PREVIEW_PIXELS


class PreviewError(Exception):
    """``code``: no_page, or a document refusal (too_large, corrupt) found while drawing."""

    def __init__(self, code: str = "no_page"):
        super().__init__(code)
        self.code = code


def render_page(fd: int, document: Document, page: int) -> bytes:
    """PNG bytes of ``page`` (1-based) of the document inspected on ``fd``."""
    if not 1 <= page <= document.pages:
        raise PreviewError("no_page")
    try:
        png = confined.render(fd, document.kind, page)
    except confined.Refused as refusal:
        raise PreviewError(refusal.code) from None
    if not png.startswith(b"\x89PNG"):
        raise PreviewError("corrupt")
    return png
