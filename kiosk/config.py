"""A site's configuration: one commented TOML file, checked strictly.

A terminal in a town hall is configured by a technician with a text editor,
often far from the developers, so a mistake must be found at load time and
named precisely: the file, the line, the key, and for a misspelt key the
closest valid one. The result is immutable: nothing at run time can widen the
allowlist a terminal was started with.

Where the file comes from: ``--config``, else ``$KIOSK_CONFIG``, else
``/etc/plus-kiosk/kiosk.toml``, else the bundled Espace Sud file.
"""

from __future__ import annotations

import os
import re
import tomllib
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from kiosk import tomlpos, weburl
from kiosk.config_messages import (
    BUNDLED_ICONS,
    ConfigError,
    ConfigProblem,
    dotted,
    message,
    valid_keys,
)
from kiosk.i18n import LANGUAGES, _
from kiosk.policy import KioskPolicy
from kiosk.urlfilter import InvalidFilter, parse_filter

SYSTEM_CONFIG = Path("/etc/plus-kiosk/kiosk.toml")
BUNDLED_SITE = "espace-sud.toml"


def bundled_config() -> Path:
    return Path(str(resources.files("kiosk") / "sites" / BUNDLED_SITE))


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The site file to use, in the documented order."""
    if explicit:
        return Path(explicit)
    if os.environ.get("KIOSK_CONFIG"):
        return Path(os.environ["KIOSK_CONFIG"])
    if SYSTEM_CONFIG.is_file():
        return SYSTEM_CONFIG
    return bundled_config()


# --- Field checks --------------------------------------------------------------

def _check_rule(text: str) -> str:
    try:
        rule = parse_filter(text, allow=True)
    except InvalidFilter as exc:
        raise PydanticCustomError("url_rule", "{reason}", {"reason": exc.reason}) from None
    host = rule.host.lstrip(".")
    if not host.isascii():
        try:
            ascii_host = weburl.ada_url.idna_to_ascii(host)
        except (ValueError, UnicodeError):
            ascii_host = ""
        raise PydanticCustomError("url_rule_idn", "{host}", {"host": host, "ascii": ascii_host})
    return text


def _check_start_url(text: str) -> str:
    parsed = weburl.parse(text)
    if parsed is None or parsed.scheme not in ("http", "https"):
        raise PydanticCustomError("start_url", "{url}", {"url": text})
    return text


def _check_base_url(text: str) -> str:
    parsed = weburl.parse(text) if text else None
    if text and (parsed is None or parsed.scheme != "https" or not text.endswith("/")):
        raise PydanticCustomError("base_url", "{url}", {"url": text})
    return text




def _check_icon(text: str) -> str:
    if text and text not in BUNDLED_ICONS and not (
            text.startswith("/") and text.lower().endswith((".png", ".jpg", ".jpeg"))):
        raise PydanticCustomError("icon", "{icon}", {"icon": text})
    return text


def _check_path(text: str) -> str:
    if not text.startswith("/"):
        raise PydanticCustomError("absolute_path", "{path}", {"path": text})
    return text


Rule = Annotated[StrictStr, AfterValidator(_check_rule)]
StartURL = Annotated[StrictStr, AfterValidator(_check_start_url)]
AbsolutePath = Annotated[StrictStr, AfterValidator(_check_path)]
Language = Literal["fr", "gcf", "en"]
Text = Annotated[StrictStr, Field(min_length=1)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_phone(text: str) -> str:
    """A number a resident can dial: digits, spaces, dots, dashes, a leading +."""
    if text and not (re.fullmatch(r"\+?[0-9][0-9 .-]{2,22}[0-9]", text)
                     and sum(c.isdigit() for c in text) >= 4):
        raise PydanticCustomError("help_phone", _(
            "must be a phone number such as \"0596 12 34 56\", or \"\", not '{value}'"),
            {"value": text})
    return text


class Site(_Section):
    name: Text
    commune: Text
    kind: Literal["municipal", "bus"]
    default_language: Language = "fr"
    languages: tuple[Language, ...] = Field(default=LANGUAGES, min_length=1)
    # « Besoin d'aide » at a town-hall terminal: the number shown to call for help ("" = none)
    help_phone: Annotated[StrictStr, AfterValidator(_check_phone)] = ""


class Session(_Section):
    idle_warning_seconds: StrictInt = Field(default=120, ge=10, le=3600)
    idle_countdown_seconds: StrictInt = Field(default=30, ge=5, le=300)
    print_quota_pages: StrictInt = Field(default=20, ge=0, le=500)


class Daemon(_Section):
    socket: AbsolutePath = "/run/plus-kiosk/daemon.sock"
    socket_group: StrictStr = ""
    data_dir: AbsolutePath = "/var/lib/plus-kiosk"
    agent_token_file: AbsolutePath = "/etc/plus-kiosk/agent-token"
    x_display: StrictStr = ":0"
    # The user the shell runs as: the daemon gives it the shell's routes, and the
    # browser's control socket answers it (kiosk.daemon.callers); "" = none.
    shell_user: StrictStr = "kiosk"


class Printing(_Section):
    queue: Annotated[StrictStr, Field(min_length=1)] = "plus"
    device_uri: StrictStr = ""        # the printer, for kiosk-provision; "" = queue made by hand
    model: Annotated[StrictStr, Field(min_length=1)] = "everywhere"   # lpadmin -m (driverless)
    # The root step that deletes CUPS's own copies of cut-short prints (kiosk/printing/
    # cups_clean.py): ["auto"] = plus-kiosk-cups-clean.service on a terminal, none elsewhere;
    # [] = none; else a command printing the step's JSON report (tests, make demo).
    cleanup_command: tuple[StrictStr, ...] = ("auto",)


class Scanning(_Section):
    device: StrictStr = ""


def _check_interface(text: str) -> str:
    """A Linux interface name: at most 15 characters, no '/' and no space."""
    if text and not re.fullmatch(r"[A-Za-z0-9_.:-]{1,15}", text):
        raise PydanticCustomError("share_interface", _(
            "must be a network interface name such as \"wlan0\", or \"\", not '{value}'"),
            {"value": text})
    return text


class Sharing(_Section):
    # The interface phones reach the terminal on (the bus's wifi): the share listener
    # binds its address and is tied to it, so the 4G uplink never answers.
    interface: Annotated[StrictStr, AfterValidator(_check_interface)] = ""
    # An explicit address instead, which wins over interface ("127.0.0.1" in tests).
    # Neither set (the default) = no listener, sending to phones is off: no default
    # address is right everywhere (0.0.0.0 includes the uplink, interface names differ).
    listen: StrictStr = ""
    port: StrictInt = Field(default=8470, ge=0, le=65535)
    public_url: StrictStr = ""
    lifetime_seconds: StrictInt = Field(default=600, ge=10, le=3600)


class Devices(_Section):
    usb_storage: Literal["refuse", "allow"] = "refuse"


def _refuse_pin_hash(text: str) -> str:
    """The site file is readable by the browser's group: a PIN hash there can be guessed
    offline. It lives in its own file now ([agent] pin_file)."""
    if text:
        raise PydanticCustomError("pin_hash_moved", "{value}", {"value": "pin_hash"})
    return text


class Agent(_Section):
    pin_hash: Annotated[StrictStr, AfterValidator(_refuse_pin_hash)] = ""  # moved: pin_file
    # Written by `kioskctl pin-hash`; readable by the shell alone (on a terminal the shell's
    # unit gets a copy through LoadCredential=). Missing or empty = agent menu disabled.
    pin_file: AbsolutePath = "/etc/plus-kiosk/agent-pin"
    shutdown_command: tuple[StrictStr, ...] = ("systemctl", "poweroff")


class Browser(_Section):
    command: tuple[StrictStr, ...] = ("kiosk-browser",)
    # "systemd": one plus-kiosk-browser@ unit per session, as the resident user (terminals);
    # "direct": a child of the daemon (tests, demo); "auto": systemd under plus-kiosk-daemon.service
    launcher: Literal["auto", "systemd", "direct"] = "auto"
    # The system user the browser runs as on a terminal (its own: not the shell's). The
    # wipe checks that none of its processes survived a session; "" = no such check
    # (tests and make demo, where the browser runs as whoever started the daemon).
    user: StrictStr = "kiosk-browser"


def _check_proxy_listen(text: str) -> str:
    """A loopback address and port: the proxy is never offered to the wifi."""
    host, _sep, port = text.rpartition(":")
    host = host.strip("[]")
    if text and not (host in ("127.0.0.1", "::1") and port.isdigit() and 0 < int(port) < 65536):
        raise PydanticCustomError("proxy_listen", "{value}", {"value": text})
    return text


class Proxy(_Section):
    # Squid, the filtering proxy every page goes through (kioskctl proxy-config):
    # "127.0.0.1:3128", or "" where no proxy runs (a developer's machine, some tests).
    listen: Annotated[StrictStr, AfterValidator(_check_proxy_listen)] = "127.0.0.1:3128"

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2]) if self.listen else 0

    @property
    def url(self) -> str:
        """The proxy as the browser is told it ("" = none)."""
        return f"http://{self.listen}" if self.listen else ""


def _check_optional_path(text: str) -> str:
    return _check_path(text) if text else text


class Monitoring(_Section):
    # The daemon's state for node_exporter's textfile collector (kiosk/metrics.py): Debian's
    # prometheus-node-exporter reads *.prom in this folder; "" = no metrics written.
    textfile: Annotated[StrictStr, AfterValidator(_check_optional_path)] = \
        "/var/lib/prometheus/node-exporter/plus_kiosk.prom"
    # Where node_exporter listens (kiosk-provision): the terminal's address on the agents'
    # network, e.g. "192.168.10.20:9100"; loopback by default, never every interface (the
    # bus's public wifi and its 4G uplink would be offered the machine's metrics).
    listen: Annotated[StrictStr, Field(pattern=r"^(\[[0-9a-fA-F:.]+\]|[0-9.]+):[0-9]{1,5}$")] = \
        "127.0.0.1:9100"


class Guides(_Section):
    public_base_url: Annotated[StrictStr, AfterValidator(_check_base_url)] = ""
    extra_dir: StrictStr = ""         # a folder of the site's own guides, beside the bundled ones


# The funders' procedure categories (kioskctl stats): a portal's own, else its id's default.
CATEGORIES = ("identity", "family", "health", "work", "housing", "money", "energy", "other")
DEFAULT_CATEGORIES = {"ants": "identity", "caf": "family", "ameli": "health",
                      "france-travail": "work", "impots": "money", "edf": "energy",
                      "sme": "energy"}


class Records(_Section):
    # The anonymous session records (kiosk.records): outside data_dir, whose wipe would
    # take them for a resident's leftovers; on a terminal systemd's StateDirectory.
    path: AbsolutePath = "/var/lib/plus-kiosk-records/records.sqlite"
    retention_days: StrictInt = Field(default=400, ge=1, le=3660)
    # "" = a hash of /etc/machine-id (never the raw id); else letters, digits, "-"
    terminal_id: Annotated[StrictStr, Field(pattern=r"^[a-z0-9-]{0,32}$")] = ""
    feedback_seconds: StrictInt = Field(default=300, ge=1, le=3600)  # end screen's question


class Filter(_Section):
    allow: tuple[Rule, ...] = ()
    block: tuple[Rule, ...] = ()
    insecure_http: StrictBool = False


class Names(_Section):
    fr: Text
    gcf: Text
    en: Text


class BusStop(_Section):
    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                     "sunday"]
    commune: Text
    place: StrictStr = ""
    start: Annotated[StrictStr, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "08:00"
    end: Annotated[StrictStr, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "13:00"


class Portal(_Section):
    id: Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=32)]
    name: Names
    start_url: StartURL
    allow: tuple[Rule, ...] = Field(min_length=1)
    # the tile's picture: a bundled pictogram (water, electricity, health, car, work,
    # family, tax, public) or the absolute path of the site's own PNG
    icon: Annotated[StrictStr, AfterValidator(_check_icon)] = ""
    # the funders' category (CATEGORIES); "" = the default for the id, else "other"
    category: Literal["", *CATEGORIES] = ""  # type: ignore[valid-type]

    @property
    def funder_category(self) -> str:
        return self.category or DEFAULT_CATEGORIES.get(self.id, "other")


class SiteConfig(_Section):
    """A validated site file. ``source`` is where it was read from."""

    site: Site
    session: Session = Session()
    daemon: Daemon = Daemon()
    printing: Printing = Printing()
    scanning: Scanning = Scanning()
    sharing: Sharing = Sharing()
    devices: Devices = Devices()
    browser: Browser = Browser()
    proxy: Proxy = Proxy()
    agent: Agent = Agent()
    guides: Guides = Guides()
    records: Records = Records()
    monitoring: Monitoring = Monitoring()
    filter: Filter = Filter()
    portal: tuple[Portal, ...] = Field(min_length=1)
    bus_stop: tuple[BusStop, ...] = ()
    _source: str = PrivateAttr(default="")

    def next_stops(self, now: datetime | None = None, count: int = 3) -> list[BusStop]:
        """The bus's coming stops, from now on (a stop under way counts)."""
        now = now or datetime.now()
        days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
        upcoming = []
        for offset in range(8):
            day = now + timedelta(days=offset)
            for stop in self.bus_stop:
                if stop.weekday == days[day.weekday()] and \
                        (offset > 0 or stop.end > now.strftime("%H:%M")):
                    upcoming.append((offset, stop.start, stop))
        return [stop for _, _, stop in sorted(upcoming, key=lambda item: item[:2])][:count]

    @property
    def source(self) -> str:
        """The file this configuration was read from."""
        return self._source

    def portal_by_id(self, portal_id: str) -> Portal | None:
        return next((p for p in self.portal if p.id == portal_id), None)

    def rule_sources(self) -> dict[str, str]:
        """"allow <rule>" / "block <rule>" → where the rule is written."""
        sources: dict[str, str] = {}
        shared = _("shared rules")
        for rule in self.filter.block:
            sources.setdefault("block " + rule, shared)
        for rule in self.filter.allow:
            sources.setdefault("allow " + rule, shared)
        for portal in self.portal:
            for rule in portal.allow:
                sources.setdefault("allow " + rule, _("portal {id}").format(id=portal.id))
        return sources

    def allow_rules(self) -> list[str]:
        rules = list(self.filter.allow)
        for portal in self.portal:
            rules.extend(portal.allow)
        return list(dict.fromkeys(rules))

    def policy(self) -> KioskPolicy:
        return KioskPolicy(self.allow_rules(), self.filter.block, self.rule_sources(),
                           insecure_http=self.filter.insecure_http)


