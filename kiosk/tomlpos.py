"""Where each key and array item of a TOML document is written.

``tomllib`` gives values but no positions, and a technician fixing a site file
needs "line 42", not just a key path. This scanner runs only on documents
``tomllib`` has already accepted, so it can stay small: it walks the text once
and records the line of every table, key and array element, addressed by the
same path a validator reports (keys as strings, array positions as ints).
"""

from __future__ import annotations

from bisect import bisect_right

Path = tuple[object, ...]

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _Scanner:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.lines: dict[Path, int] = {}
        self.starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        self.array_tables: dict[Path, int] = {}

    def line(self, pos: int) -> int:
        return bisect_right(self.starts, pos)

    def peek(self, ahead: int = 0) -> str:
        index = self.pos + ahead
        return self.text[index] if index < len(self.text) else ""

    def skip(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char in " \t\r" or (newlines and char == "\n"):
                self.pos += 1
            elif char == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    def string(self) -> str:
        quote = self.peek()
        if self.text.startswith(quote * 3, self.pos):
            end = self.text.find(quote * 3, self.pos + 3)
            while self.text.startswith(quote, end + 3):  # up to two quotes may close it
                end += 1
            value = self.text[self.pos + 3:end]
            self.pos = end + 3
            return value
        start = self.pos + 1
        index = start
        while self.text[index] != quote:
            index += 2 if (quote == '"' and self.text[index] == "\\") else 1
        self.pos = index + 1
        return self.text[start:index]

    def key(self) -> Path:
        parts: list[str] = []
        while True:
            self.skip(newlines=False)
            if self.peek() in ("'", '"'):
                parts.append(self.string())
            else:
                start = self.pos
                while self.peek() in _BARE and self.peek():
                    self.pos += 1
                parts.append(self.text[start:self.pos])
            self.skip(newlines=False)
            if self.peek() != ".":
                return tuple(parts)
            self.pos += 1

    def value(self, path: Path) -> None:
        char = self.peek()
        if char == "[":
            self.pos += 1
            index = 0
            while True:
                self.skip(newlines=True)
                if self.peek() in ("]", ""):
                    self.pos += 1
                    return
                self.lines[path + (index,)] = self.line(self.pos)
                self.value(path + (index,))
                index += 1
                self.skip(newlines=True)
                if self.peek() == ",":
                    self.pos += 1
        elif char == "{":
            self.pos += 1
            while True:
                self.skip(newlines=False)
                if self.peek() in ("}", ""):
                    self.pos += 1
                    return
                line = self.line(self.pos)
                sub = path + self.key()
                self.lines.setdefault(sub, line)
                self.pos += 1  # "="
                self.skip(newlines=False)
                self.value(sub)
                self.skip(newlines=False)
                if self.peek() == ",":
                    self.pos += 1
        elif char in ("'", '"'):
            self.string()
        else:
            while self.peek() not in (",", "]", "}", "\n", "#", ""):
                self.pos += 1

    def resolve(self, path: Path) -> Path:
        """Insert the current index after every array-of-tables prefix."""
        resolved: Path = ()
        for part in path:
            resolved += (part,)
            if resolved in self.array_tables:
                resolved += (self.array_tables[resolved] - 1,)
        return resolved

    def document(self) -> dict[Path, int]:
        table: Path = ()
        while True:
            self.skip(newlines=True)
            if not self.peek():
                return self.lines
            line = self.line(self.pos)
            if self.peek() == "[":
                double = self.peek(1) == "["
                self.pos += 2 if double else 1
                header = self.key()
                self.pos += 2 if double else 1
                if double:
                    parent = self.resolve(header[:-1]) + header[-1:]
                    self.array_tables[parent] = self.array_tables.get(parent, 0) + 1
                    self.lines.setdefault(parent, line)
                    table = parent + (self.array_tables[parent] - 1,)
                else:
                    table = self.resolve(header)
                self.lines.setdefault(table, line)
            else:
                path = table + self.key()
                self.lines.setdefault(path, line)
                self.pos += 1  # "="
                self.skip(newlines=False)
                self.value(path)


def key_lines(text: str) -> dict[Path, int]:
    """Map every key path of a valid TOML document to its 1-based line."""
    scanner = _Scanner(text)
    try:
        return scanner.document()
    except (IndexError, ValueError):
        return scanner.lines  # what was found before the scanner got lost


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line of ``path``, else of its nearest written parent."""
    path = tuple(path)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return None
