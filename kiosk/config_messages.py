"""What a technician reads when a site file is wrong: problems with their file and line.

Kept apart from the models (``kiosk.config``): one sentence per kind of validation
error, in the technician's language, naming the key and, for a misspelt one, the
closest valid key.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from kiosk.i18n import _

# The tiles' bundled pictograms (a portal's ``icon``).
BUNDLED_ICONS = ("water", "electricity", "health", "car", "work", "family", "tax", "public",
                 "mail")


@dataclass(frozen=True)
class ConfigProblem:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigError(Exception):
    """Everything wrong with a site file, each problem with its line."""

    def __init__(self, problems: list[ConfigProblem]):
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def dotted(path: tuple[Any, ...]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def valid_keys(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The keys allowed at ``path`` (for "did you mean")."""
    for part in path:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))[0] \
            if getattr(annotation, "__origin__", None) is tuple else annotation
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return []
        model = inner
    return list(model.model_fields)


def message(error: dict[str, Any], valid: list[str]) -> str:
    kind, ctx, key = error["type"], error.get("ctx", {}), error["loc"][-1] if error["loc"] else ""
    if kind == "extra_forbidden":
        text = _("unknown key")
        close = difflib.get_close_matches(str(key), valid, n=1, cutoff=0.5)
        if close:
            text += " — " + _("did you mean '{key}'?").format(key=close[0])
        elif valid:
            text += " — " + _("valid keys: {keys}").format(keys=", ".join(valid))
        return text
    if kind == "missing":
        return _("this key is required")
    if kind in ("string_type", "str_type"):
        return _("must be text in quotes, not {value!r}").format(value=error.get("input"))
    if kind in ("bool_type", "bool_parsing"):
        return _("must be true or false, not {value!r}").format(value=error.get("input"))
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return _("must be a whole number, not {value!r}").format(value=error.get("input"))
    if kind == "literal_error":
        return _("must be one of {expected}, not {value!r}").format(
            expected=ctx.get("expected"), value=error.get("input"))
    if kind in ("greater_than_equal", "greater_than"):
        return _("must be at least {limit}").format(limit=ctx.get("ge", ctx.get("gt")))
    if kind in ("less_than_equal", "less_than"):
        return _("must be at most {limit}").format(limit=ctx.get("le", ctx.get("lt")))
    if kind in ("too_short", "string_too_short"):
        return _("must not be empty")
    if kind == "string_too_long":
        return _("is too long (at most {limit} characters)").format(limit=ctx.get("max_length"))
    if kind in ("tuple_type", "list_type"):
        return _("must be a list in brackets: [ ... ]")
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return _("must be a table of keys")
    if kind == "string_pattern_mismatch":
        return _("must be lowercase letters, digits and dashes, starting with a letter")
    if kind == "url_rule":
        return _("invalid URL rule: {reason}").format(reason=ctx.get("reason"))
    if kind == "url_rule_idn":
        return _("write the host '{host}' in ASCII ('{ascii}'), as Chrome rules require").format(
            host=ctx.get("host"), ascii=ctx.get("ascii"))
    if kind == "start_url":
        return _("must be a full http:// or https:// address, not {value!r}").format(
            value=ctx.get("url"))
    if kind == "icon":
        return _("must be one of {names}, or the absolute path of a .png or .jpg picture, "
                 "not {value!r}").format(names=", ".join(BUNDLED_ICONS), value=ctx.get("icon"))
    if kind == "base_url":
        return _("must be an https:// address ending with '/', or \"\", not {value!r}").format(
            value=ctx.get("url"))
    if kind == "proxy_listen":
        return _("must be a loopback address and port, \"127.0.0.1:3128\" or \"[::1]:3128\", "
                 "or \"\", not {value!r}").format(value=ctx.get("value"))
    if kind == "pin_hash_moved":
        return _("the agent PIN's hash no longer goes in the site file, which the browser can "
                 "read: remove this line and run `kioskctl pin-hash`, which writes the file "
                 "[agent] pin_file names")
    if kind == "absolute_path":
        return _("must be an absolute path starting with '/', not {value!r}").format(
            value=ctx.get("path"))
    return error.get("msg", kind)
