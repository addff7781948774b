"""Chrome's URLBlocklist / URLAllowlist filter format, decided the way Chrome does.

Why re-implement it: the kiosk browser runs on Qt WebEngine, which has no
enterprise policy engine, yet technicians already know (and can test in any
Chrome) the filter format ``[scheme://][.]host[:port][/path][?query]``. The
kiosk therefore decides every request itself with these exact semantics:

* a filter is cut into components the way Chromium's URL fixer cuts it
  (``url_formatter::SegmentURL``), which is what makes ``example.com:8080``,
  ``user:pw@host``, ``host;8080``-style oddities land where Chrome lands them;
* the host is compared in Chromium's canonical form (``.host.``), so trailing
  dots are ignored and ``example.com`` never matches ``notexample.com``;
* among matching filters the most specific wins: exact host before subdomain
  match, then longer host, longer path, more query conditions, and allow beats
  block on a full tie; the ``*`` block filter is always the last resort;
* query tokens are matched like Chrome: for a block filter any occurrence of
  the key=value is enough, for an allow filter every occurrence of the key must
  carry the value.

Deliberate differences: Chrome ignores filters past the 1000th of a list; this
class keeps them all (``max_filters`` restores the cap). URLs that cannot be
parsed are blocked (Chrome never navigates to them anyway).

Matching goes through an index keyed by the canonical host and its dot-suffixes,
so a decision costs a handful of dictionary look-ups whatever the rule count.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Literal

import ada_url

from kiosk import weburl
from kiosk.i18n import _

__all__ = ["FilterRule", "InvalidFilter", "Decision", "URLFilter", "parse_filter"]

# Schemes that a "*" block filter does not reach (Chrome's internal pages;
# "chrome" since kBypassURLBlocklistWildcardForInternalChromeUrls became the default).
_WILDCARD_BYPASS_SCHEMES = frozenset({"chrome", "chrome-extension", "chrome-native",
                                      "chrome-search"})

# base::IsUnicodeWhitespace: where Chromium's fixer inserts "http://".
_UNICODE_SPACES = frozenset("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
                            + "".join(chr(c) for c in range(0x2000, 0x200B)))

# Schemes GURL parses with a host; every other scheme only supports "scheme:*".
_STANDARD_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp", "file", "filesystem"}) \
    | weburl.CHROME_STANDARD_SCHEMES

_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*\Z")
_PORT_RE = re.compile(r"\+?[0-9]+\Z")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# Marker between query tokens in the searchable form of a query (Chromium
# uses a byte above 127; canonical URLs never contain a control character).
_QD = "\x04"


class InvalidFilter(ValueError):
    """A filter Chrome would reject (and log) instead of applying."""

    def __init__(self, text: str, reason: str):
        super().__init__(f"{text!r}: {reason}")
        self.text = text
        self.reason = reason


def _lower_ascii(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _trim_url(text: str) -> tuple[int, int]:
    """Bounds of ``text`` without leading/trailing spaces and control characters."""
    begin, end = 0, len(text)
    while begin < end and text[begin] <= " ":
        begin += 1
    while end > begin and text[end - 1] <= " ":
        end -= 1
    return begin, end


# --- Cutting a filter into components (Chromium's SegmentURL) ---------------

@dataclass
class _Parts:
    scheme: tuple[int, int] | None = None
    host: tuple[int, int] | None = None
    port: tuple[int, int] | None = None
    path: tuple[int, int] | None = None
    query: tuple[int, int] | None = None


def _extract_scheme(text: str) -> tuple[int, int] | None:
    begin = 0
    while begin < len(text) and text[begin] <= " ":
        begin += 1
    colon = text.find(":", begin)
    return None if colon < 0 else (begin, colon)


def _has_port(text: str, colon: int) -> bool:
    """True for "www:123/": what looks like a scheme is a host and a port."""
    start = end = colon + 1
    while end < len(text) and text[end] not in "/\\?#":
        end += 1
    digits = text[start:end]
    return end > start and digits.isascii() and digits.isdigit() and int(digits) <= 65535


def _valid_scheme(text: str) -> tuple[tuple[int, int], str] | None:
    span = _extract_scheme(text)
    if span is None:
        return None
    raw = text[span[0]:span[1]]
    if not _SCHEME_RE.match(raw):
        return None
    scheme = _lower_ascii(raw)
    if "." in scheme or _has_port(text, span[1]):
        return None
    return span, scheme


def _parse_server_info(text: str, begin: int, end: int, parts: _Parts) -> None:
    if begin == end:
        return
    ipv6_end = end if text[begin] == "[" else -1
    colon = -1
    for i in range(begin, end):
        if text[i] == "]":
            ipv6_end = i
        elif text[i] == ":":
            colon = i
    if colon > ipv6_end:
        parts.host = (begin, colon) if colon > begin else None
        parts.port = (colon + 1, end)
    else:
        parts.host = (begin, end)


def _parse_standard(text: str, begin: int, end: int, parts: _Parts, has_scheme: bool) -> None:
    after = begin
    if has_scheme:
        after = text.index(":", begin) + 1
    while after < end and text[after] in "/\\":
        after += 1
    auth_end = after
    while auth_end < end and text[auth_end] not in "/\\?#":
        auth_end += 1
    at = text.rfind("@", after, auth_end)
    _parse_server_info(text, at + 1 if at >= 0 else after, auth_end, parts)
    # Path, query and fragment.
    path_end = end
    hash_at = text.find("#", auth_end, end)
    if hash_at >= 0:
        path_end = hash_at
    question = text.find("?", auth_end, path_end)
    if question >= 0:
        parts.query = (question + 1, path_end)
        path_end = question
    if path_end > auth_end:
        parts.path = (auth_end, path_end)


def _segment(text: str) -> tuple[str, str, _Parts]:
    """Return (scheme, text actually parsed, component spans).

    The scheme is "http" (or "ftp") when the filter has none; ``parts.scheme``
    then stays None, as in Chromium where the inserted scheme is not reported.
    """
    parts = _Parts()
    stripped = text.strip()
    if not stripped:
        return "", text, parts
    if stripped[0] in "/~":
        return "file", text, parts  # a POSIX path: Chrome's fixer says "file"
    if stripped[0] == ":":
        # Chromium reads a leading ":" as the separator of an empty scheme,
        # which it then replaces with "http".
        begin, end = _trim_url(text)
        _parse_standard(text, begin, end, parts, has_scheme=True)
        return "http", text, parts
    found = _valid_scheme(text)
    if found is None:
        semicolon = text.find(";")
        if semicolon > 0:  # "http;//example.com" is a typo for "http://"
            candidate = text[:semicolon] + ":" + text[semicolon + 1:]
            found = _valid_scheme(candidate)
            if found is not None and found[1] in _STANDARD_SCHEMES | {"about", "chrome"}:
                text = candidate
            else:
                found = None
    if found is None:
        scheme = "ftp" if _lower_ascii(text).startswith("ftp.") else "http"
    else:
        parts.scheme, scheme = found
    if scheme not in ("about", "chrome") and scheme not in _STANDARD_SCHEMES:
        return scheme, text, parts
    if scheme == "filesystem":
        return scheme, text, parts  # its host belongs to the inner URL
    begin, end = _trim_url(text)
    if found is None:
        # Chromium parses as if "http://" stood before the first character
        # that is not Unicode whitespace, then drops that scheme again.
        begin = 0
        while begin < end and text[begin] in _UNICODE_SPACES:
            begin += 1
    _parse_standard(text, begin, end, parts, has_scheme=found is not None)
    return scheme, text, parts


def _host_family(raw_host: str) -> Literal["neutral", "ip", "broken"]:
    """Chromium's CanonicalizeHostVerbose family for a filter's host."""
    if raw_host.startswith("["):
        try:
            ada_url.URL(f"http://{raw_host}/")
        except ValueError:
            return "broken"
        return "ip"
    try:
        parsed = ada_url.URL(f"http://{raw_host}/")
        if parsed.pathname != "/" or parsed.search or parsed.hash or parsed.port:
            return "broken"
        return "ip" if int(parsed.host_type) != 0 else "neutral"
    except (ValueError, UnicodeError):
        return "broken"


def _file_filter_path(text: str) -> str:
    """Chromium's FileURLToFilePath on POSIX, for ``file://`` filters."""
    try:
        parsed = ada_url.URL(text)
    except ValueError as exc:
        raise InvalidFilter(text, _("not a valid file: address")) from exc
    if parsed.protocol != "file:":
        raise InvalidFilter(text, _("not a valid file: address"))
    if parsed.hostname not in ("", "localhost"):
        raise InvalidFilter(text, _("a file: address with a host is not a local file"))
    path = parsed.pathname
    if not path or re.search("%2[fF]", path):
        raise InvalidFilter(text, _("not a usable file path"))
    from urllib.parse import unquote
    path = unquote(path, errors="surrogateescape")
    while "//" in path:
        path = path.replace("//", "/")
    return path


