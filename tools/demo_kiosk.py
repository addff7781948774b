"""`make demo` on a machine with a screen: the whole kiosk, bundled Espace Sud site.

Daemon, shell (full screen) and the browser it opens, with the data in a
temporary directory. As root (a fresh demo machine), Chromium's sandbox cannot
run, so the demo passes --no-sandbox to the browser — an installed terminal runs
the kiosk as its own unprivileged users instead (provisioning).
Quit with Ctrl+C in the terminal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "kiosk" / "sites" / "espace-sud.toml"


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="plus-kiosk-demo-"))
    browser = [str(Path(sys.executable).parent / "kiosk-browser")]
    if os.geteuid() == 0:
        browser.append("--no-sandbox")
    text = SITE.read_text()
    for old, new in {'socket = "/run/plus-kiosk/daemon.sock"': f'socket = "{work}/daemon.sock"',
                     'data_dir = "/var/lib/plus-kiosk"': f'data_dir = "{work}/data"',
                     'path = "/var/lib/plus-kiosk-records/records.sqlite"':
                         f'path = "{work}/records.sqlite"',
                     'socket_group = "kiosk"': 'socket_group = ""',
                     'x_display = ":0"': f'x_display = "{os.environ["DISPLAY"]}"',
                     'listen = "0.0.0.0"': 'listen = "127.0.0.1"'}.items():
        text = text.replace(old, new)
    site = work / "site.toml"
    site.write_text(text + f"\n[browser]\ncommand = {json.dumps(browser)}\n")
    bin_dir = Path(sys.executable).parent
    daemon = subprocess.Popen([str(bin_dir / "kiosk-daemon"), "--config", str(site)])
    try:
        for _ in range(100):
            if (work / "daemon.sock").exists():
                break
            subprocess.run(["sleep", "0.1"])
        return subprocess.call([str(bin_dir / "kiosk-shell"), "--config", str(site)])
    except KeyboardInterrupt:
        return 0
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
