"""A month of made-up sessions on the bundled site, and the funders' report made from it.

For the README's picture of a report page and for `make demo`: no resident is in it.
The numbers are drawn from a fixed seed, so the picture changes only when the report does.

    python tools/demo_stats.py OUT_DIR [--month 2026-11]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from kiosk import config as site_config
from kiosk import kioskctl
from kiosk.records import Recorder
from kiosk.usage import Usage

STOPS = [("monday", "Le Marin"), ("tuesday", "Le Diamant"), ("wednesday", "Rivière-Pilote"),
         ("thursday", "Sainte-Anne")]


def demo_site(folder: Path) -> Path:
    """The bundled site, its records in ``folder``, its bus round of four stops."""
    text = site_config.bundled_config().read_text(encoding="utf-8")
    text = text.replace('path = "/var/lib/plus-kiosk-records/records.sqlite"',
                        f'path = "{folder}/records.sqlite"', 1)
    text = text.replace('terminal_id = ""', 'terminal_id = "bus-demo"', 1)
    for weekday, commune in STOPS:
        text += (f'\n[[bus_stop]]\nweekday = "{weekday}"\ncommune = "{commune}"\n'
                 'start = "08:00"\nend = "13:00"\n')
    site = folder / "site.toml"
    site.write_text(text, encoding="utf-8")
    return site


def fill(recorder: Recorder, month: str, seed: int = 972) -> int:
    """About fifty residents a day, Monday to Thursday mornings."""
    rng = random.Random(seed)
    portals = [p.id for p in recorder.config.portal]
    weights = [1.0 / (i + 1) for i in range(len(portals))]
    day = datetime.fromisoformat(month + "-01")
    count = 0
    while day.strftime("%Y-%m") == month:
        if day.weekday() < 4:
            for _ in range(rng.randint(30, 55)):
                start = day + timedelta(hours=8, minutes=rng.randint(0, 290))
                minutes = max(4, int(rng.lognormvariate(3.2, 0.6)))
                usage = Usage(portals=rng.choices(portals, weights, k=rng.choice([1, 1, 2])),
                              scans=rng.choice([0, 0, 1, 2]), shares=rng.choice([0, 0, 1]))
                recorder.session_ended(start.timestamp(), rng.choice([0, 0, 1, 2, 4]), usage,
                                       rng.choice(["user", "user", "idle"]),
                                       ended_at=(start + timedelta(minutes=minutes)).timestamp())
                answer = rng.choice(["yes", "yes", "yes", "partly", "no", None])
                if answer:
                    recorder.feedback(answer)
                count += 1
        day += timedelta(days=1)
    return count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--month", default="2026-11")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    site = demo_site(args.out)
    sessions = fill(Recorder(site_config.load(site)), args.month)
    pdf = args.out / f"rapport-{args.month}.pdf"
    status = kioskctl.main(["--lang", "fr", "stats", "report", "--month", args.month,
                            "--output", str(pdf), "--config", str(site)])
    if status:
        return status
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf),
                    str(args.out / "rapport-page")], check=True)
    print(f"{sessions} made-up sessions; report: {pdf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
