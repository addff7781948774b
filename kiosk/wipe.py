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
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path
from typing import Protocol

SESSION_SUBDIRS = ("downloads", "scans", "shares", "prints", "browser")


class Cleaner(Protocol):
    """Something a session leaves outside its directories (jobs, links, clipboard…)."""

    name: str

    def wipe(self) -> None:
        """Remove what the session left; must not raise for "nothing to do"."""

    def leftovers(self) -> list[str]:
        """Describe what survived; empty when clean."""


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:  # files, links, FIFOs, sockets: whatever a session could create
        path.unlink(missing_ok=True)


def clear_directory(directory: Path) -> None:
    """Delete everything inside ``directory`` (but not the directory)."""
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        _remove(entry)


def fresh_session_root(data_dir: Path) -> Path:
    """Delete every session directory, then prepare a new one with a new name."""
    sessions = data_dir / "sessions"
    for folder in (sessions, data_dir / ".state"):
        # A link (or a file) in place of our folders: remove it, never follow it.
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            folder.unlink()
    sessions.mkdir(parents=True, exist_ok=True, mode=0o750)
    clear_directory(sessions)
    clear_directory(data_dir / ".state")
    root = sessions / secrets.token_hex(12)
    root.mkdir(mode=0o750)
    for name in SESSION_SUBDIRS:
        (root / name).mkdir(mode=0o750)
    (data_dir / ".state").mkdir(exist_ok=True, mode=0o700)
    return root


def sweep(data_dir: Path, fresh_root: Path) -> list[str]:
    """Everything in ``data_dir`` that is not the empty layout for the next session."""
    expected = {data_dir / ".state", data_dir / "sessions", fresh_root}
    expected |= {fresh_root / name for name in SESSION_SUBDIRS}
    leftovers = []
    for top, dirs, files in os.walk(data_dir):
        for name in dirs + files:
            path = Path(top) / name
            if path not in expected:
                leftovers.append(str(path))
    return sorted(leftovers)
