"""What a file handed to the printer really is, and how many pages it makes.

Pages are counted before anything reaches CUPS, so the per-session quota is
enforced up front and a corrupt file is refused with a message a resident
understands, instead of jamming the queue.

A resident's file is hostile until proven otherwise: whatever a page saved, or a
process running as the resident's user swapped in. So a file is opened once,
never through a link and never blocking on a FIFO, and must be a regular file on
that descriptor; everything after (type, pages, preview, print) reads that
descriptor, never the name again. Its size is capped before anything parses it,
and parsing happens in a confined child (``kiosk.printing.confined``): a sparse
6 GB "PDF" or a decompression bomb costs a refusal, not the daemon.
"""

from __future__ import annotations

import os
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kiosk.printing import confined

Kind = Literal["pdf", "png", "jpeg"]
MIME_TYPES = {"pdf": "application/pdf", "png": "image/png", "jpeg": "image/jpeg"}

# The documented maxima (README, « Mes documents »). 50 MB is the daemon's upload
# limit too, and far above any certificate or tax notice; portals' own files are
# a few MB. 40 million pixels is an A4 page scanned at 600 dpi (35 Mpx) with room
# to spare, and decodes in about 160 MB: well inside the child's memory limit.
MAX_DOCUMENT_BYTES = confined.MAX_DOCUMENT_BYTES
MAX_PIXELS = confined.MAX_PIXELS

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


class UnprintableDocument(Exception):
    """``code`` tells why: corrupt, unsupported, encrypted, empty or too_large."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Document:
    kind: Kind
    pages: int
    size: int

    @property
    def mime_type(self) -> str:
        return MIME_TYPES[self.kind]


def open_resident(directory: Path, name: str) -> int:
    """A descriptor on the regular file ``name`` directly inside ``directory``.

    Relative to the folder's own descriptor, with ``O_NOFOLLOW`` (a link is refused,
    not followed) and ``O_NONBLOCK`` (a FIFO cannot hold the calling thread until a
    writer shows up); ``FileNotFoundError`` for anything but a regular file. The
    caller closes it.
    """
    if not name or "/" in name or name in (".", ".."):
        raise FileNotFoundError(name)
    folder = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        try:
            fd = os.open(name, _OPEN_FLAGS, dir_fd=folder)
        except OSError as error:  # ELOOP for a link, ENXIO for a socket, EACCES…
            raise FileNotFoundError(name) from error
    finally:
        os.close(folder)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FileNotFoundError(name)
    os.set_blocking(fd, True)  # a regular file: reads must not return EAGAIN
    return fd


# What the child said about a file, by identity and version (no name: nothing a
# resident chose is kept). A write changes ctime, which nobody can set back.
_cache: OrderedDict[tuple[int, ...], Document | str] = OrderedDict()
_cache_lock = threading.Lock()
CACHE_ENTRIES = 256


def inspect(fd: int) -> Document:
    """Identify the file on ``fd`` by its content (never its name) and count its pages."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise UnprintableDocument("unsupported")
    if info.st_size == 0:
        raise UnprintableDocument("empty")
    if info.st_size > MAX_DOCUMENT_BYTES:  # before a single byte is parsed
        raise UnprintableDocument("too_large")
    key = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)
    with _cache_lock:
        known = _cache.get(key)
    if known is None:
        try:
            answer = confined.inspect(fd)
            known = Document(answer["kind"], int(answer["pages"]), info.st_size)
        except confined.Refused as refusal:
            known = refusal.code
        with _cache_lock:
            _cache[key] = known
            while len(_cache) > CACHE_ENTRIES:
                _cache.popitem(last=False)
    if isinstance(known, str):
        raise UnprintableDocument(known)
    return known


def copy_to(fd: int, directory: Path, name: str) -> Path:
    """Copy the file on ``fd`` to a new file of the daemon's (never over an existing one)."""
    target = directory / name
    out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                  0o640)
    try:
        offset, size = 0, os.fstat(fd).st_size
        while offset < min(size, MAX_DOCUMENT_BYTES):
            sent = os.sendfile(out, fd, offset, min(size, MAX_DOCUMENT_BYTES) - offset)
            if sent == 0:
                break
            offset += sent
    except OSError:
        os.close(out)
        target.unlink(missing_ok=True)
        raise
    os.close(out)
    return target
