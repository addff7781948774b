"""``kioskctl``: the technician's and the agent's command line.

Exit statuses are part of the interface, so scripts can rely on them:
``check-url`` exits 0 when the address is allowed and 1 when it is blocked;
``status`` 1 when the last wipe left something; ``reset`` 1 when the wipe left
something or the token was refused; every command exits 2 on a usage or
configuration error (or when the daemon does not answer).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from kiosk import config as site_config
from kiosk.daemon_client import DaemonClient, DaemonError, DaemonUnreachable
from kiosk.i18n import LANGUAGES, _, current_language, language_from_environment, set_language
from kiosk.proxy import ProxyConfigError

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


def _client(args: argparse.Namespace) -> tuple[DaemonClient, site_config.SiteConfig]:
    config = _load(args.config)
    return DaemonClient(args.socket or config.daemon.socket, language=current_language()), config


def cmd_status(args: argparse.Namespace) -> int:
    client, _config = _client(args)
    status = client.status()
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=2))
        return EXIT_OK
    session = status["session"]
    print(_("State: {state}").format(state=status["state"]))
    if session:
        print("  " + _("session {id} since {start}, {printed}/{quota} pages printed").format(
            id=session["id"], start=session["started_at"], printed=session["pages_printed"],
            quota=session["page_quota"]))
    if status.get("help_asked"):
        print("  " + _("A resident asks for help."))
    if status.get("countdown") is not None:
        print("  " + _("ends in {seconds} s unless the resident touches the screen").format(
            seconds=status["countdown"]))
    printer = status["printer"]
    print(_("Printer {queue}: {message}").format(queue=printer.get("queue"),
                                                   message=printer.get("message", "?")))
    scanner = status["scanner"]
    print(_("Scanner: {device}").format(device=scanner.get("device") or "-") + " — " +
          (_("available") if scanner.get("available") else _("not available")))
    for device in status["devices"]:
        refused = " (" + _("refused") + ")" if device.get("refused") else ""
        print(f"  {device['kind']}: {device['name']}{refused}")
    for kind, count in status["leftovers"].items():  # kinds and counts, never names
        print(_("LEFTOVER: {item}").format(item=f"{kind} ×{count}"))
    return EXIT_OK if not status["leftovers"] else EXIT_BLOCKED


def cmd_reset(args: argparse.Namespace) -> int:
    client, config = _client(args)
    token_file = args.token_file or config.daemon.agent_token_file
    try:
        token = open(token_file, encoding="utf-8").read().strip()
    except OSError as exc:
        print(_("Cannot read the agent token {path}: {error}").format(
            path=token_file, error=exc.strerror), file=sys.stderr)
        return EXIT_ERROR
    report = client.agent_reset(token)
    if report["wiped"]:
        print(_("Session ended and wiped in {ms} ms; the kiosk is ready.").format(
            ms=report["duration_ms"]))
        return EXIT_OK
    print(_("The wipe left {count} item(s); the kiosk stays closed:").format(
        count=sum(report["leftovers"].values())))
    for kind, count in report["leftovers"].items():
        print(f"  {kind} ×{count}")
    return EXIT_BLOCKED


def cmd_allowlist_suggest(args: argparse.Namespace) -> int:
    from kiosk.allowlist_suggest import as_toml, suggest
    try:
        proposals = suggest(args.file)
    except OSError as exc:
        print(_("Cannot read the recording {path}: {error}").format(
            path=args.file, error=exc.strerror), file=sys.stderr)
        return EXIT_ERROR
    if not proposals:
        print(_("Nothing was refused during this visit: no rule to add."))
        return EXIT_OK
    sys.stdout.write(as_toml(proposals))
    return EXIT_OK


def cmd_pin_hash(args: argparse.Namespace) -> int:
    """Ask the agents' PIN twice (never on the command line: shell history keeps it) and
    write its hash to the site's [agent] pin_file, not the site file the browser can read."""
    import getpass
    from kiosk.agent_pin import MAX_DIGITS, MIN_DIGITS, hash_pin, valid_pin, write_hash
    target = args.output or _load(args.config).agent.pin_file
    first = getpass.getpass(_("New agent PIN ({low} to {high} digits): ").format(
        low=MIN_DIGITS, high=MAX_DIGITS))
    if not valid_pin(first):
        print(_("The PIN must be {low} to {high} digits.").format(low=MIN_DIGITS, high=MAX_DIGITS),
              file=sys.stderr)
        return EXIT_ERROR
    if getpass.getpass(_("The same PIN again: ")) != first:
        print(_("The two PINs differ; nothing was changed."), file=sys.stderr)
        return EXIT_ERROR
    if target == "-":  # for a fleet's secret store
        print(hash_pin(first))
        return EXIT_OK
    try:
        write_hash(target, first)
    except OSError as exc:
        print(_("Cannot write {path}: {error}").format(path=target, error=exc.strerror or exc),
              file=sys.stderr)
        return EXIT_ERROR
    print(_("The agent PIN was changed in {path}. The screen uses it once restarted "
            "(systemctl restart plus-kiosk-shell.service).").format(path=target), file=sys.stderr)
    return EXIT_OK


