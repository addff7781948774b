"""The agent menu's PIN: a salted PBKDF2 hash in the site file, and a lockout.

The PIN guards a menu on a public screen: three wrong tries lock it for a
minute, so guessing four digits takes days instead of minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import time
from typing import Callable

ITERATIONS = 200_000
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
        if verify_pin(pin, self.stored):
            self.failures = 0
            return True
        self.failures += 1
        if self.failures >= MAX_TRIES:
            self.failures = 0
            self.locked_until = self.clock() + LOCK_SECONDS
        return False
