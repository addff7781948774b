"""Parsing and drawing residents' files in a child process with hard limits.

pypdf, Pillow and poppler are big parsers fed by whatever a page saved: a 650 KB
PNG near Pillow's pixel limit decodes into 1.4 GB, a hostile PDF can loop or
allocate without end. Inside the daemon that would take every resident's session
down with it; here it kills one child. The child gets the file as its stdin (the
descriptor the daemon opened, never a name), sets its own limits before it
imports a parser — address space, CPU time, no core, no file writes — and the
daemon waits a bounded time. ``pdftoppm`` is exec'd by that child, so it inherits
the same limits. At most ``SLOTS`` children run at once, so that the daemon's
unit (``MemoryMax=``) has room for them.

Run as ``python -m kiosk.printing.confined inspect`` or ``render PAGE KIND``.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import threading

MAX_DOCUMENT_BYTES = 50 * 1024 * 1024
MAX_PIXELS = 40_000_000
PREVIEW_PIXELS = 1100  # the long side: sharp on a 1280×800 screen, quick to render

# 512 MB of address space: Python with pypdf and Pillow maps ~60 MB, a 40 Mpx
# picture ~160 MB twice over while converted; poppler draws an A4 page in far less.
CHILD_MEMORY_BYTES = 512 * 1024 * 1024
CHILD_CPU_SECONDS = 10
CHILD_WALL_SECONDS = 15  # a child blocked on something else than the CPU
SLOTS = 2
_slots = threading.BoundedSemaphore(SLOTS)

OUT_OF_LIMITS = 3  # the child's exit status when it ran out of memory


class Refused(Exception):
    """``code``: corrupt, unsupported, encrypted, empty or too_large."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


def _run(args: list[str], fd: int) -> bytes:
    env = {key: os.environ[key] for key in ("PATH", "LANG", "PYTHONPATH") if key in os.environ}
    env["KIOSK_CONFINED_LIMITS"] = f"{CHILD_MEMORY_BYTES},{CHILD_CPU_SECONDS}"  # as set now
    with _slots:
        try:
            done = subprocess.run([sys.executable, "-s", "-m", "kiosk.printing.confined", *args],
                                  stdin=fd, capture_output=True, env=env, close_fds=True,
                                  cwd="/", timeout=CHILD_WALL_SECONDS)
        except subprocess.TimeoutExpired:  # run() kills the child before raising
            raise Refused("too_large") from None
        except OSError:
            raise Refused("corrupt") from None
    os.lseek(fd, 0, os.SEEK_SET)  # the child shared our offset
    if done.returncode == 0:
        return done.stdout
    if done.returncode == OUT_OF_LIMITS or done.returncode < 0:  # out of memory, CPU or killed
        raise Refused("too_large")
    raise Refused("corrupt")


def inspect(fd: int) -> dict[str, object]:
    """``{"kind", "pages"}`` of the file on ``fd``; ``Refused`` otherwise."""
    answer = json.loads(_run(["inspect"], fd) or b"{}")
    if "error" in answer:
        raise Refused(str(answer["error"]))
    return answer


def render(fd: int, kind: str, page: int) -> bytes:
    """PNG bytes of ``page`` (1-based) of the inspected file on ``fd``."""
    return _run(["render", str(page), kind], fd)


# -- the child's side ------------------------------------------------------------------

def _limit() -> None:
    memory, cpu = CHILD_MEMORY_BYTES, CHILD_CPU_SECONDS
    if os.environ.get("KIOSK_CONFINED_LIMITS"):  # the parent's values (tests lower them)
        memory, cpu = (int(v) for v in os.environ["KIOSK_CONFINED_LIMITS"].split(","))
    for which, value in ((resource.RLIMIT_AS, min(memory, CHILD_MEMORY_BYTES)),
                         (resource.RLIMIT_CPU, min(cpu, CHILD_CPU_SECONDS)),
                         (resource.RLIMIT_CORE, 0), (resource.RLIMIT_FSIZE, 0),
                         (resource.RLIMIT_NOFILE, 64)):
        resource.setrlimit(which, (value, value))


def _stdin() -> io.BufferedReader:
    handle = os.fdopen(0, "rb", closefd=False)
    handle.seek(0)
    return handle


def _pdf_pages() -> int:
    from pypdf import PdfReader
    reader = PdfReader(_stdin(), strict=False)
    if reader.is_encrypted and not reader.decrypt(""):
        raise Refused("encrypted")
    pages = len(reader.pages)
    for page in reader.pages:  # touch every page: a truncated file fails here
        page.mediabox  # noqa: B018
    if pages == 0:
        raise Refused("empty")
    return pages


def _open_image():
    from PIL import Image, UnidentifiedImageError
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow refuses beyond this before decoding
    try:
        image = Image.open(_stdin())
    except UnidentifiedImageError:
        raise Refused("unsupported") from None
    except Image.DecompressionBombError:  # over twice the limit: refused from the header
        raise Refused("too_large") from None
    if image.format not in ("PNG", "JPEG"):
        raise Refused("unsupported")
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise Refused("too_large")
    return image


def _inspect() -> dict[str, object]:
    head = os.pread(0, 1024, 0)
    if not head:
        raise Refused("empty")
    if b"%PDF-" in head:
        return {"kind": "pdf", "pages": _pdf_pages()}
    image = _open_image()
    kind = image.format.lower()
    image.load()  # decodes every pixel: catches truncated images
    return {"kind": kind, "pages": 1}


def _render(page: int, kind: str) -> None:
    if kind == "pdf":  # poppler reads our stdin again through /proc (same file, no name)
        os.execvp("pdftoppm", ["pdftoppm", "-png", "-f", str(page), "-l", str(page),
                               "-singlefile", "-scale-to", str(PREVIEW_PIXELS), "/proc/self/fd/0"])
    image = _open_image()
    image.draft("RGB", (PREVIEW_PIXELS, PREVIEW_PIXELS))  # JPEG: decode at a smaller scale
    image = image.convert("RGB")
    image.thumbnail((PREVIEW_PIXELS, PREVIEW_PIXELS))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    sys.stdout.buffer.write(buffer.getvalue())


def main(argv: list[str]) -> int:
    _limit()
    try:
        if argv[0] == "inspect":
            try:
                answer = _inspect()
            except Refused as refusal:
                answer = {"error": refusal.code}
            except MemoryError:
                raise
            except Exception:  # pypdf and Pillow raise many kinds on hostile files
                answer = {"error": "corrupt"}
            sys.stdout.write(json.dumps(answer))
            return 0
        _render(int(argv[1]), argv[2])
        return 0
    except MemoryError:
        return OUT_OF_LIMITS
    except Refused as refusal:
        return OUT_OF_LIMITS if refusal.code == "too_large" else 1
    except Exception:
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
