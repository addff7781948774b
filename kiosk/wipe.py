"""Making a resident's files disappear, and proving they did.

The wipe does not trust itself: after deleting, it sweeps the whole data
directory and reports anything that is not part of the fresh, empty layout
prepared for the next resident. The session manager refuses to start a new
session while such leftovers exist.

Layout of the data directory::

    data_dir/
      .state/                 the daemon's own bookkeeping for the session
      sessions/<random>/      one resident's files, under names nobody can guess
        downloads/ scans/ shares/ prints/ browser/

On a terminal ``sessions/`` is a size-capped tmpfs owned by the daemon
(``var-lib-plus\\x2dkiosk-sessions.mount``): a power cut leaves nothing on disk and
a resident filling it gets ENOSPC, not the terminal's disk.

Whatever the resident's programs leave there is hostile input: trees deeper than
Python's recursion limit, folders with mode 000, FIFOs, sockets, hard links,
links pointing outside, names that are not UTF-8. So the walk below keeps its own
stack and only one directory descriptor open at a time (a 3,000-level tree must
not need 3,000 descriptors), opens every folder with ``O_NOFOLLOW | O_DIRECTORY``
relative to its parent, deletes with ``unlink``/``rmdir`` relative to a
descriptor, gives folders it owns back the mode it needs, and never raises:
whatever it could not delete is found by the sweep and reported as a counted
kind (never a name: names are often a person's).

A folder made by *another* user (the browser's) with mode 000 cannot be opened
nor given a new mode by an unprivileged daemon. That user deletes its own files
first (``python -m kiosk.wipe DIR…``, run as the browser's user once its
processes are gone — ``ExecStopPost=`` of the browser unit); the daemon then
deletes the rest and the sweep says whether anything survived.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import sys
from collections import Counter
from pathlib import Path
from typing import Callable, Protocol


SESSION_SUBDIRS = ("downloads", "scans", "shares", "prints", "browser")
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class Cleaner(Protocol):
    """Something a session leaves outside its directories (jobs, links, clipboard…)."""

    name: str

    def wipe(self) -> None:
        """Remove what the session left; must not raise for "nothing to do"."""

    def leftovers(self) -> list[str]:
        """Describe what survived; empty when clean."""


def _identity(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _chmod_entry(parent: int, name: str, mode: int) -> bool:
    """Give ``name`` (never a link's target) ``mode``; False when not allowed."""
    try:
        os.chmod(name, mode, dir_fd=parent, follow_symlinks=False)
        return True
    except (OSError, NotImplementedError):
        return False


def _open_dir(parent: int, name: str, fix_modes: bool) -> int | None:
    """A descriptor on folder ``name`` of ``parent``, which we may list and empty.

    A folder we own with a mode that locks us out (000, 500…) gets 0700 back;
    another user's locked folder stays closed (None)."""
    for attempt in (0, 1):
        try:
            fd = os.open(name, _OPEN_DIR, dir_fd=parent)
        except PermissionError:
            if attempt or not fix_modes or not _chmod_entry(parent, name, 0o700):
                return None
            continue
        except OSError:  # gone, or no longer a folder (a link put in its place)
            return None
        if fix_modes:
            info = os.fstat(fd)
            if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) & 0o700 != 0o700:
                try:
                    os.fchmod(fd, 0o700)
                except OSError:
                    pass
        return fd
    return None


Level = Callable[[int, object], list[tuple[str, object]]]
Leave = Callable[[int, str], None]
Locked = Callable[[str, object], None]


def _walk(top: int, level: Level, leave: Leave, locked: Locked,
          fix_modes: bool, context: object = None) -> None:
    """Depth first below the open folder ``top``, without recursion.

    ``level(fd, context)`` handles a folder's non-folders and returns the
    sub-folders to visit, each with its own context; ``leave(parent_fd, name)``
    runs when a sub-folder is done; ``locked(name, context)`` when one cannot be
    opened. Only
    the current folder's descriptor is open: going back up opens ``..`` and checks
    it is the folder we came from (a tree moved during the walk stops the walk
    rather than leading it elsewhere).
    """
    current = os.dup(top)
    try:
        pending = [level(current, context)]
        idents = [_identity(current)]
        names: list[str] = []
        while True:
            if pending[-1]:
                name, child_context = pending[-1].pop()
                child = _open_dir(current, name, fix_modes)
                if child is None:
                    locked(name, child_context)
                    continue
                os.close(current)
                current = child
                names.append(name)
                idents.append(_identity(child))
                pending.append(level(current, child_context))
                continue
            if len(pending) == 1:
                return
            parent = os.open("..", _OPEN_DIR, dir_fd=current)
            if _identity(parent) != idents[-2]:
                os.close(parent)
                return
            os.close(current)
            current = parent
            pending.pop()
            idents.pop()
            leave(current, names.pop())
    finally:
        os.close(current)


def _scan(fd: int) -> list[os.DirEntry[str]]:
    with os.scandir(fd) as entries:
        return list(entries)


