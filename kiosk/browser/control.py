"""How the shell reaches the session's browser (its « Back » button).

An abstract Unix socket named after the session: no file to leave behind, and
it disappears with the browser process at the wipe. It answers only the daemon's
and the shell's users (and root): see ``allowed_uids``.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from typing import Any, Callable


SLOTS = ("portal", "mail")  # a session's browsers: the portal's page, the resident's webmail


def control_name(session_id: str, slot: str = "portal") -> str:
    """The portal browser keeps the historical name; the webmail laid over it gets its own
    socket, so the shell's « raise » and « back » reach the one the resident sees."""
    suffix = "" if slot == "portal" else f"-{slot}"
    return f"@plus-kiosk-browser-{session_id}{suffix}"


def control_address(name: str) -> str:
    """"@name" is Linux's abstract socket namespace: no file, no path length limit."""
    return "\0" + name[1:] if name.startswith("@") else name


WORDS = ("back", "reload", "start", "raise")
CONTROL_UIDS = "KIOSK_CONTROL_UIDS"  # set by the daemon: its own uid and the shell's


def allowed_uids(text: str | None = None) -> frozenset[int]:
    """Who may send words: root, this browser's own user, and the uids the daemon named.

    An abstract socket has no file, so no permissions: any local user could connect
    and, say, lay the page over « Terminer ». The kernel's SO_PEERCRED says who did.
    """
    if text is None:
        text = os.environ.get(CONTROL_UIDS, "")
    return frozenset({0, os.getuid()} | {int(part) for part in text.split(",")
                                         if part.strip().isdigit()})


def peer_uid(connection: socket.socket) -> int | None:
    try:
        _pid, uid, _gid = struct.unpack("3i", connection.getsockopt(
            socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    except OSError:
        return None
    return uid


def listen(name: str) -> socket.socket:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(control_address(name))
    server.listen(4)
    return server


def answer(server: socket.socket, allowed: frozenset[int], emit: Callable[[str], None],
           valid_geometry: Callable[[str], bool]) -> None:
    """One connection: one word from an allowed user; anyone else is closed unread."""
    connection, _address = server.accept()
    with connection:
        if peer_uid(connection) not in allowed:
            return
        connection.settimeout(1)  # a silent client must not jam the button
        word = connection.recv(64).decode(errors="replace").strip()
        if word in WORDS or (word.startswith("geometry ") and valid_geometry(word[9:])):
            emit(word)
            connection.sendall(b"ok\n")


def answer_forever(server: socket.socket, allowed: frozenset[int], emit: Callable[[str], None],
                   valid_geometry: Callable[[str], bool]) -> threading.Thread:
    def loop() -> None:
        while True:
            try:
                answer(server, allowed, emit, valid_geometry)
            except OSError:
                if server.fileno() < 0:
                    return  # closed
                continue

    thread = threading.Thread(target=loop, name="control", daemon=True)
    thread.start()
    return thread


def serve(name: str, on_command: Callable[[str], None],
          valid_geometry: Callable[[str], bool],
          allowed: frozenset[int] | None = None) -> Any:
    """Listen for the shell's words, one per connection, and hand each to
    ``on_command`` in the GUI thread. Returns the Qt relay (keep it alive)."""
    from qtpy import QtCore

    class Relay(QtCore.QObject):
        command = QtCore.Signal(str)

    relay = Relay()
    relay.command.connect(on_command)  # queued into the GUI thread
    answer_forever(listen(name), allowed_uids() if allowed is None else allowed,
                   relay.command.emit, valid_geometry)
    return relay
