"""Rendering model output for Telegram: HTML-escaped, split under the 4096-character limit."""

from __future__ import annotations

import html
import re

TELEGRAM_LIMIT = 4096
WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")  # ASCII digits only: str.isdigit() also accepts "²" and "١"


def render_html(segments: list[tuple[str, bool]], limit: int = TELEGRAM_LIMIT) -> list[str]:
    """(text, bold) segments -> HTML messages of at most `limit` characters each.

    Model output can contain `<`, `&` or `*`: every character is escaped, tags never split, and
    a message break prefers the last newline or space in the chunk.
    """
    messages: list[str] = []
    current: list[tuple[str, bool]] = []  # (escaped char, bold)
    size = 0  # rendered size of `current`, tags included

    def rendered(items: list[tuple[str, bool]]) -> str:
        out, bold = [], False
        for ch, b in items:
            if b != bold:
                out.append("<b>" if b else "</b>")
                bold = b
            out.append(ch)
        if bold:
            out.append("</b>")
        return "".join(out)

    for text, bold in segments:
        for raw in text:
            esc = html.escape(raw, quote=False)
            opens_bold = bold and not (current and current[-1][1])
            if size + len(esc) + (7 if opens_bold else 0) > limit:
                cut = _break_point(current)
                messages.append(rendered(current[:cut]))
                current = current[cut:]
                size = len(rendered(current))
                opens_bold = bold and not (current and current[-1][1])
            current.append((esc, bold))
            size += len(esc) + (7 if opens_bold else 0)  # <b></b> costs 7 per bold run
    if current:
        messages.append(rendered(current))
    return [m for m in messages if m.strip()] or [""]


def _break_point(items: list[tuple[str, bool]]) -> int:
    """Index after the last newline (else space) in the second half of the chunk, else the end."""
    for sep in ("\n", " "):
        for i in range(len(items) - 1, len(items) // 2, -1):
            if items[i][0] == sep:
                return i + 1
    return len(items)


def whole_number(text: str) -> int | None:
    """A small non-negative integer typed in ASCII digits, else None."""
    return int(text) if WHOLE_NUMBER.fullmatch(text) else None


def shorten(text: str, limit: int = 60) -> str:
    """User text echoed in a reply, cut short: a reply must fit Telegram's limits."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
