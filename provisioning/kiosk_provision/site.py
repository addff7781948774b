"""The site file, read for provisioning: valid, fit for a terminal, printer answering.

The units are written for one layout (socket, data folder, token, users, screen),
so a site file that moves any of them is refused here rather than producing a
terminal whose daemon cannot start. A printer that does not answer is refused
too: a technician should learn it while still standing next to the terminal.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

from kiosk import config as site_config
from kiosk.i18n import _
from kiosk_provision.tree import ProvisionError

RESIDENT = "kiosk"            # the resident session user (and group): the shell runs as it
BROWSER_USER = "kiosk-browser"  # the browser's own user, in the resident group (downloads)
DAEMON_USER = "plus-kiosk"    # the daemon's own user
AGENT_PIN_FILE = "/etc/plus-kiosk/agent-pin"  # root-only; the shell's unit loads a copy
PROXY_USER = "proxy"          # Squid's, from Debian's base-passwd (uid 13)
# What the unit files expect of [daemon].
UNIT_LAYOUT = {
    "socket": "/run/plus-kiosk/daemon.sock",
    "socket_group": RESIDENT,
    "data_dir": "/var/lib/plus-kiosk",
    "agent_token_file": "/etc/plus-kiosk/agent-token",
    "x_display": ":0",
    "shell_user": RESIDENT,
}
# …and of the other sections (section, key → value).
UNIT_LAYOUT_OTHERS = {("browser", "user"): BROWSER_USER, ("agent", "pin_file"): AGENT_PIN_FILE}
DEFAULT_PORTS = {"ipp": 631, "ipps": 631, "http": 631, "https": 631, "socket": 9100, "lpd": 515}
PRINTER_TIMEOUT_SECONDS = 3.0


def load(path: Path) -> tuple[site_config.SiteConfig, str]:
    """The validated site and its text (installed as is, comments included)."""
    if not path.is_file():
        raise ProvisionError(_("The site file {path} does not exist.").format(path=path))
    try:
        config = site_config.load(path)
    except site_config.ConfigError as exc:
        raise ProvisionError("\n".join(str(problem) for problem in exc.problems)) from None
    mismatches = [
        _("{file}: [daemon] {key} must be {expected!r} on a provisioned terminal, not "
          "{value!r}").format(file=path, key=key, expected=expected,
                              value=getattr(config.daemon, key))
        for key, expected in UNIT_LAYOUT.items() if getattr(config.daemon, key) != expected]
    mismatches += [
        _("{file}: [{section}] {key} must be {expected!r} on a provisioned terminal, not "
          "{value!r}").format(file=path, section=section, key=key, expected=expected,
                              value=getattr(getattr(config, section), key))
        for (section, key), expected in UNIT_LAYOUT_OTHERS.items()
        if getattr(getattr(config, section), key) != expected]
    if not config.proxy.listen:
        # The firewall lets the browser reach the proxy and nothing else.
        mismatches.append(_("{file}: [proxy] listen cannot be empty on a provisioned terminal: "
                            "pages leave it only through the filtering proxy "
                            "(\"127.0.0.1:3128\").").format(file=path))
    if mismatches:
        raise ProvisionError("\n".join(mismatches))
    return config, path.read_text(encoding="utf-8")


def printer_address(uri: str) -> tuple[str, int] | None:
    """Host and port to reach for a network printer URI; None for local backends."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        raise ProvisionError(_("The printer address {uri} is not valid.").format(uri=uri)) \
            from None
    return parts.hostname, port or DEFAULT_PORTS[scheme]


def check_printer(uri: str, timeout: float = PRINTER_TIMEOUT_SECONDS) -> None:
    """Raise a clear error when a network printer does not answer."""
    address = printer_address(uri)
    if address is None:
        return
    try:
        with socket.create_connection(address, timeout=timeout):
            pass
    except OSError as exc:
        raise ProvisionError(_(
            "The printer {uri} does not answer ({reason}). Check that it is switched on and "
            "on the same network, or correct [printing] device_uri in the site file.").format(
                uri=uri, reason=exc.strerror or exc)) from None