def cmd_guides_check(args: argparse.Namespace) -> int:
    from kiosk.guides.check import check
    config = _load(args.config)
    report = check(config, [Path(d) for d in args.dir] or None)
    for problem in report.problems:
        print(problem, file=sys.stderr if problem.severity == "error" else sys.stdout)
    errors = len(report.errors)
    print(_("{files} guide file(s) checked against {site}: {errors} error(s), "
            "{warnings} warning(s).").format(files=report.files, site=config.source,
                                             errors=errors,
                                             warnings=len(report.problems) - errors))
    return EXIT_BLOCKED if errors else EXIT_OK


def cmd_guides_export(args: argparse.Namespace) -> int:
    from kiosk.guides import load_for_site
    from kiosk.guides.publish import export
    config = _load(args.config)
    library = load_for_site(config)
    written = export(library, Path(args.directory), config.site.name)
    print(_("{count} page(s) written to {directory}; publish them at {url}").format(
        count=len(written), directory=args.directory,
        url=config.guides.public_base_url or _("the address set as public_base_url")))
    return EXIT_OK


def cmd_guides_search(args: argparse.Namespace) -> int:
    from kiosk.guides import load_for_site
    from kiosk.guides.search import GuideIndex
    config = _load(args.config)
    index = GuideIndex(load_for_site(config))
    language = current_language()
    hits = index.search(" ".join(args.words))
    for guide in hits:
        print(f"{guide.id:<36}{guide.title.get(language) or guide.title['fr']}")
    return EXIT_OK if hits else EXIT_BLOCKED


def cmd_proxy_config(args: argparse.Namespace) -> int:
    """Print Squid's configuration, or install it where Squid reads it.

    ``--output`` rewrites the file only when the text changed and says which on
    stderr, so the proxy unit's reload restarts Squid only when it must.
    """
    from kiosk.proxy import squid_config, write_if_changed
    text = squid_config(_load(args.config))
    if not args.output:
        sys.stdout.write(text)
        return EXIT_OK
    try:
        changed = write_if_changed(Path(args.output), text)
    except OSError as exc:
        print(_("Cannot write {path}: {error}").format(path=args.output, error=exc.strerror),
              file=sys.stderr)
        return EXIT_ERROR
    print((_("Proxy configuration written to {path}.") if changed else
           _("Proxy configuration {path} unchanged.")).format(path=args.output), file=sys.stderr)
    return EXIT_OK


def cmd_portals_probe(args: argparse.Namespace) -> int:
    """Fetch every portal and guide address as the kiosk would (kiosk.probe)."""
    from kiosk.probe import main as probe
    return probe(_load(args.config), direct=args.direct, as_json=args.json)


