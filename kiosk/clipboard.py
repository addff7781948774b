"""The resident's X clipboard and primary selection, emptied at the wipe.

A copied social-security number or password must not be pasted by the next
resident. ``xsel`` (or ``xclip``) does the talking to the X server.
"""

from __future__ import annotations

import os
import shutil
import subprocess

SELECTIONS = ("clipboard", "primary")


class Clipboard:
    """A session cleaner for one X display ("" = no display to clean)."""

    name = "clipboard"

    def __init__(self, display: str):
        self.display = display

    def _run(self, args: list[str], input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DISPLAY": self.display}
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=10,
                              input=input_text, check=False)

    def _x_reachable(self) -> bool:
        if not self.display:
            return False
        tool = shutil.which("xsel") or shutil.which("xclip")
        if tool is None:
            return True  # cannot tell: leftovers() will say the tool is missing
        probe = [tool, "-o", "-b"] if tool.endswith("xsel") else [tool, "-o", "-selection", "c"]
        result = self._run(probe)
        return "Can't open display" not in result.stderr and "cannot open display" not in result.stderr.lower()

    def read(self, selection: str) -> str:
        if shutil.which("xsel"):
            return self._run(["xsel", "-o", f"--{selection}"]).stdout
        return self._run(["xclip", "-o", "-selection", selection]).stdout

    def write(self, selection: str, text: str) -> None:
        """Used by tests and the agent menu's self-check."""
        if shutil.which("xsel"):
            self._run(["xsel", "-i", f"--{selection}"], input_text=text)
        else:
            self._run(["xclip", "-i", "-selection", selection], input_text=text)

    def wipe(self) -> None:
        if not self._x_reachable():
            return
        for selection in SELECTIONS:
            if shutil.which("xsel"):
                self._run(["xsel", "--clear", f"--{selection}"])
            elif shutil.which("xclip"):
                self._run(["xclip", "-i", "-selection", selection], input_text="")

    def leftovers(self) -> list[str]:
        if not self._x_reachable():
            return []
        if not (shutil.which("xsel") or shutil.which("xclip")):
            return ["xsel/xclip missing: cannot be cleared"]
        return [f"{selection} selection not empty" for selection in SELECTIONS
                if self.read(selection)]
