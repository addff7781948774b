"""``kiosk-daemon``: serve the API on the Unix socket with waitress.

Start-up order is part of the first promise: the data directory is wiped and
verified *before* the socket exists, so after a crash or a power cut no client
can reach a previous resident's files. Under systemd (``Type=notify``) the
daemon reports READY only then, and sends watchdog heartbeats only while a real
request through its own socket succeeds.

``--wipe-only`` runs that same wipe and exits (``plus-kiosk-wipe.service``, at
boot, before anything a resident can see). Under systemd the agent token comes
from ``LoadCredential=``: the file in /etc stays readable by root alone.
"""

from __future__ import annotations

import argparse
import grp
import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Sequence

import waitress

from kiosk import config as site_config
from kiosk import metrics, sdnotify
from kiosk.daemon.app import MAX_UPLOAD_BYTES, create_app
from kiosk.daemon.callers import install_channel
from kiosk.daemon.runtime import Runtime
from kiosk.daemon_client import DaemonClient, DaemonError
from kiosk.i18n import _, language_from_environment, set_language

log = logging.getLogger("kiosk.daemon")

# What any client of the socket may cost the daemon (waitress's defaults let 100 idle
# connections starve /health, and spooled a 400 MB body to /tmp before Flask refused it).
# 400 connections: a few KB each, far below the descriptor limit (poll(), not select(),
# so no 1,024 ceiling); the shell and the browser need a handful. An idle connection is
# closed after 10 s (checked every 2 s): the shell polls every second and the client
# reconnects by itself, so only a client that says nothing loses its seat. Headers are
# small (16 KB). The largest body is an upload to print (50 MB) plus its multipart
# envelope; bodies are refused beyond it from Content-Length, before they are read, and
# kept in memory below it: a resident's document is never spooled to disk (the unit's
# MemoryMax= bounds what many of them can cost).
MAX_BODY_BYTES = MAX_UPLOAD_BYTES + 1024 * 1024
SERVER_LIMITS = {"connection_limit": 400, "asyncore_use_poll": True, "channel_timeout": 10,
                 "cleanup_interval": 2, "max_request_header_size": 16 * 1024,
                 "max_request_body_size": MAX_BODY_BYTES, "inbuf_overflow": MAX_BODY_BYTES}


def _socket_in_use(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _heartbeats(socket_path: Path, interval: float, stop: threading.Event) -> None:
    client = DaemonClient(socket_path, timeout=interval)
    while not stop.wait(interval):
        try:
            client.health()
        except DaemonError as exc:
            log.error("self-check failed, withholding the watchdog heartbeat: %s", exc)
            continue
        sdnotify.notify("WATCHDOG=1")


def _with_credentials(config: site_config.SiteConfig) -> site_config.SiteConfig:
    """Read the agent token where systemd put a copy for us, if it did."""
    directory = os.environ.get("CREDENTIALS_DIRECTORY")
    token = Path(directory) / "agent-token" if directory else None
    if token is None or not token.is_file():
        return config
    daemon = config.daemon.model_copy(update={"agent_token_file": str(token)})
    return config.model_copy(update={"daemon": daemon})


def wipe_only(config: site_config.SiteConfig, data_dir: Path) -> int:
    """One verified wipe, no socket: 0 when clean, 1 when something survived."""
    runtime = Runtime.build(config, data_dir, share_listener=False)
    report = runtime.sessions.wipe("boot")
    for kind, count in report.as_dict()["leftovers"].items():  # kinds, never names
        print(_("Left after the wipe: {item}").format(item=f"{kind} ×{count}"), file=sys.stderr)
    log.info("boot wipe: %s", report.as_dict())
    return 0 if report.wiped else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk-daemon", description=_(
        "The PLUS kiosk daemon: sessions, wipe, printing, scanning."))
    parser.add_argument("--config", help=_("site file (default: the one in use)"))
    parser.add_argument("--socket", help=_("Unix socket to listen on (default: from the site file)"))
    parser.add_argument("--data-dir", help=_("where session files live (default: from the site file)"))
    parser.add_argument("--wipe-only", action="store_true",
                        help=_("wipe the data directory, verify it and exit (at boot)"))
    parser.add_argument("--log-level", default="INFO")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    set_language(language_from_environment())
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = site_config.load(args.config)
    except site_config.ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    config = _with_credentials(config)
    socket_path = Path(args.socket or config.daemon.socket)
    data_dir = Path(args.data_dir or config.daemon.data_dir)
    if args.wipe_only:
        return wipe_only(config, data_dir)
    if _socket_in_use(socket_path):
        print(_("Another daemon already listens on {path}.").format(path=socket_path),
              file=sys.stderr)
        return 2
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)

    runtime = Runtime.build(config, data_dir)
    runtime.start()  # the boot wipe happens here, before anyone can connect
    app = create_app(runtime, str(socket_path))
    # The shell's polls tell the agents' office whether its screen loop still turns.
    metrics.watch_shell(app, lambda: getattr(runtime, "metrics", None))
    server = waitress.create_server(app,
                                    unix_socket=str(socket_path),
                                    unix_socket_perms="660", threads=8, ident="plus-kiosk",
                                    **SERVER_LIMITS)
    install_channel(server)  # each connection's uid (SO_PEERCRED) decides what it may ask
    if config.daemon.socket_group:
        try:
            os.chown(socket_path, -1, grp.getgrnam(config.daemon.socket_group).gr_gid)
        except (KeyError, PermissionError) as exc:
            log.warning("socket group %s not applied: %s", config.daemon.socket_group, exc)

    stop = threading.Event()

    def shutdown(signum: int, frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()
        raise SystemExit(0)  # waitress leaves its loop on SystemExit, even with open clients

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    interval = sdnotify.watchdog_interval()
    if interval:
        threading.Thread(target=_heartbeats, args=(socket_path, interval, stop),
                         name="watchdog", daemon=True).start()
    sdnotify.notify("READY=1")
    log.info("listening on %s, data in %s", socket_path, data_dir)
    try:
        server.run()
    finally:
        sdnotify.notify("STOPPING=1")
        runtime.stop()
        socket_path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