def cmd_sweep(args: argparse.Namespace) -> int:
    """Search the terminal's writable places for a test session's canary (kiosk.sweep)."""
    from kiosk.sweep import command
    config = _load(args.config)
    return command(args.canary, args.place, (config.daemon.shell_user, config.browser.user),
                   args.time_budget)


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

    suggest_command = commands.add_parser(
        "allowlist-suggest", help=_("propose allow rules from a recorded visit "
                                    "(kiosk-browser --record FILE)"))
    suggest_command.add_argument("file")
    suggest_command.set_defaults(func=cmd_allowlist_suggest)

    proxy_config = commands.add_parser(
        "proxy-config", help=_("print the filtering proxy's (Squid) configuration for the site"))
    proxy_config.add_argument("--config", help=_("site file (default: the one in use)"))
    proxy_config.add_argument("--output", help=_("write it to this file (only when it changed) "
                                                 "instead of printing it"))
    proxy_config.set_defaults(func=cmd_proxy_config)

    pin_hash = commands.add_parser("pin-hash", help=_("set a new agent PIN (its hash goes to "
                                                      "the file [agent] pin_file names)"))
    pin_hash.add_argument("--config", help=_("site file (default: the one in use)"))
    pin_hash.add_argument("--output", help=_("write the hash to this file instead "
                                             "(\"-\": print it)"))
    pin_hash.set_defaults(func=cmd_pin_hash)

    guides = commands.add_parser("guides", help=_("step-by-step guides"))
    guide_commands = guides.add_subparsers(dest="guides_command", required=True,
                                           parser_class=_Parser)
    guides_check = guide_commands.add_parser(
        "check", help=_("check every guide: format, three languages, allowlist, step length"))
    guides_check.add_argument("--config", help=_("site file (default: the one in use)"))
    guides_check.add_argument("--dir", action="append", default=[],
                              help=_("folder of guides (default: the bundled ones); repeatable"))
    guides_check.set_defaults(func=cmd_guides_check)
    guides_export = guide_commands.add_parser(
        "export", help=_("write the public copies of the guides (HTML) into a folder"))
    guides_export.add_argument("directory")
    guides_export.add_argument("--config", help=_("site file (default: the one in use)"))
    guides_export.set_defaults(func=cmd_guides_export)
    guides_search = guide_commands.add_parser(
        "search", help=_("find guides by words, without accents or capitals mattering"))
    guides_search.add_argument("words", nargs="+")
    guides_search.add_argument("--config", help=_("site file (default: the one in use)"))
    guides_search.set_defaults(func=cmd_guides_search)

    portals = commands.add_parser("portals", help=_("the site's portals"))
    portal_commands = portals.add_subparsers(dest="portals_command", required=True,
                                             parser_class=_Parser)
    probe = portal_commands.add_parser(
        "probe", help=_("fetch every portal and guide address as the kiosk would and report "
                        "what moved (exit 1 on drift)"))
    probe.add_argument("--config", help=_("site file (default: the one in use)"))
    probe.add_argument("--direct", action="store_true",
                       help=_("connect directly instead of through [proxy] listen "
                              "(a machine without Squid)"))
    probe.add_argument("--json", action="store_true", help=_("print the report as JSON"))
    probe.set_defaults(func=cmd_portals_probe)

    sweep = commands.add_parser("sweep", help=_("agent, as root: after a test session, search "
                                                "every writable place for its canary"))
    sweep.add_argument("--canary", required=True,
                       help=_("the unique text typed and saved during the test session"))
    sweep.add_argument("--place", action="append", default=[],
                       help=_("a folder, a file or journal:NAME to search instead of the "
                              "terminal's places; repeatable"))
    sweep.add_argument("--time-budget", type=float, default=600.0,
                       help=_("give up (not clean) after this many seconds; default 600"))
    sweep.add_argument("--config", help=_("site file (default: the one in use)"))
    sweep.set_defaults(func=cmd_sweep)

    from kiosk.stats_cli import register as stats_commands  # stats, stats report, stats backup
    stats_commands(commands, _Parser)

    for name, func, text in (
            ("status", cmd_status, _("show the session, printer, scanner and plugged devices")),
            ("reset", cmd_reset, _("agent: end the session, wipe it and stop a stuck browser"))):
        command = commands.add_parser(name, help=text)
        command.add_argument("--config", help=_("site file (default: the one in use)"))
        command.add_argument("--socket", help=_("daemon socket (default: from the site file)"))
        if name == "status":
            command.add_argument("--json", action="store_true", help=_("print the status as JSON"))
        else:
            command.add_argument("--token-file",
                                 help=_("agent token file (default: from the site file)"))
        command.set_defaults(func=func)
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
    except ProxyConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_ERROR
    except DaemonUnreachable as exc:
        print(_("The kiosk daemon does not answer on {path}. Is it running?").format(
            path=exc.message.split(":")[0]), file=sys.stderr)
        return EXIT_ERROR
    except DaemonError as exc:
        print(_("The daemon refused: {message}").format(message=exc.message), file=sys.stderr)
        return EXIT_BLOCKED if exc.status == 401 else EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
