"""The same picture as a PNG: a grid of characters, each cell's background coloured by the
activation (and, optionally, five rows of likeliest next characters under each text row).

Drawn with matplotlib's Agg canvas directly (no pyplot), so it is safe to call from a thread.
The image size is exact: png_size() tells it before drawing.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont, get_font

from neurons.render import Guesses, colours, shown

CELL_W, CELL_H = 9, 16  # pixels per character of text
GUESS_H = 12  # pixels per row of predictions
GUESSES = 5
MARGIN = 6
DPI = 100
FONT = "DejaVu Sans Mono"  # ships with matplotlib


def layout(text: str, width: int) -> list[list[int]]:
    """Rows of character indices: a row ends after a newline or at `width` characters."""
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    rows, row = [], []
    for t, ch in enumerate(text):
        row.append(t)
        if ch == "\n" or len(row) == width:
            rows.append(row)
            row = []
    if row or not rows:
        rows.append(row)
    return rows


def row_height(guesses: bool) -> int:
    return CELL_H + (GUESSES * GUESS_H + 4 if guesses else 0)


def png_size(text: str, width: int, guesses: bool = False) -> tuple[int, int]:
    rows = layout(text, width)
    return (2 * MARGIN + CELL_W * max(1, max(len(r) for r in rows)),
            2 * MARGIN + row_height(guesses) * len(rows))


@lru_cache(maxsize=1)
def _font_codepoints() -> frozenset[int]:
    return frozenset(get_font(findfont(FontProperties(family=FONT))).get_charmap())


def drawable(ch: str) -> str:
    """The glyph to draw: control characters made visible, and '?' where the font has none."""
    glyph = shown(ch)
    return glyph if ord(glyph) in _font_codepoints() or glyph == " " else "?"


def render_png(text: str, values: np.ndarray, width: int = 80,
               top: Guesses | None = None) -> bytes:
    """PNG bytes of `text` wrapped at `width` columns, coloured by `values` (T,) in [-1, 1].
    `top` adds rows of the likeliest next characters under each row of text."""
    w, h = png_size(text, width, top is not None)
    rows = layout(text, width)
    pixels = np.full((h, w, 3), 255, dtype=np.uint8)
    rgb = colours(values)
    pitch = row_height(top is not None)
    glyphs = []  # (x, y, glyph, size)
    for r, row in enumerate(rows):
        y0 = MARGIN + r * pitch
        for col, t in enumerate(row):
            x0 = MARGIN + col * CELL_W
            pixels[y0:y0 + CELL_H, x0:x0 + CELL_W] = rgb[t]
            glyphs.append((x0 + CELL_W / 2, y0 + CELL_H / 2, drawable(text[t]), 10))
            if top is None:
                continue
            ids, probs, chars = top
            for k in range(min(GUESSES, ids.shape[1])):
                gy = y0 + CELL_H + 2 + k * GUESS_H
                shade = np.rint(255 - np.array([195, 95, 195]) * float(probs[t, k])).astype(np.uint8)
                pixels[gy:gy + GUESS_H, x0:x0 + CELL_W] = shade
                glyphs.append((x0 + CELL_W / 2, gy + GUESS_H / 2, drawable(chars[int(ids[t, k])]), 7.5))

    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.figimage(pixels, xo=0, yo=0, origin="upper")
    for x, y, glyph, size in glyphs:
        if glyph != " ":
            fig.text(x / w, 1 - y / h, glyph, ha="center", va="center", family=FONT, size=size,
                     parse_math=False)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()
