"""``kioskctl``: the technician's and the agent's command line.

Exit statuses are part of the interface, so scripts can rely on them:
``check-url`` exits 0 when the address is allowed and 1 when it is blocked;
every command exits 2 on a usage or configuration error.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from kiosk import config as site_config
from kiosk.i18n import LANGUAGES, _, language_from_environment, set_language

EXIT_OK, EXIT_BLOCKED, EXIT_ERROR = 0, 1, 2


def _load(path: str | None) -> site_config.SiteConfig:
    return site_config.load(path)


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.file)
    site = config.site
    out = sys.stdout.write
    out(_("Site file: {path}").format(path=config.source) + "\n")
    out(_("Site: {name} — {commune} ({kind})").format(
        name=site.name, commune=site.commune, kind=site.kind) + "\n")
    out(_("Languages: {languages} (default {default})").format(
        languages=", ".join(site.languages), default=site.default_language) + "\n")
    session = config.session
    out(_("Idle: warning after {warning} s, then a {countdown} s countdown; "
          "print quota {quota} pages per session").format(
        warning=session.idle_warning_seconds, countdown=session.idle_countdown_seconds,
        quota=session.print_quota_pages) + "\n")
    out(_("Daemon socket: {socket}; data directory: {data}").format(
        socket=config.daemon.socket, data=config.daemon.data_dir) + "\n\n")

    out(_("Effective URL rules (the most specific rule wins; allow wins a tie):") + "\n")
    out("  " + _("Always refused, whatever the rules say: file:, javascript:, data: pages, "
                 "blob: of another origin, chrome:, view-source:, devtools:, about: other than "
                 "about:blank, and every scheme other than http(s) and ws(s).") + "\n")
    policy = config.policy()
    width = max(len(rule.text) for rule in policy.filter.rules)
    kind_width = max(len(_("allow")), len(_("block"))) + 2
    for rule in sorted(policy.filter.rules, key=lambda r: (r.allow, r.order)):
        source = policy.sources.get(rule.describe(), _("kiosk policy"))
        kind = _("allow") if rule.allow else _("block")
        out(f"  {kind:<{kind_width}}{rule.text:<{width}}  {source}\n")
    out("\n" + _("Portals:") + "\n")
    for portal in config.portal:
        names = " / ".join(getattr(portal.name, lang) for lang in site.languages)
        out(f"  {portal.id:<16}{names}\n  {'':<16}{portal.start_url}\n")
    out("\n" + _("{count} rules, {portals} portals: the site file is valid.").format(
        count=len(policy.filter.rules), portals=len(config.portal)) + "\n")
    return EXIT_OK


def cmd_check_url(args: argparse.Namespace) -> int:
    config = _load(args.config)
    verdict = config.policy().decide(args.url, subresource=args.subresource,
                                     initiator=args.initiator)
    if args.json:
        print(json.dumps({**verdict.as_dict(), "reason": verdict.reason}, ensure_ascii=False))
    else:
        word = _("ALLOWED") if verdict.allowed else _("BLOCKED")
        print(f"{word}  {verdict.url}")
        if verdict.url != args.url.strip():
            print("  " + _("(written as {url})").format(url=args.url))
        source = f" ({verdict.source})" if verdict.source else ""
        print("  " + _("rule: {rule}").format(rule=verdict.rule) + source)
        print("  " + verdict.reason)
    return EXIT_OK if verdict.allowed else EXIT_BLOCKED


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, _("kioskctl: error: {message}").format(message=message) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kioskctl", description=_("Manage a PLUS kiosk terminal."))
    parser.add_argument("--lang", choices=LANGUAGES,
                        help=_("language of the messages (default: from the environment)"))
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    check_config = commands.add_parser(
        "check-config", help=_("validate a site file and print the effective rules"))
    check_config.add_argument("file", nargs="?", help=_("site file (default: the one in use)"))
    check_config.set_defaults(func=cmd_check_config)

    check_url = commands.add_parser(
        "check-url", help=_("say whether an address is allowed, and which rule decided"))
    check_url.add_argument("url")
    check_url.add_argument("--config", help=_("site file (default: the one in use)"))
    check_url.add_argument("--subresource", action="store_true",
                           help=_("decide as an image, script or other part of a page"))
    check_url.add_argument("--initiator", help=_("origin of the page making the request"))
    check_url.add_argument("--json", action="store_true", help=_("print the decision as JSON"))
    check_url.set_defaults(func=cmd_check_url)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # The language must be known before the parser (and its help) is built.
    language = language_from_environment()
    for index, arg in enumerate(argv):
        if arg == "--lang" and index + 1 < len(argv):
            language = argv[index + 1]
        elif arg.startswith("--lang="):
            language = arg.split("=", 1)[1]
    set_language(language)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except site_config.ConfigError as exc:
        print(_("The site file has {count} problem(s):").format(count=len(exc.problems)),
              file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
