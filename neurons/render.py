"""Text coloured by a cell's activation, as a self-contained HTML page (the lecture's pictures).

Every character of the text is escaped; the page has no scripts and no outside resources.
"""

from __future__ import annotations

import html

import numpy as np

POSITIVE = (214, 48, 39)  # colour at +1 (red); white at 0
NEGATIVE = (49, 110, 196)  # colour at -1 (blue)
SHOWN = {"\n": "↵", "\t": "→", "\r": "␍"}  # characters that would otherwise be invisible
# The likeliest next characters after each character: ids (T, K), probabilities (T, K), vocabulary.
Guesses = tuple[np.ndarray, np.ndarray, tuple[str, ...]]


def colours(values: np.ndarray) -> np.ndarray:
    """(T,) values in [-1, 1] -> (T, 3) uint8 RGB: blue below 0, white at 0, red above."""
    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float64)), -1.0, 1.0)[:, None]
    end = np.where(v > 0, np.array(POSITIVE), np.array(NEGATIVE))
    return np.rint(255 + (end - 255) * np.abs(v)).astype(np.uint8)


def shown(ch: str) -> str:
    """The glyph drawn for a character (control characters become visible symbols)."""
    if ch in SHOWN:
        return SHOWN[ch]
    return "·" if ch < " " or ch == "\x7f" else ch


def _hex(rgb) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(x) for x in rgb))


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 70em; color: #111; }
.text { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 15px;
        line-height: 1.5; white-space: pre-wrap; word-break: break-all; }
.k { display: inline-block; vertical-align: top; text-align: center; min-width: 0.62em; }
.k b, .k i { display: block; font-weight: normal; font-style: normal; white-space: pre; }
.k i { font-size: 11px; color: #222; }
.legend span { font-family: monospace; padding: 0 0.6em; }
table { border-collapse: collapse; } td, th { padding: 0.2em 0.8em; text-align: left; }
tr:nth-child(even) { background: #f4f4f4; }
"""


def legend() -> str:
    stops = np.linspace(-1, 1, 9)
    swatches = "".join(f'<span style="background:{_hex(c)}">{v:+.2f}</span>' for v, c in zip(stops, colours(stops)))
    return f'<p class="legend">activation {swatches}</p>'


def coloured_text(text: str, values: np.ndarray, top: Guesses | None = None) -> str:
    """`<div class="text">` with one span per character, its background coloured by `values`.

    `top` adds the K likeliest next characters under each character, shaded by probability.
    """
    parts = ['<div class="text">']
    for t, (ch, rgb) in enumerate(zip(text, colours(values))):
        style = f'style="background:{_hex(rgb)}" title="{float(values[t]):+.3f}"'
        glyph = html.escape(shown(ch))
        if top is None:
            parts.append(f"<span {style}>{glyph}</span>" + ("\n" if ch == "\n" else ""))
            continue
        ids, probs, chars = top
        guesses = "".join(
            f'<i style="background:rgba(60,160,60,{p:.2f})" title="{p:.3f}">{html.escape(shown(chars[i]))}</i>'
            for i, p in zip(ids[t], probs[t]))
        parts.append(f'<span class="k"><b {style}>{glyph}</b>{guesses}</span>' + ("<br>" if ch == "\n" else ""))
    parts.append("</div>")
    return "".join(parts)


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n")


def show_page(text: str, values: np.ndarray, title: str, caption: str,
              top: Guesses | None = None) -> str:
    """The `neurons show` page: a heading, a caption, the colour legend and the coloured text."""
    body = (f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(caption)}</p>\n{legend()}\n"
            + coloured_text(text, values, top))
    if top is not None:
        body += "\n<p>Under each character: the model's five likeliest next characters, shaded by probability.</p>"
    return page(title, body)