def empty_folder(fd: int) -> None:
    """Delete everything inside the open folder ``fd`` that we are allowed to; never raises."""
    def level(current: int, _context: object) -> list[tuple[str, object]]:
        folders: list[tuple[str, object]] = []
        for entry in _scan(current):
            try:
                if entry.is_dir(follow_symlinks=False):
                    folders.append((entry.name, None))
                    continue
                try:
                    os.unlink(entry.name, dir_fd=current)
                except PermissionError:  # a folder of ours we may not write into
                    os.fchmod(current, 0o700)
                    os.unlink(entry.name, dir_fd=current)
            except OSError:
                pass  # the sweep will count it
        return folders

    def leave(parent: int, name: str) -> None:
        try:
            os.rmdir(name, dir_fd=parent)
        except OSError:
            pass

    try:
        _walk(fd, level, leave, lambda name, context: None, fix_modes=True)
    except Exception:  # the sweep, not an exception, says what survived
        pass


def _open_or_make(parent: int, name: str, mode: int) -> int:
    """Our folder ``name`` in ``parent``: whatever else is in its place is removed first."""
    try:
        info = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISDIR(info.st_mode):
            os.unlink(name, dir_fd=parent)  # a link or a file in place of ours: never followed
            raise FileNotFoundError
    except FileNotFoundError:
        os.mkdir(name, mode, dir_fd=parent)
    fd = _open_dir(parent, name, fix_modes=True)
    if fd is None:
        raise PermissionError(errno.EACCES, "cannot open the data directory's folders")
    return fd


def fresh_session_root(data_dir: Path) -> Path:
    """Delete every session directory, then prepare a new one with a new name."""
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    top = os.open(data_dir, _OPEN_DIR)
    try:
        for folder, mode in ((".state", 0o700), ("sessions", 0o750)):
            fd = _open_or_make(top, folder, mode)
            try:
                empty_folder(fd)
            finally:
                os.close(fd)
        sessions = _open_or_make(top, "sessions", 0o750)
        try:
            name = secrets.token_hex(12)
            os.mkdir(name, 0o750, dir_fd=sessions)
            root = os.open(name, _OPEN_DIR, dir_fd=sessions)
            try:
                for sub in SESSION_SUBDIRS:
                    os.mkdir(sub, 0o750, dir_fd=root)
            finally:
                os.close(root)
        finally:
            os.close(sessions)
    finally:
        os.close(top)
    return data_dir / "sessions" / name


def count_leftovers(data_dir: Path, fresh_root: Path | None) -> Counter[str]:
    """What in ``data_dir`` is not the empty layout for the next session: where it is → how many.

    "Where" is the session folder holding it (``…/sessions/<old>/downloads``), the
    sessions folder, ``.state`` or the data directory — never the leftover's own
    name, often a person's. A folder that is left only because something inside it
    is left is not counted again; a folder the wipe cannot open counts as one.
    """
    sessions = str(data_dir / "sessions")
    counts: Counter[str] = Counter()
    frames: list[list[object]] = []  # per open folder: [found inside?, where it counts, expected?]

    def where(depth: int, base: str, name: str) -> tuple[str, str]:
        """Where an entry counts, and the base its own entries count from."""
        if depth == 0:
            here = str(data_dir / name) if name in (".state", "sessions") else str(data_dir)
            return here, here
        if base == sessions:  # an old session's folder: its folders name the kinds
            return sessions, f"{sessions}/{name}"
        if os.path.dirname(base) == sessions:
            here = f"{base}/{name}" if name in SESSION_SUBDIRS else sessions
            return here, here
        return base, base

    def expected(depth: int, on_path: bool, name: str) -> bool:
        if not on_path:
            return False
        if depth == 0:
            return name in (".state", "sessions")
        if depth == 1:
            return fresh_root is not None and name == fresh_root.name
        return depth == 2 and name in SESSION_SUBDIRS

    def level(current: int, context: object) -> list[tuple[str, object]]:
        depth, on_path, base, counted_at, mine = context  # type: ignore[misc]
        frame: list[object] = [False, counted_at, mine]
        frames.append(frame)
        folders: list[tuple[str, object]] = []
        for entry in _scan(current):
            here, below = where(depth, base, entry.name)
            if entry.is_dir(follow_symlinks=False):
                ok = expected(depth, on_path, entry.name)
                # .state and the new session's folders must be empty: nothing below is expected.
                deeper = ok and entry.name != ".state" and depth < 2
                folders.append((entry.name, (depth + 1, deeper, below, here, ok)))
            else:
                counts[here] += 1
                frame[0] = True
        return folders

    def leave(parent: int, name: str) -> None:
        found, counted_at, mine = frames.pop()
        if not found and not mine:
            counts[str(counted_at)] += 1  # an empty folder that should not be there
        if found or not mine:
            frames[-1][0] = True

    def locked(name: str, context: object) -> None:
        counts[str(context[3])] += 1  # type: ignore[index]
        frames[-1][0] = True

    top = os.open(data_dir, _OPEN_DIR)
    try:
        _walk(top, level, leave, locked, fix_modes=False,
              context=(0, True, str(data_dir), str(data_dir), True))
    finally:
        os.close(top)
    return counts


def release(folders: list[str]) -> int:
    """As the browser's user, once its processes are gone: delete what it left in its
    session folders (it alone may reopen a folder it locked). 0 when they are empty."""
    left = 0
    for folder in folders:
        try:
            fd = os.open(folder, _OPEN_DIR)
        except OSError:
            continue  # already wiped, or never made
        try:
            empty_folder(fd)
            left += len(_scan(fd))
        finally:
            os.close(fd)
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(release(sys.argv[1:]))
