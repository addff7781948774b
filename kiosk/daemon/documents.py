"""« Mes documents »: the session's downloads and scans, listed, shown and printed.

Kept apart from the routes (``kiosk.daemon.app``) because every step here touches a
file the resident's user controls. Each file is opened once (``open_resident``:
no link followed, no FIFO waited on, a regular file or nothing) and that descriptor
is used for the size check, the confined inspection, the preview and the copy the
print job keeps. Names go back to the shell that asked for them, never to a log.
"""

from __future__ import annotations

import os
import secrets
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from kiosk.daemon.errors import ApiError, tr
from kiosk.i18n import N_
from kiosk.printing.documents import (MAX_DOCUMENT_BYTES, MAX_PIXELS, Document,
                                      UnprintableDocument, copy_to, inspect, open_resident)
from kiosk.printing.preview import PreviewError, render_page
from kiosk.session import Session, iso_utc

DOCUMENT_FOLDERS = ("downloads", "scans")
MAX_LISTED = 50  # the newest ones: a folder of 100,000 files must not cost 100,000 children
DOCUMENT_ERRORS = {
    "corrupt": N_("This document is damaged: it cannot be printed."),
    "unsupported": N_("Only PDF documents and PNG or JPEG pictures can be printed."),
    "encrypted": N_("This document is protected by a password: it cannot be printed."),
    "empty": N_("This document is empty: there is nothing to print."),
    "too_large": N_("This document is too large for the kiosk (more than {megabytes} MB or "
                    "{megapixels} million pixels): it cannot be shown or printed."),
}


def document_error(code: str) -> ApiError:
    """422 ``document_<code>`` with the reason in the resident's language."""
    message = tr(DOCUMENT_ERRORS.get(code, DOCUMENT_ERRORS["corrupt"])).format(
        megabytes=MAX_DOCUMENT_BYTES // (1024 * 1024), megapixels=MAX_PIXELS // 1_000_000)
    return ApiError(422, f"document_{code}", message)


def _unknown() -> ApiError:
    return ApiError(404, "unknown_document", tr("This document does not exist."))


@contextmanager
def opened(session: Session, folder: str, name: str) -> Iterator[int]:
    """The descriptor of one of the session's documents; 404 for anything else."""
    if folder not in DOCUMENT_FOLDERS or name.startswith("."):
        raise _unknown()
    try:
        fd = open_resident(session.dir(folder), name)
    except OSError:
        raise _unknown() from None
    try:
        yield fd
    finally:
        os.close(fd)


def inspected(fd: int) -> Document:
    try:
        return inspect(fd)
    except UnprintableDocument as error:
        raise document_error(error.code) from None


def listing(session: Session) -> list[dict[str, Any]]:
    """What the resident saved from the portals and scanned, newest first."""
    candidates = []
    for folder in DOCUMENT_FOLDERS:
        with os.scandir(session.dir(folder)) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(info.st_mode):
                    candidates.append((info.st_mtime, folder, entry.name))
    found = []
    for _, folder, name in sorted(candidates, reverse=True)[:MAX_LISTED]:
        try:
            with opened(session, folder, name) as fd:
                info = os.fstat(fd)
                entry: dict[str, Any] = {"folder": folder, "name": name, "size": info.st_size,
                                         "saved_at": iso_utc(info.st_mtime)}
                try:
                    document = inspect(fd)
                    entry.update(type=document.kind, pages=document.pages)
                except UnprintableDocument as error:
                    refusal = document_error(error.code)
                    entry.update(error=refusal.code, message=refusal.message)
        except ApiError:  # gone, or swapped for something else meanwhile
            continue
        found.append((info.st_mtime, entry))
    return [entry for _, entry in sorted(found, key=lambda f: -f[0])]


def page_png(session: Session, folder: str, name: str, page: int) -> bytes:
    with opened(session, folder, name) as fd:
        document = inspected(fd)
        try:
            return render_page(fd, document, page)
        except PreviewError as error:
            if error.code == "no_page":
                raise ApiError(404, "no_page", tr("This page does not exist.")) from None
            raise document_error(error.code) from None


def copy_for_print(session: Session, folder: str, name: str) -> Path:
    """The print keeps its own copy (as an upload would), made from the checked descriptor.

    The copy is inspected again before it is printed: the resident's user may still
    write into its own file between the check and the copy, never into ours.
    """
    with opened(session, folder, name) as fd:
        inspected(fd)  # a refusal before copying anything (and never 6 GB of it)
        return copy_to(fd, session.dir("prints"), secrets.token_hex(8))


def inspect_print_file(target: Path) -> Document:
    """A file the daemon itself put in ``prints/`` (an upload, a guide), checked the same way."""
    try:
        fd = open_resident(target.parent, target.name)
    except OSError:
        raise document_error("corrupt") from None
    try:
        return inspected(fd)
    finally:
        os.close(fd)