# --- Query conditions --------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _QueryCondition:
    key: str          # marker + key (+ "=")
    value: str        # value (+ marker when the value must end there)
    match_all: bool   # allow filters: every occurrence of the key must match

    @property
    def pattern(self) -> str:
        return self.key if self.match_all else self.key + self.value

    def matches(self, query: str) -> bool:
        if not self.match_all:
            return self.pattern in query
        start = found = 0
        while (offset := query.find(self.key, start)) >= 0:
            if query[offset + len(self.key):offset + len(self.key) + len(self.value)] != self.value:
                return False
            found += 1
            start = offset + len(self.key) + len(self.value) - 1
        return found > 0


def _query_conditions(query: str, allow: bool) -> tuple[_QueryCondition, ...]:
    conditions: dict[tuple[bool, str], _QueryCondition] = {}
    # A filter can never contain Chromium's marker byte; ours is a character, so
    # one written in a filter must not act as a separator: make it unmatchable.
    query = query.replace(_QD, "\x00" + _QD)
    pos = 0
    while pos < len(query):
        token_end = query.find("&", pos)
        if token_end < 0:
            token_end = len(query)
        token = query[pos:token_end]
        pos = token_end + 1
        key, _, value = token.partition("=")
        has_value = bool(value)  # decided before a trailing "*" is taken off
        prefix = False
        if not value and key.endswith("*"):
            key, prefix = key[:-1], True
        elif value.endswith("*"):
            value, prefix = value[:-1], True
        if has_value:
            key_part, value_part = f"{_QD}{key}=", value
        else:
            key_part, value_part = f"{_QD}{key}", ""
        if not prefix:
            value_part += _QD
        match_all = allow and bool(value_part)
        condition = _QueryCondition(key_part, value_part, match_all)
        # Chromium keeps them in a set ordered by pattern: duplicates collapse,
        # including two allow conditions on the same key (the first one stays).
        conditions.setdefault((condition.match_all, condition.pattern), condition)
    return tuple(conditions.values())