def _cross_checks(config: SiteConfig) -> list[tuple[tuple[Any, ...], str]]:
    problems: list[tuple[tuple[Any, ...], str]] = []
    if config.site.default_language not in config.site.languages:
        problems.append((("site", "default_language"),
                         _("'{lang}' is not among the offered languages").format(
                             lang=config.site.default_language)))
    if config.browser.user and config.browser.user == config.daemon.shell_user:
        problems.append((("browser", "user"),
                         _("the browser must run as its own user, not the shell's "
                           "({user})").format(user=config.browser.user)))
    seen: dict[str, int] = {}
    for index, portal in enumerate(config.portal):
        if portal.id in seen:
            problems.append((("portal", index, "id"),
                             _("the portal id '{id}' is used twice").format(id=portal.id)))
        seen.setdefault(portal.id, index)
    policy = config.policy()
    for index, portal in enumerate(config.portal):
        verdict = policy.decide(portal.start_url)
        if not verdict.allowed:
            problems.append((("portal", index, "start_url"),
                             _("the start page is not allowed by the rules ({rule})").format(
                                 rule=verdict.rule)))
    return problems


def load_text(text: str, filename: str = "<site>") -> SiteConfig:
    """Validate a site file's text; raise ConfigError naming every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise ConfigError([ConfigProblem(filename, int(match.group(1)) if match else None, "",
                                         _("TOML syntax error: {detail}").format(detail=exc))]) \
            from None
    lines = tomlpos.key_lines(text)
    try:
        config = SiteConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        paths = [tuple(error["loc"]) for error in errors]
        problems = []
        for error, path in zip(errors, paths, strict=True):
            if any(len(other) > len(path) and other[:len(path)] == path for other in paths):
                continue  # e.g. "list too short" because its only item was refused
            valid = valid_keys(SiteConfig, path[:-1])
            problems.append(ConfigProblem(filename, tomlpos.line_of(lines, path), dotted(path),
                                          message(error, valid)))
        raise ConfigError(problems) from None
    problems = [ConfigProblem(filename, tomlpos.line_of(lines, path), dotted(path), text)
                for path, text in _cross_checks(config)]
    if problems:
        raise ConfigError(problems)
    config._source = filename
    return config


def load(path: str | os.PathLike[str] | None = None) -> SiteConfig:
    """Find (see module doc), read and validate the site configuration."""
    found = find_config(path)
    try:
        text = found.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(str(found), None, "",
                                         _("cannot read the site file: {error}").format(
                                             error=exc.strerror if isinstance(exc, OSError)
                                             else exc))]) from None
    return load_text(text, str(found))
