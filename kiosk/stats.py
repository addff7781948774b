"""The funders' figures from the anonymous session records (``kioskctl stats``).

Reads one terminal's records database or a folder of them (the fleet playbook collects
one copy per terminal); a record id is unique across the fleet, so a database read twice
(two collections of the same terminal, a copy in two folders) counts once.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence, TextIO

from kiosk.i18n import N_, _
from kiosk.records import COLUMNS, RecordsError, check_schema

# The national digital-mediation reporting's duration bands: (up to, in seconds; label).
DURATION_BANDS = ((1800, "< 30 min"), (3600, "30–60 min"), (7200, "60–120 min"),
                  (None, "> 2 h"))
CATEGORY_LABELS = {
    "identity": N_("Identity and vehicle papers"), "family": N_("Family"),
    "health": N_("Health and social"), "work": N_("Work"), "housing": N_("Housing"),
    "money": N_("Money and tax"), "energy": N_("Energy and water"), "other": N_("Other"),
}
ANSWER_LABELS = {"yes": N_("yes"), "partly": N_("partly"), "no": N_("no"),
                 None: N_("no answer")}
CSV_COLUMNS = ("day", "commune", "place", "portal", "category", "sessions", "minutes",
               "pages_printed", "scans", "shares")


@dataclass
class Record:
    record_id: str
    terminal: str
    commune: str
    place: str
    day: str
    hour: str
    duration_s: int
    portals: list[str]
    categories: list[str]
    pages_printed: int
    scans: int
    shares: int
    ended: str
    satisfaction: str | None
    language: str = "fr"


def database_files(sources: Iterable[str | Path]) -> list[Path]:
    """Each source: a records database, or a folder searched for ``*.sqlite`` files."""
    found: list[Path] = []
    for source in sources:
        path = Path(source)
        found += sorted(path.rglob("*.sqlite")) if path.is_dir() else [path]
    return found


def _read_one(path: Path) -> list[Record]:
    if not path.is_file():
        raise RecordsError(_("No records database at {path}.").format(path=path))
    try:  # read-only and immutable: a copy is never changed, a live one never locked
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1",
                                     uri=True)
    except sqlite3.Error as exc:
        raise RecordsError(str(exc)) from None
    try:
        check_schema(connection)
        rows = connection.execute(f"SELECT {', '.join(COLUMNS)} FROM sessions").fetchall()
    except sqlite3.DatabaseError as exc:
        raise RecordsError(_("The records database is damaged ({error}).").format(
            error=exc)) from None
    finally:
        connection.close()
    records = []
    for values in rows:
        row = dict(zip(COLUMNS, values, strict=True))
        records.append(Record(
            record_id=row["record_id"], terminal=row["terminal"], commune=row["commune"],
            place=row["place"], day=row["started_hour"][:10], hour=row["started_hour"],
            duration_s=int(row["duration_s"]), portals=json.loads(row["portals"]),
            categories=json.loads(row["categories"]), pages_printed=int(row["pages_printed"]),
            scans=int(row["scans"]), shares=int(row["shares"]), ended=row["ended"],
            satisfaction=row["satisfaction"], language=row["language"]))
    return records


def read_records(paths: Sequence[Path]) -> tuple[list[Record], list[str]]:
    """Every record of these databases, each record id once; and the problems met."""
    by_id: dict[str, Record] = {}
    problems = []
    for path in paths:
        try:
            records = _read_one(path)
        except RecordsError as exc:
            problems.append(f"{path}: {exc}")
            continue
        for record in records:
            known = by_id.get(record.record_id)
            if known is None or (known.satisfaction is None and record.satisfaction):
                by_id[record.record_id] = record  # a later copy may carry the answer
    return sorted(by_id.values(), key=lambda r: (r.hour, r.record_id)), problems


def within(records: Iterable[Record], since: str | None, until: str | None) -> list[Record]:
    """Records whose day is in [since, until] (YYYY-MM-DD, both included)."""
    return [r for r in records if (not since or r.day >= since) and (not until or r.day <= until)]


def band_of(seconds: int) -> str:
    return next(label for limit, label in DURATION_BANDS if limit is None or seconds < limit)


@dataclass
class Summary:
    sessions: int = 0
    terminals: int = 0
    first_day: str = ""
    last_day: str = ""
    minutes: int = 0
    per_place: Counter = field(default_factory=Counter)
    per_portal: Counter = field(default_factory=Counter)
    per_category: Counter = field(default_factory=Counter)
    per_band: Counter = field(default_factory=Counter)
    per_answer: Counter = field(default_factory=Counter)
    per_ending: Counter = field(default_factory=Counter)
    pages_printed: int = 0
    scans: int = 0
    shares: int = 0


def summarize(records: Sequence[Record]) -> Summary:
    summary = Summary(sessions=len(records), terminals=len({r.terminal for r in records}))
    if records:
        summary.first_day = min(r.day for r in records)
        summary.last_day = max(r.day for r in records)
    for band in DURATION_BANDS:
        summary.per_band[band[1]] = 0
    for record in records:
        summary.minutes += round(record.duration_s / 60)
        summary.per_place[record.commune] += 1
        summary.per_portal.update(record.portals)
        summary.per_category.update(set(record.categories))
        summary.per_band[band_of(record.duration_s)] += 1
        summary.per_answer[record.satisfaction] += 1
        summary.per_ending[record.ended] += 1
        summary.pages_printed += record.pages_printed
        summary.scans += record.scans
        summary.shares += record.shares
    return summary


def format_summary(summary: Summary) -> str:
    lines = [_("Sessions: {count} on {terminals} terminal(s), from {first} to {last}").format(
        count=summary.sessions, terminals=summary.terminals, first=summary.first_day or "-",
        last=summary.last_day or "-"),
        _("Time spent: {minutes} min in all").format(minutes=summary.minutes)]

    def table(title: str, counts: Iterable[tuple[str, int]]) -> None:
        lines.append("")
        lines.append(title)
        for name, count in counts:
            lines.append(f"  {name:<34}{count:>6}")

    table(_("Per place:"), summary.per_place.most_common())
    table(_("Per category of procedure (sessions):"),
          [(_(CATEGORY_LABELS[c]), summary.per_category[c]) for c in CATEGORY_LABELS
           if summary.per_category[c]])
    table(_("Per portal (sessions):"), summary.per_portal.most_common())
    table(_("Duration:"), [(label, summary.per_band[label]) for _l, label in DURATION_BANDS])
    table(_("Could you do what you came for?"),
          [(_(ANSWER_LABELS[a]), summary.per_answer[a]) for a in ANSWER_LABELS])
    lines.append("")
    lines.append(_("Pages printed: {pages}; scans: {scans}, sent to a phone: {shares}").format(
        pages=summary.pages_printed, scans=summary.scans, shares=summary.shares))
    return "\n".join(lines) + "\n"


def write_csv(records: Sequence[Record], out: TextIO) -> int:
    """Day × place × portal (a session without a portal has portal "-"; one that opened
    two portals counts on both rows). Returns the number of rows."""
    rows: dict[tuple[str, str, str, str, str], list[int]] = {}
    for record in records:
        portals = record.portals or ["-"]
        categories = record.categories if len(record.categories) == len(portals) else []
        for index, portal in enumerate(portals):
            category = categories[index] if categories else "-"  # parallel to the portals
            key = (record.day, record.commune, record.place, portal, category)
            totals = rows.setdefault(key, [0, 0, 0, 0, 0])
            for position, value in enumerate((1, round(record.duration_s / 60),
                                              record.pages_printed, record.scans,
                                              record.shares)):
                totals[position] += value
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for key in sorted(rows):
        writer.writerow([*key, *rows[key]])
    return len(rows)
