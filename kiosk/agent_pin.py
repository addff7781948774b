"""The agent menu's PIN: a salted PBKDF2 hash in its own file, and a lockout.

The PIN guards a menu on a public screen: three wrong tries lock it for a
minute. The lockout only slows guessing at the screen; whoever reads the hash
guesses offline, where four digits fall in minutes. So the hash is kept out of
the site file (which the browser's group reads) in a root-only file the shell
alone gets a copy of (systemd's LoadCredential=), and PINs have at least six
digits.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

ITERATIONS = 200_000
MIN_DIGITS, MAX_DIGITS = 6, 12
CREDENTIAL = "agent-pin"  # the name LoadCredential= gives the copy in the shell's unit
MAX_TRIES = 3
LOCK_SECONDS = 60


def hash_pin(pin: str, *, iterations: int = ITERATIONS, salt: bytes | None = None) -> str:
    salt = salt or os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, iterations)
    return "pbkdf2_sha256${}${}${}".format(iterations, base64.b64encode(salt).decode(),
                                           base64.b64encode(digest).decode())


def verify_pin(pin: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.pbkdf2_hmac("sha256", pin.encode(), base64.b64decode(salt),
                                     int(iterations))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def valid_pin(pin: str) -> bool:
    return pin.isascii() and pin.isdigit() and MIN_DIGITS <= len(pin) <= MAX_DIGITS


def stored_hash(pin_file: str | os.PathLike[str]) -> str:
    """The hash the shell checks against: systemd's private copy if there is one,
    else ``pin_file``; "" (no agent menu) when neither can be read."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    for candidate in ([Path(directory) / CREDENTIAL] if directory else []) + [Path(pin_file)]:
        try:
            return candidate.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
    return ""


def write_hash(pin_file: str | os.PathLike[str], pin: str) -> None:
    """Replace ``pin_file`` atomically with the hash of ``pin``, readable by its owner alone."""
    target = Path(pin_file)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".agent-pin-")
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:  # mkstemp: mode 0600
            handle.write(hash_pin(pin) + "\n")
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class PinGate:
    """Counts wrong tries; locked for LOCK_SECONDS after MAX_TRIES of them."""

    def __init__(self, stored: str, clock: Callable[[], float] = time.monotonic):
        self.stored = stored
        self.clock = clock
        self.failures = 0
        self.locked_until = 0.0

    def locked_for(self) -> int:
        return max(0, round(self.locked_until - self.clock()))

    def check(self, pin: str) -> bool:
        if self.locked_for() or not self.stored:
            return False
        # A short PIN never opens the menu, even if an old hash was made from one.
        if valid_pin(pin) and verify_pin(pin, self.stored):
            self.failures = 0
            return True
        self.failures += 1
        if self.failures >= MAX_TRIES:
            self.failures = 0
            self.locked_until = self.clock() + LOCK_SECONDS
        return False
