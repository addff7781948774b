"""The browser's audit log: one JSON line per request decision.

``{"url", "allowed", "rule", "resource_type", "main_frame"}`` for every request
the interceptor saw; lines with an ``"event"`` key record what the page did
(loaded, refused navigation, download). Technicians record a real visit with
``kiosk-browser --record FILE`` and turn it into rules with
``kioskctl allowlist-suggest FILE``.

A record keeps the scheme, host, port and path of each address, never its query,
fragment or user-info: those carry what the resident typed and what portals hand
back (``?code=`` of an OAuth sign-in, a search, a file number). The rules a
technician derives need hosts, and paths at most. Uploaded files are counted, not
named (file names are often the resident's own name).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from kiosk.weburl import address_only


def _scrubbed(entry: dict[str, Any]) -> dict[str, Any]:
    clean = dict(entry)
    for key, value in entry.items():
        if key == "url" and isinstance(value, str):
            clean[key] = address_only(value)
        elif key == "files" and isinstance(value, (list, tuple)):
            clean[key] = len(value)
    return clean


class AuditLog:
    def __init__(self, path: str | Path | None):
        self._lock = threading.Lock()
        self._file: TextIO | None = open(path, "a", encoding="utf-8") if path else None

    def write(self, entry: dict[str, Any]) -> None:
        if self._file is None:
            return
        line = json.dumps({**_scrubbed(entry), "time": round(time.time(), 3)}, ensure_ascii=False)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def decision(self, url: str, allowed: bool, rule: str, resource_type: str,
                 main_frame: bool) -> None:
        self.write({"url": url, "allowed": allowed, "rule": rule,
                    "resource_type": resource_type, "main_frame": main_frame})

    def event(self, name: str, **details: Any) -> None:
        self.write({"event": name, **details})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read(path: str | Path) -> list[dict[str, Any]]:
    entries = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries
