"""The target file system — ``/`` or an image tree — changed only where it differs.

Idempotence comes from here: every operation first compares what is there with
what should be (content, mode, owner, link target) and records a change only
when they differ, so a second run finds nothing to do, and ``--check`` is the
same walk with the writes left out. Owners are looked up in the *tree's*
/etc/passwd and /etc/group, never the host's: an image's users are not ours.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from kiosk.i18n import _


@dataclass
class Change:
    kind: str      # "create", "update", "remove", "run"
    what: str

    def __str__(self) -> str:
        mark = {"create": "+", "update": "~", "remove": "-", "run": ">"}[self.kind]
        return f"  {mark} {self.what}"


def _ids(table: Path) -> dict[str, int]:
    try:
        lines = table.read_text().splitlines()
    except OSError:
        return {}
    ids = {}
    for line in lines:
        fields = line.split(":")
        if len(fields) > 2 and fields[2].isdigit():
            ids[fields[0]] = int(fields[2])
    return ids


@dataclass
class Tree:
    root: Path
    check: bool = False
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def is_host(self) -> bool:
        return self.root == Path("/")

    def path(self, absolute: str) -> Path:
        """Where ``absolute`` (a path on the terminal) is in this tree."""
        return self.root / absolute.lstrip("/")

    def uid(self, user: str) -> int | None:
        return _ids(self.path("/etc/passwd")).get(user)

    def gid(self, group: str) -> int | None:
        return _ids(self.path("/etc/group")).get(group)

    def record(self, kind: str, what: str) -> None:
        self.changes.append(Change(kind, what))

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # -- the operations ------------------------------------------------------------------

    def _owner_ok(self, st: os.stat_result, owner: str, group: str) -> bool:
        return (st.st_uid, st.st_gid) == (self.uid(owner), self.gid(group))

    def _apply_owner_mode(self, target: Path, mode: int, owner: str, group: str) -> None:
        uid, gid = self.uid(owner), self.gid(group)
        if uid is None or gid is None:
            raise ProvisionError(_("{user}:{group} does not exist in {root}").format(
                user=owner, group=group, root=self.root))
        os.chown(target, uid, gid, follow_symlinks=False)
        os.chmod(target, mode)

    def directory(self, absolute: str, mode: int = 0o755, owner: str = "root",
                  group: str = "root") -> None:
        target = self.path(absolute)
        if target.is_dir() and not target.is_symlink():
            st = target.stat()
            if stat.S_IMODE(st.st_mode) == mode and self._owner_ok(st, owner, group):
                return
            self.record("update", _("{path}: owner or mode").format(path=absolute))
        else:
            self.record("create", absolute + "/")
        if not self.check:
            if target.is_symlink() or (target.exists() and not target.is_dir()):
                target.unlink()
            target.mkdir(parents=True, exist_ok=True)
            self._apply_owner_mode(target, mode, owner, group)

    def _parents(self, absolute: str) -> None:
        parent = self.path(absolute).parent
        if not parent.is_dir() and not self.check:
            parent.mkdir(parents=True, exist_ok=True)

    def file(self, absolute: str, content: bytes | str, mode: int = 0o644, owner: str = "root",
             group: str = "root", keep_content: bool = False) -> bool:
        """Make ``absolute`` hold ``content``; True if anything changed.

        ``keep_content``: an existing file keeps what it holds (a secret made once).
        """
        data = content.encode() if isinstance(content, str) else content
        target = self.path(absolute)
        if target.is_file() and not target.is_symlink():
            st = target.stat()
            same = keep_content or target.read_bytes() == data
            if same and stat.S_IMODE(st.st_mode) == mode and self._owner_ok(st, owner, group):
                return False
            self.record("update", absolute if not same else
                        _("{path}: owner or mode").format(path=absolute))
            if not self.check:
                if not same:
                    self._write(target, data)
                self._apply_owner_mode(target, mode, owner, group)
            return True
        self.record("create", absolute)
        if not self.check:
            self._parents(absolute)
            if target.is_symlink() or target.exists():
                target.unlink()
            self._write(target, data)
            self._apply_owner_mode(target, mode, owner, group)
        return True

    @staticmethod
    def _write(target: Path, data: bytes) -> None:
        """Atomically: a terminal that loses power mid-run keeps the old or the new file."""
        temporary = target.with_name(f".{target.name}.kiosk-provision")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)

    def symlink(self, absolute: str, points_to: str) -> bool:
        target = self.path(absolute)
        if target.is_symlink() and os.readlink(target) == points_to:
            return False
        self.record("update" if target.is_symlink() else "create",
                    f"{absolute} → {points_to}")
        if not self.check:
            self._parents(absolute)
            if target.is_symlink() or target.exists():
                target.unlink()
            target.symlink_to(points_to)
        return True

    def absent(self, absolute: str) -> bool:
        target = self.path(absolute)
        if not (target.exists() or target.is_symlink()):
            return False
        self.record("remove", absolute)
        if not self.check:
            target.unlink()
        return True


class ProvisionError(Exception):
    """A clear, translated reason to stop (printed without a traceback)."""
