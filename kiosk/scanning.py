"""Scanning through SANE's ``scanimage``, pages combined into one PDF (img2pdf).

A resident scans a proof of address to upload it to a portal or to take it
home on a phone: what comes out is always one PDF, however many pages went
through the feeder or were added one by one on the glass.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import img2pdf

Mode = Literal["color", "gray"]
Source = Literal["flatbed", "adf"]
SCANIMAGE_MODES = {"color": "Color", "gray": "Gray"}
SCANIMAGE_SOURCES = {"flatbed": "Flatbed", "adf": "Automatic Document Feeder"}
SCAN_TIMEOUT_SECONDS = 180


class ScanError(Exception):
    """``code``: no_scanner, no_document, unknown_scan, failed."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class Scan:
    id: str
    path: Path
    pages: int

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "pages": self.pages, "size": self.path.stat().st_size,
                "url": f"/api/v1/scan/{self.id}.pdf"}


class Scanner:
    def __init__(self, device: str = ""):
        self.configured = device

    def devices(self) -> list[str]:
        try:
            result = subprocess.run(["scanimage", "-f", "%d%n"], capture_output=True, text=True,
                                    timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return []
        return [line for line in result.stdout.splitlines() if line.strip()]

    def device(self) -> str:
        if self.configured:
            return self.configured
        found = self.devices()
        if not found:
            raise ScanError("no_scanner")
        return found[0]

    def _pages(self, work: Path, resolution: int, mode: Mode, source: Source) -> list[Path]:
        command = ["scanimage", "-d", self.device(), "--format=png",
                   f"--resolution={resolution}", f"--mode={SCANIMAGE_MODES[mode]}"]
        if source == "adf":
            command += [f"--source={SCANIMAGE_SOURCES['adf']}", f"--batch={work}/page%04d.png"]
        else:
            command += ["-o", str(work / "page0001.png")]
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False,
                                    timeout=SCAN_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            raise ScanError("failed", "timeout") from None
        except OSError as exc:
            raise ScanError("no_scanner", str(exc)) from None
        pages = sorted(p for p in work.glob("page*.png") if p.stat().st_size > 0)
        if not pages:
            code = "no_document" if "out of documents" in result.stderr else "failed"
            raise ScanError(code, result.stderr.strip()[-300:])
        return pages

    def scan(self, scans_dir: Path, *, resolution: int = 150, mode: Mode = "color",
             source: Source = "flatbed", append_to: str | None = None) -> Scan:
        """Scan into a new PDF in ``scans_dir``, or add pages to the scan ``append_to``.

        Page images stay beside the PDF (``<id>.pages/``) so that appending
        rebuilds the document losslessly; the wipe removes both.
        """
        scan_id = append_to or secrets.token_hex(8)
        pages_dir = scans_dir / f"{scan_id}.pages"
        if append_to is not None and not pages_dir.is_dir():
            raise ScanError("unknown_scan")
        with tempfile.TemporaryDirectory(dir=scans_dir, prefix=".work-") as work_dir:
            work = Path(work_dir)
            new_pages = self._pages(work, resolution, mode, source)
            pages_dir.mkdir(exist_ok=True)
            first = len(list(pages_dir.glob("*.png")))
            for number, page in enumerate(new_pages, start=first + 1):
                os.replace(page, pages_dir / f"{number:04d}.png")
            pages = sorted(pages_dir.glob("*.png"))
            partial = work / "out.pdf"
            partial.write_bytes(img2pdf.convert([str(p) for p in pages]))
            target = scans_dir / f"{scan_id}.pdf"
            os.replace(partial, target)
        return Scan(scan_id, target, len(pages))

    def status(self) -> dict[str, object]:
        try:
            device = self.device()
        except ScanError:
            return {"device": "", "available": False}
        try:
            probe = subprocess.run(["scanimage", "-d", device, "-A"], capture_output=True,
                                   timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return {"device": device, "available": False}
        return {"device": device, "available": probe.returncode == 0}
