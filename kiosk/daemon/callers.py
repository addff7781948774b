"""Who may ask the daemon what: the caller's user, as the kernel reports it.

The shell, the browser and the daemon each run as their own user. A page that took
over the browser must not be able to start sessions, print, scan, share or end a
session through the daemon's socket, so every connection's credentials are read
from the socket itself (``SO_PEERCRED``: pid, uid and gid of the process that
connected, set by the kernel, impossible to forge) and each request is checked
against ``ROUTES`` before any view runs:

* root and the daemon's own user: everything (agent routes still want the token);
* the shell's user (``[daemon] shell_user``): what the shell's screens use;
* the browser's user (``[browser] user``): reporting input and the page it shows;
* anyone else: 403, whatever the route — even one that does not exist.

In tests and ``make demo`` every part runs as one user (root or the developer), the
daemon's own: nothing changes there.
"""

from __future__ import annotations

import logging
import os
import pwd
import socket
import struct
from dataclasses import dataclass

from flask import Flask, request
from waitress.channel import HTTPChannel
from waitress.task import WSGITask

from kiosk import config as site_config
from kiosk.daemon.errors import ApiError, tr
from kiosk.i18n import N_

log = logging.getLogger(__name__)

ADMIN, SHELL, BROWSER = "admin", "shell", "browser"
PEER_KEY = "kiosk.peer"  # where the channel puts the caller into the WSGI environ
# Flask endpoint → the roles besides ADMIN that may call it. A route missing here is
# the admin's alone: a new route is closed until someone decides who needs it.
ROUTES: dict[str, frozenset[str]] = {
    **{f"api.{name}": frozenset({SHELL}) for name in (
        "health", "status", "openapi_document",
        "session_start", "session_end", "session_usage", "session_feedback",
        "browser_open", "browser_close",
        "print_document", "print_job", "print_guide",
        "scan", "scan_pdf", "share",
        "documents", "document_page", "document_print",
        "help_asked")},
    # The browser reports real input (so an active resident is not wiped) and its page.
    "api.session_activity": frozenset({SHELL, BROWSER}),
    "api.browser_location": frozenset({BROWSER}),
    "api.agent_reset": frozenset(),  # kioskctl reset, as root, with the agent token
}
REFUSED = N_("This program is not allowed to ask the kiosk for that.")


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


def peer_of(sock: socket.socket) -> Peer | None:
    """The connecting process's credentials (Unix sockets only)."""
    if sock.family != socket.AF_UNIX:
        return None
    size = struct.calcsize("3i")
    try:
        pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET,
                                                            socket.SO_PEERCRED, size))
    except OSError:
        return None
    return Peer(pid, uid, gid)


class _PeerTask(WSGITask):
    def get_environment(self) -> dict:
        environ = super().get_environment()
        environ[PEER_KEY] = getattr(self.channel, "peer", None)
        return environ


class PeerChannel(HTTPChannel):
    """waitress's channel, reading the caller once, when the connection is accepted."""

    task_class = _PeerTask

    def __init__(self, server, sock, addr, adj, map=None):  # noqa: A002 (waitress's name)
        self.peer = peer_of(sock)
        super().__init__(server, sock, addr, adj, map=map)


def install_channel(server: object) -> None:
    """Make a waitress server built by ``create_server`` (before ``run``) read callers."""
    server.channel_class = PeerChannel  # type: ignore[attr-defined]


def uid_of(user: str) -> int | None:
    if not user:
        return None
    try:
        return pwd.getpwnam(user).pw_uid
    except KeyError:
        return None


@dataclass(frozen=True)
class Callers:
    """uid → role, decided once at start from the site file's user names."""

    admin: frozenset[int]
    shell: frozenset[int]
    browser: frozenset[int]

    @classmethod
    def from_config(cls, config: site_config.SiteConfig) -> "Callers":
        admin = frozenset({0, os.getuid()})
        shell, browser = uid_of(config.daemon.shell_user), uid_of(config.browser.user)
        return cls(admin, frozenset({shell} - {None} - admin),   # type: ignore[arg-type]
                   frozenset({browser} - {None} - admin))        # type: ignore[arg-type]

    def role(self, peer: Peer | None) -> str | None:
        if peer is None:
            return None
        if peer.uid in self.admin:
            return ADMIN
        if peer.uid in self.browser:  # before the shell: the narrower one wins
            return BROWSER
        return SHELL if peer.uid in self.shell else None

    def allowed(self, peer: Peer | None, endpoint: str | None) -> bool:
        role = self.role(peer)
        if role is None:
            return False
        if role == ADMIN or endpoint is None:  # None: no such route, Flask answers 404/405
            return True
        return role in ROUTES.get(endpoint, frozenset())

    def keep_out_uids(self) -> str:
        """Who may not write where the browser writes: the shell (it shares the group)."""
        return ",".join(str(uid) for uid in sorted(self.shell - {os.getuid()}))

    def control_uids(self) -> str:
        """Who the browser's control socket answers: the daemon and the shell."""
        return ",".join(str(uid) for uid in sorted({os.getuid(), *self.shell}))


def install(app: Flask, callers: Callers) -> None:
    """Check every request's caller before anything else runs."""
    app.config["KIOSK_CALLERS"] = callers

    @app.before_request
    def check_caller() -> None:
        peer = request.environ.get(PEER_KEY)
        if not callers.allowed(peer, request.endpoint):
            log.warning("refused %s to uid %s (pid %s)", request.endpoint or "an unknown route",
                        getattr(peer, "uid", "?"), getattr(peer, "pid", "?"))
            raise ApiError(403, "caller_refused", tr(REFUSED))
