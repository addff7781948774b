"""Reading the screen aloud with espeak-ng, offline.

Kréyòl has no voice of its own: Creole text is read with the French voice,
which Creole speakers understand far better than nothing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

VOICES = {"fr": "fr", "gcf": "fr", "en": "en"}


def command(text: str, language: str, wav: Path | None = None) -> list[str]:
    argv = ["espeak-ng", "-v", VOICES.get(language, "fr"), "-s", "140"]
    if wav is not None:
        argv += ["-w", str(wav)]
    return argv + ["--", text]


def speak(text: str, language: str, wav: Path | None = None) -> subprocess.Popen | None:
    """Start reading (non-blocking); None when espeak-ng is not installed."""
    if not text or shutil.which("espeak-ng") is None:
        return None
    return subprocess.Popen(command(text, language, wav), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
