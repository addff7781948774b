"""How the shell reaches the session's browser (its « Back » button).

An abstract Unix socket named after the session: no file to leave behind, and
it disappears with the browser process at the wipe.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Callable


def control_name(session_id: str) -> str:
    return f"@plus-kiosk-browser-{session_id}"


def control_address(name: str) -> str:
    """"@name" is Linux's abstract socket namespace: no file, no path length limit."""
    return "\0" + name[1:] if name.startswith("@") else name


WORDS = ("back", "reload", "start", "raise")


def serve(name: str, on_command: Callable[[str], None],
          valid_geometry: Callable[[str], bool]) -> Any:
    """Listen for the shell's words, one per connection, and hand each to
    ``on_command`` in the GUI thread. Returns the Qt relay (keep it alive)."""
    from qtpy import QtCore

    class Relay(QtCore.QObject):
        command = QtCore.Signal(str)

    relay = Relay()
    relay.command.connect(on_command)  # queued into the GUI thread
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(control_address(name))
    server.listen(4)

    def loop() -> None:
        while True:
            try:
                connection, _address = server.accept()
                with connection:
                    connection.settimeout(1)  # a silent client must not jam the button
                    word = connection.recv(64).decode(errors="replace").strip()
                    if word in WORDS or (word.startswith("geometry ")
                                         and valid_geometry(word[9:])):
                        relay.command.emit(word)
                        connection.sendall(b"ok\n")
            except OSError:
                continue

    threading.Thread(target=loop, name="control", daemon=True).start()
    return relay
