"""The command line: refuse clearly, then lay the terminal down and say what changed.

Exit status: 0 done (or nothing to do), 1 with ``--check`` when something would
change, 2 on an error (not Debian, not root, site file missing or unfit, printer
not answering, a command that failed).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from kiosk.i18n import _, language_from_environment, set_language
from kiosk_provision import layout, site, system
from kiosk_provision.tree import ProvisionError, Tree


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk-provision", description=_(
        "Turn this Debian 12 machine (or an image tree) into a PLUS kiosk terminal. "
        "Running it again changes only what differs."))
    parser.add_argument("--site", required=True, help=_("the site file (TOML) to install"))
    parser.add_argument("--root", default="/", help=_("an image tree to write into "
                                                      "instead of this machine"))
    parser.add_argument("--check", action="store_true",
                        help=_("show what would change, change nothing"))
    parser.add_argument("--lang", choices=("fr", "gcf", "en"),
                        help=_("language of the messages"))
    return parser


def os_release(root: Path) -> dict[str, str]:
    values = {}
    for candidate in ("etc/os-release", "usr/lib/os-release"):
        try:
            text = (root / candidate).read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _sep, value = line.partition("=")
            values[key.strip()] = value.strip().strip('"')
        break
    return values


def preflight(root: Path) -> None:
    """The reasons to stop before touching anything."""
    if os.geteuid() != 0:
        raise ProvisionError(_("kiosk-provision must run as root (it creates users and system "
                               "files): sudo kiosk-provision …"))
    if not root.is_dir():
        raise ProvisionError(_("{root} is not a folder.").format(root=root))
    release = os_release(root)
    if release.get("ID") != "debian":
        raise ProvisionError(_("This is not Debian ({name}): kiosk-provision only knows "
                               "Debian 12.").format(name=release.get("PRETTY_NAME")
                                                    or release.get("ID") or _("unknown system")))


def provision(root: Path, site_file: Path, check: bool) -> Tree:
    preflight(root)
    config, site_text = site.load(site_file)
    if config.printing.device_uri:
        site.check_printer(config.printing.device_uri)
    tree = Tree(root, check=check)
    system.ensure_packages(tree)
    system.ensure_accounts(tree)
    venv_changed = system.ensure_venv(tree)
    changed = layout.apply(tree, config, site_text)
    if venv_changed:
        changed |= {"daemon", "screen", "proxy-config"}
    system.apply_running(tree, changed)
    return tree


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    set_language(args.lang or language_from_environment())
    root = Path(args.root).resolve()
    try:
        tree = provision(root, Path(args.site), args.check)
    except ProvisionError as exc:
        print(_("kiosk-provision: error: {reason}").format(reason=exc), file=sys.stderr)
        return 2
    for change in tree.changes:
        print(change)
    for note in tree.notes:
        print(_("Note: {text}").format(text=note))
    count = len(tree.changes)
    if not count:
        print(_("Nothing to do: {root} is already a provisioned terminal.").format(root=root))
        return 0
    if args.check:
        print(_("{count} change(s) would be made (nothing was changed).").format(count=count))
        return 1
    print(_("{count} change(s) made.").format(count=count))
    return 0