def _search_query(query: str | None) -> str:
    """The query in Chromium's searchable form: tokens between markers."""
    if query is None:
        return ""
    return _QD + query.replace("&", _QD) + _QD


# --- Filters -----------------------------------------------------------------

def _canonical_host(host: str) -> str:
    """Chromium's host form for matching: always starts and ends with a dot."""
    if not host.endswith("."):
        host += "."
    return host if host.startswith(".") else "." + host


@dataclass(frozen=True, slots=True)
class FilterRule:
    """One filter, cut into the components Chrome matches on."""

    text: str
    allow: bool
    scheme: str = ""            # "" matches any scheme
    host: str = ""              # ".example.com" when subdomains match
    match_subdomains: bool = True
    port: int = 0               # 0 matches any port
    path: str = ""              # prefix of the URL's path
    query: str = ""
    query_conditions: tuple[_QueryCondition, ...] = ()
    order: int = field(default=0, compare=False)

    @property
    def is_wildcard(self) -> bool:
        """The bare "*": every scheme, host, port, path and query."""
        return (self.match_subdomains and not self.host and not self.scheme and not self.path
                and not self.query and not self.port and not self.query_conditions)

    @property
    def is_wildcard_block(self) -> bool:
        """The bare "*" of a blocklist: the lowest-priority filter of all."""
        return not self.allow and self.is_wildcard

    @property
    def precedence(self) -> tuple[int, int, int, int, int, int]:
        """Larger wins (Chromium's FilterTakesPrecedence as a sort key)."""
        return (0 if self.is_wildcard_block else 1, 0 if self.match_subdomains else 1,
                len(self.host), len(self.path), len(self.query_conditions), int(self.allow))

    @property
    def host_key(self) -> str:
        return _canonical_host(self.host) if not self.match_subdomains else (
            self.host if self.host.endswith(".") else self.host + ".")

    def matches_host(self, canonical_host: str) -> bool:
        """Does the URL host (in ``.host.`` form) fall under this filter's host?"""
        if self.match_subdomains:
            return canonical_host.endswith(self.host_key)
        return canonical_host == self.host_key

    def matches(self, url: weburl.WebURL, search_query: str) -> bool:
        """Everything but the host, which the index has already checked."""
        if self.scheme and self.scheme != url.scheme:
            return False
        if self.port and self.port != url.port:
            return False
        if not url.path.startswith(self.path):
            return False
        return all(c.matches(search_query) for c in self.query_conditions)

    def describe(self) -> str:
        return ("allow " if self.allow else "block ") + self.text


