"""What a file handed to the printer really is, and how many pages it makes.

Pages are counted before anything reaches CUPS, so the per-session quota is
enforced up front and a corrupt file is refused with a message a resident
understands, instead of jamming the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from PIL import Image, UnidentifiedImageError
from pypdf import PdfReader
from pypdf.errors import PdfReadError

Kind = Literal["pdf", "png", "jpeg"]
IMAGE_FORMATS: dict[str, Kind] = {"PNG": "png", "JPEG": "jpeg"}


class UnprintableDocument(Exception):
    """``code`` tells why: corrupt, unsupported, encrypted or empty."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Document:
    path: Path
    kind: Kind
    pages: int

    @property
    def mime_type(self) -> str:
        return {"pdf": "application/pdf", "png": "image/png", "jpeg": "image/jpeg"}[self.kind]


def _pdf_pages(path: Path) -> int:
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnprintableDocument("encrypted")
        pages = len(reader.pages)
        for page in reader.pages:  # touch every page: a truncated file fails here
            page.mediabox  # noqa: B018
    except UnprintableDocument:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AttributeError,
            RecursionError, IndexError, NotImplementedError):
        raise UnprintableDocument("corrupt") from None
    except Exception:  # pypdf raises many kinds on hostile files
        raise UnprintableDocument("corrupt") from None
    if pages == 0:
        raise UnprintableDocument("empty")
    return pages


def inspect(path: Path) -> Document:
    """Identify ``path`` by its content (never by its name) and count its pages."""
    with open(path, "rb") as handle:
        head = handle.read(1024)
    if not head:
        raise UnprintableDocument("empty")
    if b"%PDF-" in head:
        return Document(path, "pdf", _pdf_pages(path))
    try:
        with Image.open(path) as image:
            kind = IMAGE_FORMATS.get(image.format or "")
            if kind is None:
                raise UnprintableDocument("unsupported")
            image.load()  # decodes every pixel: catches truncated images
    except UnprintableDocument:
        raise
    except UnidentifiedImageError:
        raise UnprintableDocument("unsupported") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise UnprintableDocument("corrupt") from None
    return Document(path, kind, 1)
