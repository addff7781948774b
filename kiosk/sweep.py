"""Whole-system canary sweep: prove the first promise for the machine, not folder by folder.

The wipe checks the places it knows (the session folders, the print queue, the
clipboard). This module checks the places it does *not* know: a test or an agent
does one resident session carrying a unique canary string, ends it, and then
searches every writable place of the machine for that canary — in plain and in the
encodings a program would use when it stores text — so that a copy kept by some
other program (CUPS's filters, a log, a cache) is found even if nobody thought of it.

What is searched, and why:

* file contents, in UTF-8, UTF-16 (LE and BE), URL-encoded (``%XX`` and ``+``) and
  base64 (standard and URL-safe, at the three alignments a canary can have inside a
  longer encoded text); the textual forms are matched ignoring ASCII case (a program
  may capitalise, ``%2f`` and ``%2F`` are the same);
* the compressed streams of PDFs (every ``stream … endstream`` inflated as zlib, then
  as raw deflate), because a PDF's text lives there — a plain search never finds it;
* gzip, xz, bzip2 and zstd files (rotated logs, compressed journals), decompressed;
* file and folder *names* (a download keeps the name the portal suggested);
* the journal through ``journalctl -o export`` (the files are compressed field by
  field: reading them raw proves nothing).

Bounded and safe, because an agent runs it as root on a terminal: symbolic links are
never followed (every directory and file is opened relative to its parent with
``O_NOFOLLOW``), devices, FIFOs and sockets are skipped, /proc and /sys are never
read, each file is searched up to a size cap, decompression has an output cap, and
the whole sweep has a time budget — a sweep that ran out of time is *not* clean.

A hit is reported as (place, encoding) only: the matched bytes around the canary are
never shown, and a path component that itself carries the canary is masked, because
whatever surrounds a canary is the resident's data.
"""

from __future__ import annotations

import base64
import bz2
import errno
import gzip
import lzma
import os
import pwd
import re
import shutil
import stat
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import quote, quote_plus

MAX_FILE_BYTES = 64 * 1024 * 1024        # searched per file; a longer file counts as truncated
MAX_INFLATED_BYTES = 64 * 1024 * 1024    # decompressed output per file (bombs stay bombs)
MAX_JOURNAL_BYTES = 512 * 1024 * 1024    # read from journalctl per journal
JOURNAL_PREFIX = "journal:"
# The places of a terminal where a resident's data could land (besides the journal).
TERMINAL_DIRS = ("/tmp", "/var/tmp", "/var", "/run", "/dev/shm")
RESIDENT_USERS = ("kiosk", "kiosk-browser")
NEVER_READ = ("/proc", "/sys")
MASK = "<name carrying the canary>"


@dataclass(frozen=True, order=True)
class Hit:
    place: str      # a path (masked where a name carries the canary) or "journal:NAME"
    encoding: str   # e.g. "utf-8", "utf-16-le", "base64", "pdf-stream:utf-8", "name:utf-8"


@dataclass
class Report:
    hits: list[Hit] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    truncated: int = 0          # files longer than the cap: searched up to it
    unreadable: int = 0         # could not be opened or listed (a race, a permission)
    special: int = 0            # devices, FIFOs, sockets: skipped
    unfinished: list[str] = field(default_factory=list)  # places the time budget cut short

    @property
    def clean(self) -> bool:
        """Proven clean: no hit, and every place searched to the end."""
        return not self.hits and not self.unfinished

    def add(self, place: str, encodings: Iterable[str]) -> None:
        for encoding in encodings:
            hit = Hit(place, encoding)
            if hit not in self.hits:
                self.hits.append(hit)


