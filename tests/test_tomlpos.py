"""Key positions in TOML text."""

import tomllib

from kiosk.tomlpos import key_lines, line_of

DOC = '''\
# comment with = and [brackets]
title = "a # not a comment"   # comment
"quoted key" = 1
a.b.c = 2

[table]
x = """multi
line = 3
"""
y = [ 1, 2,
  # a comment inside
  3,
]
inline = { p = 1, q = { r = "}" } }

[[items]]
id = "one"

[[items]]
id = "two"
tags = ['x',
        'y']

[items.sub]
z = true
'''


def test_every_key_and_item_has_its_line():
    tomllib.loads(DOC)  # the scanner only ever sees valid TOML
    lines = key_lines(DOC)
    assert lines[("title",)] == 2
    assert lines[("quoted key",)] == 3
    assert lines[("a", "b", "c")] == 4
    assert lines[("table",)] == 6
    assert lines[("table", "x")] == 7
    assert lines[("table", "y")] == 10
    assert lines[("table", "y", 2)] == 12
    assert lines[("table", "inline", "q", "r")] == 14
    assert "line" not in {k[-1] for k in lines if isinstance(k[-1], str)}
    assert lines[("items", 0, "id")] == 17
    assert lines[("items", 1)] == 19
    assert lines[("items", 1, "tags", 1)] == 22
    assert lines[("items", 1, "sub", "z")] == 25


def test_line_of_falls_back_to_parent():
    lines = key_lines(DOC)
    assert line_of(lines, ("items", 1, "missing")) == 19
    assert line_of(lines, ("nowhere",)) is None
