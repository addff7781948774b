"""``kioskctl stats``: the summary and CSV, ``stats report`` (PDF), ``stats backup``.

Exit statuses: 0 done; 1 done, but a database could not be read (said on stderr, the
others counted); 2 a usage error or nothing to read.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from pathlib import Path

from kiosk import config as site_config
from kiosk.i18n import _
from kiosk.stats import (database_files, format_summary, read_records, summarize, within,
                         write_csv)

EXIT_OK, EXIT_PARTIAL, EXIT_ERROR = 0, 1, 2
DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _records(args: argparse.Namespace):
    sources = args.sources or [site_config.load(args.config).records.path]
    records, problems = read_records(database_files(sources))
    for problem in problems:
        print(_("Not counted: {problem}").format(problem=problem), file=sys.stderr)
    return records, problems


def cmd_stats(args: argparse.Namespace) -> int:
    for value in (args.since, args.until):
        if value and not DAY.match(value):
            print(_("A day is written YYYY-MM-DD, not {value}.").format(value=value),
                  file=sys.stderr)
            return EXIT_ERROR
    records, problems = _records(args)
    records = within(records, args.since, args.until)
    sys.stdout.write(format_summary(summarize(records)))
    if args.csv:
        try:
            with open(args.csv, "w", encoding="utf-8", newline="") as out:
                count = write_csv(records, out)
        except OSError as exc:
            print(_("Cannot write {path}: {error}").format(path=args.csv,
                                                           error=exc.strerror or exc),
                  file=sys.stderr)
            return EXIT_ERROR
        print(_("{rows} row(s) written to {path}.").format(rows=count, path=args.csv),
              file=sys.stderr)
    return EXIT_PARTIAL if problems else EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from kiosk.stats_report import month_bounds, write_report
    try:
        month_bounds(args.month)
    except ValueError:
        print(_("A month is written YYYY-MM, not {value}.").format(value=args.month),
              file=sys.stderr)
        return EXIT_ERROR
    config = site_config.load(args.config)
    records, problems = _records(args)
    names = {p.id: p.name.fr for p in config.portal}
    count = write_report(records, args.month, Path(args.output), config.site.name, names)
    print(_("Report of {month} ({count} session(s)) written to {path}.").format(
        month=args.month, count=count, path=args.output), file=sys.stderr)
    return EXIT_PARTIAL if problems else EXIT_OK


def cmd_backup(args: argparse.Namespace) -> int:
    """A consistent copy of this terminal's records (SQLite's online backup), for the
    fleet playbook to fetch while the daemon goes on writing."""
    source = Path(site_config.load(args.config).records.path)
    if not source.is_file():
        print(_("No records database at {path}.").format(path=source), file=sys.stderr)
        return EXIT_ERROR
    try:
        with sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True) as origin, \
                sqlite3.connect(args.output) as copy:
            origin.backup(copy)
        copy.close()
        origin.close()
    except sqlite3.Error as exc:
        print(_("The records cannot be copied ({error}).").format(error=exc), file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def register(commands, parser_class) -> None:
    """Add ``stats`` and its subcommands to kioskctl's parser."""
    site_help = _("site file (default: the one in use)")
    sources_help = _("records databases or folders of them (default: this terminal's)")
    stats = commands.add_parser(
        "stats", help=_("the funders' figures from the anonymous session records"))
    stats.add_argument("--config", help=site_help)
    stats.add_argument("--from", dest="sources", nargs="+", action="extend", default=[],
                       help=sources_help)
    stats.add_argument("--csv", help=_("also write day × place × portal to this CSV file"))
    stats.add_argument("--since", help=_("first day counted (YYYY-MM-DD)"))
    stats.add_argument("--until", help=_("last day counted (YYYY-MM-DD)"))
    stats.set_defaults(func=cmd_stats)
    sub = stats.add_subparsers(dest="stats_command", parser_class=parser_class)
    report = sub.add_parser("report", help=_("a month's report for a funder, as a PDF"))
    report.add_argument("--month", required=True, help=_("the month, YYYY-MM"))
    report.add_argument("--output", required=True, help=_("the PDF file to write"))
    report.add_argument("--config", help=site_help)
    report.add_argument("--from", dest="sources", nargs="+", action="extend", default=[],
                        help=sources_help)
    report.set_defaults(func=cmd_report)
    backup = sub.add_parser("backup", help=_("copy this terminal's records safely (for the "
                                             "fleet playbook)"))
    backup.add_argument("output", help=_("the copy to write"))
    backup.add_argument("--config", help=site_help)
    backup.set_defaults(func=cmd_backup)
