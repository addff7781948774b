"""The kiosk's CUPS cleaning step against a test cupsd (``Cupsd.cleanup_command``).

On a terminal the step runs as root in ``plus-kiosk-cups-clean.service`` and stops and
starts Debian's cups units; here the same ``kiosk.printing.cups_clean.clean`` stops the
harness's cupsd by its pid and starts it again in place — same configuration, same
socket — so the session-scoped fixture goes on serving the other tests. Prints the
step's JSON report; exit 0 when nothing is left.

    python tests/cupsd_clean.py CUPSD_ROOT
"""

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Cupsd, stop_pid  # noqa: E402
from kiosk.printing.cups_clean import KIND, clean  # noqa: E402


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def main(root: Path) -> int:
    server = Cupsd(root, instance="")
    pid = int(server.pid_file.read_text())
    running = alive(pid) and os.path.exists(server.socket)
    live: set[int] = set()
    if running:
        live = set(server.connection().getJobs(which_jobs="all",
                                               requested_attributes=["job-id"]))

    def stop() -> bool:
        if running:
            stop_pid(pid)
        return running

    left = clean(server.spool, server.temp, live, stop, lambda: server.launch(detach=True))
    print(json.dumps({KIND: left}))
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
