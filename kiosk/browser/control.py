"""How the shell reaches the session's browser (its « Back » button).

An abstract Unix socket named after the session: no file to leave behind, and
it disappears with the browser process at the wipe.
"""


def control_name(session_id: str) -> str:
    return f"@plus-kiosk-browser-{session_id}"


def control_address(name: str) -> str:
    """"@name" is Linux's abstract socket namespace: no file, no path length limit."""
    return "\0" + name[1:] if name.startswith("@") else name