def encodings(canary: str) -> dict[str, bytes]:
    """The byte forms a program would store ``canary`` in, by encoding name.

    Base64 encodes three bytes as four characters, so inside a longer encoded text
    the canary starts at one of three alignments; for each, only the characters that
    depend on the canary's bytes alone are kept.
    """
    if not canary:
        raise ValueError("empty canary")
    raw = canary.encode("utf-8")
    forms = {"utf-8": raw, "utf-16-le": canary.encode("utf-16-le"),
             "utf-16-be": canary.encode("utf-16-be")}
    for name, text in (("url", quote(canary, safe="")), ("url+", quote_plus(canary)),
                       ("url-all", "".join(f"%{byte:02X}" for byte in raw))):
        if text.encode() not in forms.values():
            forms[name] = text.encode()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        start, end = -(-8 * shift // 6), 8 * (shift + len(raw)) // 6
        core = encoded[start:end]
        forms[f"base64@{shift}"] = core
        safe = core.replace(b"+", b"-").replace(b"/", b"_")
        if safe != core:
            forms[f"base64url@{shift}"] = safe
    return forms


class Matcher:
    """Finds which encodings of the canary occur in some bytes."""

    def __init__(self, canary: str):
        self.forms = encodings(canary)
        self._patterns = {
            name: re.compile(re.escape(form), 0 if name.startswith("base64") else re.IGNORECASE)
            for name, form in self.forms.items()}

    def find(self, data: bytes | memoryview) -> list[str]:
        found = []
        for name, pattern in self._patterns.items():
            if pattern.search(data):
                found.append(name.split("@")[0])  # the alignment is not worth reporting
        return sorted(set(found))

    @property
    def longest(self) -> int:
        return max(len(form) for form in self.forms.values())


# -- decompression --------------------------------------------------------------------

_STREAM = re.compile(rb"stream\r?\n")


def _inflate(data: bytes, wbits: int, budget: int) -> bytes | None:
    decompressor = zlib.decompressobj(wbits)
    try:
        out = decompressor.decompress(data, budget)
    except zlib.error:
        return None
    return out or None


def pdf_streams(data: bytes, budget: int = MAX_INFLATED_BYTES) -> Iterator[bytes]:
    """Every compressed stream of a PDF (or of a fragment of one), inflated.

    Each ``stream`` keyword is tried as zlib, then as raw deflate, then under
    ASCII85 (``/Filter [/ASCII85Decode /FlateDecode]``); what is not a deflate stream
    fails within a few bytes. Output stops at ``budget`` bytes in all.
    """
    for match in _STREAM.finditer(data):
        if budget <= 0:
            return
        end = data.find(b"endstream", match.end())
        body = data[match.end():end if end >= 0 else len(data)]
        for encoded in (body, _ascii85(body)):
            out = encoded and (_inflate(encoded, zlib.MAX_WBITS, budget) or
                               _inflate(encoded, -zlib.MAX_WBITS, budget))
            if out:
                budget -= len(out)
                yield out
                break


def _ascii85(body: bytes) -> bytes | None:
    """A stream under ``/ASCII85Decode`` (reportlab's default), decoded; None if not one."""
    end = body.find(b"~>")
    if end < 0:
        return None
    try:
        return base64.a85decode(body[:end].strip())
    except ValueError:
        return None


def _zstd(data: bytes, budget: int) -> bytes | None:
    program = shutil.which("zstd")
    if program is None:
        return None
    try:
        done = subprocess.run([program, "-dcq"], input=data, capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout[:budget] or None


def decompressed(data: bytes, budget: int = MAX_INFLATED_BYTES) -> tuple[str, bytes] | None:
    """A gzip, xz, bzip2 or zstd file's contents (up to ``budget``), with its kind."""
    try:
        if data[:2] == b"\x1f\x8b":
            return "gzip", zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data, budget)
        if data[:6] == b"\xfd7zXZ\x00":
            return "xz", lzma.LZMADecompressor().decompress(data, budget)
        if data[:3] == b"BZh":
            return "bzip2", bz2.BZ2Decompressor().decompress(data, budget)
        if data[:4] == b"\x28\xb5\x2f\xfd":
            out = _zstd(data, budget)
            return ("zstd", out) if out else None
    except (zlib.error, lzma.LZMAError, OSError, EOFError, ValueError):
        return None
    return None


def search_bytes(data: bytes, matcher: Matcher) -> list[str]:
    """The encodings of the canary in ``data``, its PDF streams and its decompressed form."""
    found = set(matcher.find(data))
    if b"stream" in data:
        for inflated in pdf_streams(data):
            found.update(f"pdf-stream:{name}" for name in matcher.find(inflated))
    unpacked = decompressed(data)
    if unpacked is not None:
        kind, inner = unpacked
        found.update(f"{kind}:{name}" for name in search_bytes_flat(inner, matcher))
    return sorted(found)


def search_bytes_flat(data: bytes, matcher: Matcher) -> list[str]:
    """As ``search_bytes`` inside a compressed file: PDF streams, but no second unpacking."""
    found = set(matcher.find(data))
    if b"stream" in data:
        for inflated in pdf_streams(data):
            found.update(f"pdf-stream:{name}" for name in matcher.find(inflated))
    return sorted(found)


# -- walking the file system ------------------------------------------------------------

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | \
    getattr(os, "O_NOCTTY", 0)


class Sweep:
    """One sweep: a canary, the places to search, what to leave out, and its limits."""

    def __init__(self, canary: str, *, exclude: Iterable[str | Path] = (),
                 max_file_bytes: int = MAX_FILE_BYTES, time_budget: float = 600.0,
                 journalctl: str = "journalctl"):
        self.matcher = Matcher(canary)
        # Never: /proc, /sys, and the kiosk's own code and virtualenv (they carry no
        # resident data, only the test's or the agent's canary in memory).
        self.exclude = {os.path.realpath(p) for p in (*NEVER_READ, *exclude)}
        self.max_file_bytes = max_file_bytes
        self.time_budget = time_budget
        self.journalctl = journalctl
        self.report = Report()
        self._deadline = 0.0

    def _shown(self, path: str) -> str:
        """``path`` with every component that carries the canary masked."""
        parts = path.split("/")
        return "/".join(MASK if part and self.matcher.find(part.encode(
            "utf-8", "surrogateescape")) else part for part in parts)

    def _out_of_time(self) -> bool:
        return time.monotonic() > self._deadline

    def run(self, places: Iterable[str]) -> Report:
        self._deadline = time.monotonic() + self.time_budget
        for place in _outermost(places):
            if self._out_of_time():
                self.report.unfinished.append(place)
            elif place.startswith(JOURNAL_PREFIX):
                self._journal(place)
            else:
                self._place(place)
        self.report.hits.sort()
        return self.report

    def _place(self, place: str) -> None:
        path = os.path.abspath(place)
        if self._excluded(path):
            return
        try:
            info = os.lstat(path)
        except OSError:
            return  # a place that does not exist on this machine holds nothing
        if stat.S_ISDIR(info.st_mode):
            try:
                fd = os.open(path, _DIR_FLAGS)
            except OSError:
                self.report.unreadable += 1
                return
            if not self._directory(fd, path):
                self.report.unfinished.append(place)
        elif stat.S_ISREG(info.st_mode):
            parent, name = os.path.split(path)
            fd = os.open(parent or "/", _DIR_FLAGS)
            try:
                self._file(fd, name, path)
            finally:
                os.close(fd)
        else:
            self.report.special += 1

    def _excluded(self, path: str) -> bool:
        return any(path == e or path.startswith(e.rstrip("/") + "/") for e in self.exclude)

    def _directory(self, fd: int, path: str) -> bool:
        """Search the directory open as ``fd`` (closed here); False when out of time."""
        try:
            with os.scandir(fd) as listing:
                entries = [(entry.name, entry.is_dir(follow_symlinks=False),
                            entry.is_file(follow_symlinks=False),
                            entry.is_symlink()) for entry in listing]
        except OSError:
            self.report.unreadable += 1
            os.close(fd)
            return True
        try:
            for name, is_dir, is_file, is_link in entries:
                if self._out_of_time():
                    return False
                child = os.path.join(path, name)
                if self._excluded(child):
                    continue
                found = self.matcher.find(os.fsencode(name))
                if found:
                    self.report.add(self._shown(path), (f"name:{e}" for e in found))
                if is_link:
                    continue  # its target's name was just checked; it is never followed
                if is_dir:
                    try:
                        child_fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
                    except OSError:
                        self.report.unreadable += 1
                        continue
                    if not self._directory(child_fd, child):
                        return False
                elif is_file:
                    self._file(fd, name, child)
                else:
                    self.report.special += 1
            return True
        finally:
            os.close(fd)

    def _file(self, dir_fd: int, name: str, path: str) -> None:
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOENT):
                self.report.unreadable += 1
            return
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):  # swapped for a FIFO or device meanwhile
                self.report.special += 1
                return
            if info.st_size > self.max_file_bytes:
                self.report.truncated += 1
            chunks, left = [], self.max_file_bytes
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            data = b"".join(chunks)
        except OSError:
            self.report.unreadable += 1
            return
        finally:
            os.close(fd)
        self.report.files += 1
        self.report.bytes += len(data)
        found = search_bytes(data, self.matcher)
        if found:
            self.report.add(self._shown(path), found)

    def _journal(self, place: str) -> None:
        """Read what ``journalctl -o export`` prints (the files are compressed per field)."""
        namespace = place[len(JOURNAL_PREFIX):]
        program = shutil.which(self.journalctl)
        if program is None:
            return  # no journal on this machine
        command = [program, "-o", "export", "--no-pager", "-q"]
        if namespace != "system":
            command.append(f"--namespace={namespace}")
        try:
            process = subprocess.Popen(command, stdout=subprocess.PIPE,
                                       stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        except OSError:
            self.report.unreadable += 1
            return
        overlap, tail, total, found = self.matcher.longest, b"", 0, set()
        assert process.stdout is not None
        try:
            while True:
                if self._out_of_time():
                    self.report.unfinished.append(place)
                    break
                chunk = process.stdout.read(1 << 20)
                if not chunk:
                    break
                total += len(chunk)
                found.update(self.matcher.find(tail + chunk))
                tail = chunk[-overlap:]
                if total >= MAX_JOURNAL_BYTES:
                    self.report.truncated += 1
                    break
        finally:
            process.kill()
            process.wait()
        self.report.bytes += total
        self.report.add(place, sorted(found))


def _outermost(places: Iterable[str]) -> list[str]:
    """The places without duplicates and without those inside another one (/var/tmp in
    /var): each file is searched, and counted, once."""
    unique: list[str] = []
    for place in places:
        if place.startswith(JOURNAL_PREFIX):
            if place not in unique:
                unique.append(place)
            continue
        place = os.path.abspath(place)
        if place not in unique:
            unique.append(place)
    dirs = [p for p in unique if not p.startswith(JOURNAL_PREFIX)]
    return [p for p in unique if p.startswith(JOURNAL_PREFIX) or not any(
        other != p and (p.startswith(other.rstrip("/") + "/")) for other in dirs)]


def resident_homes(users: Iterable[str] = RESIDENT_USERS) -> list[str]:
    """The existing home folders of the resident users (the browser's may be none)."""
    homes = []
    for user in users:
        try:
            home = pwd.getpwnam(user).pw_dir
        except KeyError:
            continue
        if home and os.path.isdir(home) and home != "/":
            homes.append(home)
    return homes


def terminal_places(users: Iterable[str] = RESIDENT_USERS) -> list[str]:
    """Every writable place of a terminal where a resident's data could land."""
    return [*TERMINAL_DIRS, *resident_homes(users), f"{JOURNAL_PREFIX}plus-kiosk",
            f"{JOURNAL_PREFIX}system"]


def own_code() -> list[str]:
    """The kiosk's code and virtualenv: never searched (they hold no resident data)."""
    import kiosk
    return [str(Path(kiosk.__file__).resolve().parent), sys.prefix]


def sweep(canary: str, places: Iterable[str], *, exclude: Iterable[str | Path] = (),
          max_file_bytes: int = MAX_FILE_BYTES, time_budget: float = 600.0) -> Report:
    """Search ``places`` (folders, files, or ``journal:NAME`` / ``journal:system``) for
    ``canary``; the kiosk's own code is always left out."""
    return Sweep(canary, exclude=[*own_code(), *exclude], max_file_bytes=max_file_bytes,
                 time_budget=time_budget).run(places)


# -- the agent's check: ``kioskctl sweep`` ------------------------------------------------

MIN_CANARY = 8  # a shorter text turns up by chance somewhere on a disk


def command(canary: str, places: Iterable[str], users: Iterable[str],
            time_budget: float = 600.0) -> int:
    """``kioskctl sweep``: 0 clean, 1 found (or not searched to the end), 2 usage error.

    Prints each hit as place and encoding, never what surrounds the canary."""
    from kiosk.i18n import _
    canary = canary.strip()
    if os.geteuid() != 0:
        print(_("The sweep must run as root: the places it searches belong to several "
                "users."), file=sys.stderr)
        return 2
    if len(canary) < MIN_CANARY:
        print(_("The canary must be at least {count} characters long: a shorter one "
                "would be found by chance.").format(count=MIN_CANARY), file=sys.stderr)
        return 2
    places = list(places) or terminal_places(users)
    for place in places:
        if not place.startswith(JOURNAL_PREFIX) and not os.path.lexists(place):
            print(_("No such place: {place}").format(place=place), file=sys.stderr)
            return 2
    report = sweep(canary, places, time_budget=time_budget)
    for hit in report.hits:
        print(_("FOUND: {place} ({encoding})").format(place=hit.place, encoding=hit.encoding))
    if report.truncated:
        print(_("{count} file(s) longer than {megabytes} MB were searched up to that "
                "size only.").format(count=report.truncated,
                                     megabytes=MAX_FILE_BYTES // (1024 * 1024)))
    for place in report.unfinished:
        print(_("NOT FINISHED within {seconds} s: {place} — not proven clean.").format(
            seconds=int(time_budget), place=place))
    if report.hits:
        print(_("The canary was found in {count} place(s): something of the test session "
                "survived its end.").format(count=len({h.place for h in report.hits})))
    elif report.clean:
        print(_("Clean: the canary was found nowhere ({files} file(s), {megabytes} MB "
                "searched).").format(files=report.files,
                                       megabytes=round(report.bytes / (1024 * 1024))))
    return 0 if report.clean else 1
