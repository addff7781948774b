"""Keep one user out of a folder its group may otherwise write: a POSIX ACL entry.

The browser's user writes a session's downloads through the resident group
(``kiosk``), which the shell's user also belongs to: the daemon's socket is shared
through it. A folder the shell's user could write into is a folder it could fill
with entries only it may unlock (a subfolder of mode 000), which would keep the
wipe from verifying clean. A named-user ACL entry with no permissions is checked
before the group's, so that user alone is refused, whatever its groups.

The ACL is written as the kernel's ``system.posix_acl_access`` extended attribute
(``linux/posix_acl_xattr.h``): no library, no ``setfacl`` program needed.
"""

from __future__ import annotations

import logging
import os
import stat
import struct
from typing import Iterable

_VERSION = 2
_USER_OBJ, _USER, _GROUP_OBJ, _MASK, _OTHER = 0x01, 0x02, 0x04, 0x10, 0x20
_UNDEFINED = 0xFFFFFFFF
ACCESS_ACL = "system.posix_acl_access"
log = logging.getLogger(__name__)


def acl_bytes(mode: int, refused_uids: Iterable[int]) -> bytes:
    """The ACL of ``mode`` plus one entry without permissions per refused uid."""
    entries = [(_USER_OBJ, (mode >> 6) & 7, _UNDEFINED)]
    entries += [(_USER, 0, uid) for uid in sorted(set(refused_uids))]
    entries += [(_GROUP_OBJ, (mode >> 3) & 7, _UNDEFINED), (_MASK, (mode >> 3) & 7, _UNDEFINED),
                (_OTHER, mode & 7, _UNDEFINED)]
    return struct.pack("<I", _VERSION) + b"".join(struct.pack("<HHI", *e) for e in entries)


def keep_out(folder: str | os.PathLike[str], uids: Iterable[int]) -> None:
    """Refuse ``uids`` any access to ``folder`` (kept at its current mode for the rest).

    Raises OSError where the file system has no ACLs: the caller decides whether
    that is acceptable (tests on a file system without them) or not.
    """
    refused = [uid for uid in uids if uid != os.stat(folder).st_uid]
    if not refused:
        return
    mode = stat.S_IMODE(os.stat(folder, follow_symlinks=False).st_mode)
    os.setxattr(folder, ACCESS_ACL, acl_bytes(mode, refused), follow_symlinks=False)


def keep_out_listed(folder: str | os.PathLike[str], uids: str) -> None:
    """``keep_out`` for a comma-separated list (as the daemon passes it); a file system
    without ACLs is logged, not fatal: the wipe's check still reports what it cannot
    delete."""
    try:
        keep_out(folder, [int(uid) for uid in uids.split(",") if uid.isdigit()])
    except OSError as exc:
        log.warning("session folder without its ACL (%s): the shell's user could write there",
                    exc.strerror)


def refused_uids(folder: str | os.PathLike[str]) -> list[int]:
    """The uids a folder's ACL refuses everything (for checks and tests)."""
    try:
        data = os.getxattr(folder, ACCESS_ACL, follow_symlinks=False)
    except OSError:
        return []
    return [uid for tag, perm, uid in struct.iter_unpack("<HHI", data[4:])
            if tag == _USER and perm == 0]