def parse_filter(text: str, allow: bool = False, order: int = 0) -> FilterRule:
    """Cut a filter into components; raise InvalidFilter where Chrome refuses it."""
    if not isinstance(text, str):
        raise InvalidFilter(repr(text), _("a rule must be text"))
    scheme, segmented, parts = _segment(text)
    lowered = _lower_ascii(text)
    make = lambda **kw: FilterRule(text=text, allow=allow, order=order, **kw)  # noqa: E731
    if scheme and lowered in (scheme + ":*", scheme + "://*"):
        return make(scheme=scheme)
    if scheme == "file":
        return make(scheme="file", path=_file_filter_path(text))
    if scheme == "data":
        try:
            content = ada_url.URL(text).href[len("data:"):]
        except ValueError:
            content = ""
        return make(scheme="data", path=content)
    if not scheme or parts.host is None or parts.host[0] == parts.host[1]:
        if scheme and scheme not in _STANDARD_SCHEMES and scheme not in ("about", "chrome"):
            raise InvalidFilter(text, _("the scheme {scheme} only supports {scheme}:*").format(
                scheme=scheme))
        raise InvalidFilter(text, _("the host is missing"))
    raw_host = segmented[parts.host[0]:parts.host[1]]
    host = _lower_ascii(raw_host)
    if host == "*":
        host, subdomains = "", True
    elif host.startswith("."):
        host, subdomains = host[1:], False
    elif _host_family(raw_host) == "neutral":
        host, subdomains = "." + host, True
    else:
        subdomains = False
    port = 0
    if parts.port is not None and parts.port[0] < parts.port[1]:
        port_text = segmented[parts.port[0]:parts.port[1]]
        if not _PORT_RE.match(port_text) or not port_text.isascii():
            raise InvalidFilter(text, _("the port {port} is not a number").format(port=port_text))
        port = int(port_text)
        if not 0 < port <= 65535:
            raise InvalidFilter(text, _("the port {port} is outside 1-65535").format(port=port))
    path = segmented[parts.path[0]:parts.path[1]] if parts.path else ""
    query = segmented[parts.query[0]:parts.query[1]] if parts.query else ""
    return make(scheme=scheme if parts.scheme else "", host=host, match_subdomains=subdomains,
                port=port, path=path, query=query,
                query_conditions=_query_conditions(query, allow) if query else ())


