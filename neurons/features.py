"""Per-character features of a text: simple facts a cell might track.

Each feature's value at index t describes the position just after reading text[t] (the moment
the recorded state describes): an opening quote is already inside the quotes, a closing quote
is outside again, a newline is at column 0 of the next line.
"""

from __future__ import annotations

import re

import numpy as np

DESCRIPTIONS = {
    "in_quotes": "inside double quotes",
    "bracket_depth": "depth of ( [ { nesting",
    "line_position": "position in the line (characters since the newline)",
    "word_position": "position in the word (characters since a space)",
    "line_start": "at the start of a line (the newline and any indentation after it)",
    "verse_number": "inside a chapter:verse number at the start of a line",
    "in_string": "inside a Python string literal",
    "in_comment": "inside a Python # comment",
    "indent": "indentation of the current line (so far)",
}
PROSE = ("in_quotes", "bracket_depth", "line_position", "word_position", "line_start", "verse_number")
CODE = ("in_string", "in_comment", "indent", "bracket_depth", "line_position", "word_position", "line_start")
OPENERS, CLOSERS = "([{", ")]}"
VERSE_NUMBER = re.compile(r"^\d+:\d+", re.MULTILINE)
# Statements that only start a line outside strings: where a code slice can safely be read from.
TOP_LEVEL_CODE = re.compile(r"^(?:def|class|import|from) ", re.MULTILINE)


def compute(text: str, code: bool = False) -> dict[str, np.ndarray]:
    """The prose features (or, for Python source, the code features) of `text`, as float arrays."""
    if not code:
        return {
            "in_quotes": in_quotes(text),
            "bracket_depth": bracket_depth(text),
            "line_position": line_position(text),
            "word_position": word_position(text),
            "line_start": line_start(text),
            "verse_number": verse_number(text),
        }
    string, comment = python_strings_and_comments(text)
    return {
        "in_string": string,
        "in_comment": comment,
        "indent": indent(text),
        "bracket_depth": bracket_depth(text, skip=string.astype(bool) | comment.astype(bool)),
        "line_position": line_position(text),
        "word_position": word_position(text),
        "line_start": line_start(text),
    }


def in_quotes(text: str) -> np.ndarray:
    out = np.zeros(len(text))
    inside = False
    for t, ch in enumerate(text):
        if ch == '"':
            inside = not inside
        out[t] = inside
    return out


def bracket_depth(text: str, skip: np.ndarray | None = None) -> np.ndarray:
    """Nesting depth; brackets where `skip` is true (e.g. inside strings) do not count."""
    out = np.zeros(len(text))
    depth = 0
    for t, ch in enumerate(text):
        if skip is None or not skip[t]:
            if ch in OPENERS:
                depth += 1
            elif ch in CLOSERS:
                depth = max(0, depth - 1)
        out[t] = depth
    return out


def _since(text: str, is_reset) -> np.ndarray:
    out = np.zeros(len(text))
    count = 0
    for t, ch in enumerate(text):
        count = 0 if is_reset(ch) else count + 1
        out[t] = count
    return out


def line_position(text: str) -> np.ndarray:
    return _since(text, lambda ch: ch == "\n")


def word_position(text: str) -> np.ndarray:
    return _since(text, str.isspace)


def line_start(text: str) -> np.ndarray:
    out = np.zeros(len(text))
    at_start = True
    for t, ch in enumerate(text):
        at_start = ch == "\n" or (at_start and ch in " \t")
        out[t] = at_start
    return out


def indent(text: str) -> np.ndarray:
    out = np.zeros(len(text))
    width, leading = 0, True
    for t, ch in enumerate(text):
        if ch == "\n":
            width, leading = 0, True
        elif leading and ch == " ":
            width += 1
        elif leading and ch == "\t":
            width += 8 - width % 8
        else:
            leading = False
        out[t] = width
    return out


def verse_number(text: str) -> np.ndarray:
    out = np.zeros(len(text))
    for m in VERSE_NUMBER.finditer(text):
        out[m.start():m.end()] = 1
    return out


def python_strings_and_comments(text: str) -> tuple[np.ndarray, np.ndarray]:
    """Masks of Python string literals and # comments, by a small scanner that survives any text
    (unterminated strings end at the line's end, triple-quoted ones at the text's end)."""
    string, comment = np.zeros(len(text)), np.zeros(len(text))
    n, i = len(text), 0
    while i < n:
        ch = text[i]
        if ch == "#":
            end = text.find("\n", i)
            end = n if end < 0 else end
            comment[i:end] = 1  # the newline itself is outside
            i = end
        elif ch in "'\"":
            quote = text[i:i + 3] if text[i:i + 3] in ('"""', "'''") else ch
            j = i + len(quote)
            while j < n:
                if text[j] == "\\":
                    j += 2
                elif text.startswith(quote, j):
                    j += len(quote)
                    break
                elif len(quote) == 1 and text[j] == "\n":
                    break
                else:
                    j += 1
            end = min(j, n)
            string[i:end - 1] = 1  # after the closing quote's last character we are outside
            i = end
        else:
            i += 1
    return string, comment


def code_start(text: str) -> int:
    """Where to start reading a slice of Python source so that the scanner is not misaligned
    (a slice may begin inside a docstring): the first top-level def/class/import line."""
    m = TOP_LEVEL_CODE.search(text)
    return m.start() if m else 0
