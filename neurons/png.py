"""The same picture as a PNG: a grid of characters, each cell's background coloured by the
activation (and, optionally, five rows of likeliest next characters under each text row).

Made to be read on a phone: lines wrap at word boundaries, the font is large, each glyph is
black or white, whichever stands out from its cell, and a picture narrower than MIN_WIDTH is
scaled up (at most MAX_SCALE times) so that a chat app does not shrink it to a strip.

Drawn with matplotlib's Agg canvas directly (no pyplot), so it is safe to call from a thread.
The image size is exact: png_size() tells it before drawing.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont, get_font

from neurons.render import Guesses, colours, shown

CELL_W, CELL_H = 11, 22  # pixels per character of text, before scaling
GUESS_H = 16  # pixels per row of predictions, before scaling
GUESSES = 5
MARGIN = 8
FONT_PT, GUESS_FONT_PT = 12, 9
MIN_WIDTH = 800  # scale a narrower picture up to this width...
MAX_SCALE = 3.0  # ...but no more than this (a three-letter text stays small)
DPI = 100
FONT = "DejaVu Sans Mono"  # ships with matplotlib
DARK = 0.5  # a cell darker than this (relative luminance) gets a white glyph


def layout(text: str, width: int) -> list[list[int]]:
    """Rows of character indices: a row ends after a newline, or before `width` characters at the
    last space (a word longer than a row is cut)."""
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    rows, row = [], []
    for t, ch in enumerate(text):
        if len(row) == width:
            spaces = [i for i, u in enumerate(row) if text[u] == " "]
            cut = spaces[-1] + 1 if spaces and spaces[-1] > 0 else len(row)
            rows.append(row[:cut])
            row = row[cut:]
        row.append(t)
        if ch == "\n":
            rows.append(row)
            row = []
    if row or not rows:
        rows.append(row)
    return rows


@dataclass(frozen=True)
class Geometry:
    """Pixel sizes of one picture, scaled."""

    scale: float
    cell_w: int
    cell_h: int
    guess_h: int
    margin: int

    @classmethod
    def for_rows(cls, rows: list[list[int]]) -> Geometry:
        columns = max(1, max(len(r) for r in rows))
        scale = min(MAX_SCALE, max(1.0, MIN_WIDTH / (2 * MARGIN + CELL_W * columns)))
        return cls(scale, math.ceil(CELL_W * scale), math.ceil(CELL_H * scale), math.ceil(GUESS_H * scale),
                   math.ceil(MARGIN * scale))

    def row_height(self, guesses: bool) -> int:
        return self.cell_h + (GUESSES * self.guess_h + self.margin // 2 if guesses else 0)

    def size(self, rows: list[list[int]], guesses: bool) -> tuple[int, int]:
        return (2 * self.margin + self.cell_w * max(1, max(len(r) for r in rows)),
                2 * self.margin + self.row_height(guesses) * len(rows))


def png_size(text: str, width: int, guesses: bool = False) -> tuple[int, int]:
    rows = layout(text, width)
    return Geometry.for_rows(rows).size(rows, guesses)


@lru_cache(maxsize=1)
def _font_codepoints() -> frozenset[int]:
    return frozenset(get_font(findfont(FontProperties(family=FONT))).get_charmap())


def drawable(ch: str) -> str:
    """The glyph to draw: control characters made visible, and '?' where the font has none."""
    glyph = shown(ch)
    return glyph if ord(glyph) in _font_codepoints() or glyph == " " else "?"


def ink(background: np.ndarray) -> str:
    """Black on light cells, white on dark ones."""
    r, g, b = (np.asarray(background, dtype=np.float64) / 255.0)
    return "white" if 0.2126 * r + 0.7152 * g + 0.0722 * b < DARK else "black"


def render_png(text: str, values: np.ndarray, width: int = 80,
               top: Guesses | None = None) -> bytes:
    """PNG bytes of `text` wrapped at `width` columns, coloured by `values` (T,) in [-1, 1].
    `top` adds rows of the likeliest next characters under each row of text."""
    rows = layout(text, width)
    geo = Geometry.for_rows(rows)
    w, h = geo.size(rows, top is not None)
    pixels = np.full((h, w, 3), 255, dtype=np.uint8)
    rgb = colours(values)
    pitch = geo.row_height(top is not None)
    glyphs = []  # (x, y, glyph, size, colour)
    for r, row in enumerate(rows):
        y0 = geo.margin + r * pitch
        for col, t in enumerate(row):
            x0 = geo.margin + col * geo.cell_w
            pixels[y0:y0 + geo.cell_h, x0:x0 + geo.cell_w] = rgb[t]
            glyphs.append((x0 + geo.cell_w / 2, y0 + geo.cell_h / 2, drawable(text[t]), FONT_PT * geo.scale,
                           ink(rgb[t])))
            if top is None:
                continue
            ids, probs, chars = top
            for k in range(min(GUESSES, ids.shape[1])):
                gy = y0 + geo.cell_h + geo.margin // 4 + k * geo.guess_h
                shade = np.rint(255 - np.array([195, 95, 195]) * float(probs[t, k])).astype(np.uint8)
                pixels[gy:gy + geo.guess_h, x0:x0 + geo.cell_w] = shade
                glyphs.append((x0 + geo.cell_w / 2, gy + geo.guess_h / 2, drawable(chars[int(ids[t, k])]),
                               GUESS_FONT_PT * geo.scale, ink(shade)))

    fig = Figure(figsize=(w / DPI, h / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.figimage(pixels, xo=0, yo=0, origin="upper")
    for x, y, glyph, size, colour in glyphs:
        if glyph != " ":
            fig.text(x / w, 1 - y / h, glyph, ha="center", va="center", family=FONT, size=size, color=colour,
                     parse_math=False)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI)
    return out.getvalue()