# --- Decisions ---------------------------------------------------------------

State = Literal["blocked", "allowed", "neutral"]


@dataclass(frozen=True, slots=True)
class Decision:
    """What was decided for a URL, and by which filter."""

    url: str
    state: State
    rule: FilterRule | None = None
    reason: str = ""

    @property
    def blocked(self) -> bool:
        return self.state == "blocked"

    @property
    def allowed(self) -> bool:
        return not self.blocked


class URLFilter:
    """A blocklist and an allowlist, decided like Chrome's URL policies.

    Filters Chrome would reject are skipped and listed in ``invalid``.
    """

    def __init__(self, blocklist: Iterable[str] = (), allowlist: Iterable[str] = (),
                 *, max_filters: int | None = None):
        self.rules: list[FilterRule] = []
        self.invalid: list[InvalidFilter] = []
        order = 0
        for allow, texts in ((False, blocklist), (True, allowlist)):
            texts = list(texts)
            if max_filters is not None:
                texts = texts[:max_filters]
            for text in texts:
                try:
                    self.rules.append(parse_filter(text, allow, order))
                except InvalidFilter as exc:
                    self.invalid.append(exc)
                order += 1
        self._exact: dict[str, list[FilterRule]] = {}
        self._suffix: dict[str, list[FilterRule]] = {}
        for rule in self.rules:
            index = self._suffix if rule.match_subdomains else self._exact
            index.setdefault(rule.host_key, []).append(rule)

    def _candidates(self, host: str) -> Iterable[FilterRule]:
        canonical = _canonical_host(host)
        yield from self._exact.get(canonical, ())
        suffix = self._suffix
        start = 0
        while (dot := canonical.find(".", start)) >= 0:
            yield from suffix.get(canonical[dot:], ())
            start = dot + 1

    def decide(self, url: str) -> Decision:
        parsed = weburl.parse(url)
        if parsed is None:
            return Decision(str(url), "blocked", None, "unparseable URL")
        return self.decide_parsed(parsed)

    def decide_parsed(self, url: weburl.WebURL) -> Decision:
        return self._pick(url, self._candidates(url.host))

    def decide_by_scan(self, url: str) -> Decision:
        """The same decision found by testing every rule in turn.

        The reference the index is tested and benchmarked against.
        """
        parsed = weburl.parse(url)
        if parsed is None:
            return Decision(str(url), "blocked", None, "unparseable URL")
        canonical = _canonical_host(parsed.host)
        return self._pick(parsed, (rule for rule in self.rules if rule.matches_host(canonical)))

    def _pick(self, url: weburl.WebURL, candidates: Iterable[FilterRule]) -> Decision:
        search_query = _search_query(url.query)
        best: FilterRule | None = None
        for rule in candidates:
            if not rule.matches(url, search_query):
                continue
            if best is None or (rule.precedence, -rule.order) > (best.precedence, -best.order):
                best = rule
        if best is None:
            return Decision(url.href, "neutral", None, "no filter matches")
        if best.is_wildcard_block and url.scheme in _WILDCARD_BYPASS_SCHEMES:
            return Decision(url.href, "allowed", best, "internal page not covered by '*'")
        if best.allow and best.is_wildcard:
            # kDowngradeURLAllowlistWildcardToNeutral (on by default): an allow
            # "*" lets the URL through without vouching for it.
            return Decision(url.href, "neutral", best, best.describe())
        return Decision(url.href, "allowed" if best.allow else "blocked", best, best.describe())

    def is_blocked(self, url: str) -> bool:
        return self.decide(url).blocked

    def is_allowed(self, url: str) -> bool:
        return not self.decide(url).blocked

    def __len__(self) -> int:
        return len(self.rules)
