"""HTML escapes the text; PNGs are valid images of the announced size; colours are consistent."""

from __future__ import annotations

import io
import math

import numpy as np
from matplotlib.image import imread

from neurons.png import CELL_H, CELL_W, MAX_SCALE, MIN_WIDTH, Geometry, ink, layout, png_size, render_png
from neurons.render import NEGATIVE, POSITIVE, colours, show_page
from tests.helpers import png_dimensions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_colours_run_from_blue_through_white_to_red():
    c = colours(np.array([-1.0, -0.5, 0.0, 1.0, 7.0]))
    assert tuple(c[0]) == NEGATIVE and tuple(c[2]) == (255, 255, 255) and tuple(c[3]) == POSITIVE
    assert tuple(c[4]) == POSITIVE  # clipped
    assert all(NEGATIVE[i] < c[1][i] < 255 for i in range(3))


def test_html_escapes_the_text_and_has_no_outside_resources():
    text = '<script>alert("x")</script> & <b>bold</b>\n'
    values = np.linspace(-1, 1, len(text))
    top = (np.zeros((len(text), 5), dtype=int) + 1, np.full((len(text), 5), 0.2), ("\ufffd", "<", "&"))
    plain = show_page(text, values, "<title>", "cap & tion")
    guesses = show_page(text, values, "t", "c", top)
    for page in (plain, guesses):
        assert "<script" not in page and "<b>" not in page
        assert "http" not in page and "src=" not in page  # self-contained
    body = plain.split('<div class="text">', 1)[1]
    assert body.count("<span ") == len(text)  # one coloured span per character
    assert body.count(">&lt;</span>") == text.count("<") and body.count(">&amp;</span>") == 1
    assert "<title>&lt;title&gt;</title>" in plain and "cap &amp; tion" in plain
    assert 'title="-1.000"' in body and 'title="+1.000"' in body
    # predicted characters are escaped too: every guess here is "<"
    assert guesses.count(">&lt;</i>") == 5 * len(text)


def test_png_is_a_valid_image_of_the_expected_size():
    text = "ab\ncdef"
    data = render_png(text, np.array([-1, 0, 1, 0.5, 0.2, -0.3, 0.9]), width=80)
    # rows "ab↵" and "cdef": 4 columns by 2 rows of cells, plus the margin, scaled up as far as allowed
    geo = Geometry.for_rows([[0, 1, 2], [3, 4, 5, 6]])
    assert geo.scale == MAX_SCALE and geo.cell_w == math.ceil(CELL_W * MAX_SCALE)
    assert png_dimensions(data) == (2 * geo.margin + 4 * geo.cell_w, 2 * geo.margin + 2 * geo.cell_h)
    assert png_dimensions(data) == png_size(text, 80)


def test_a_picture_is_at_least_800_pixels_wide_when_the_text_allows():
    text = "In the beginning God created the heaven and the earth."  # 54 characters, one line
    width, height = png_dimensions(render_png(text, np.full(len(text), -1.0), width=60))
    assert MIN_WIDTH <= width < MIN_WIDTH + 60 and height >= 2 * CELL_H  # it was a 498x28 strip
    assert png_size("ab", 60)[0] < MIN_WIDTH  # a short text is scaled at most MAX_SCALE times


def test_png_wraps_long_lines_at_spaces_and_grows_for_predictions():
    text = "x" * 25
    values = np.zeros(25)
    geo = Geometry.for_rows(layout(text, 10))
    assert png_dimensions(render_png(text, values, width=10)) == (2 * geo.margin + 10 * geo.cell_w,
                                                                  2 * geo.margin + 3 * geo.cell_h)
    top = (np.ones((25, 5), dtype=int), np.full((25, 5), 0.5), ("\ufffd", "y"))
    w, h = png_dimensions(render_png(text, values, width=10, top=top))
    row = geo.cell_h + 5 * geo.guess_h + geo.margin // 2  # the text, then five rows of guesses and a small gap
    assert (w, h) == png_size(text, 10, guesses=True) == (2 * geo.margin + 10 * geo.cell_w, 2 * geo.margin + 3 * row)
    words = "the quick brown fox jumps"
    assert ["".join(words[t] for t in row) for row in layout(words, 12)] == ["the quick ", "brown fox ", "jumps"]
    assert ["".join("abcdefghij"[t] for t in row) for row in layout("abcdefghij", 4)] == ["abcd", "efgh", "ij"]


def test_glyphs_are_white_on_dark_cells_and_black_on_light_ones():
    assert ink(np.array(POSITIVE)) == ink(np.array(NEGATIVE)) == "white"
    assert ink(np.array([255, 255, 255])) == ink(colours(np.array([0.3]))[0]) == "black"
    text = "MMMM"
    picture = imread(io.BytesIO(render_png(text, np.array([1.0, 1.0, 0.0, 0.0]), width=80)))[..., :3]
    geo = Geometry.for_rows(layout(text, 80))
    y = slice(geo.margin, geo.margin + geo.cell_h)
    dark_cell = picture[y, geo.margin: geo.margin + geo.cell_w]
    light_cell = picture[y, geo.margin + 2 * geo.cell_w: geo.margin + 3 * geo.cell_w]
    assert (dark_cell.min(axis=2) > 0.9).sum() > 20  # white strokes of the "M" on red
    assert (light_cell.max(axis=2) < 0.2).sum() > 20  # black strokes on white


def test_png_copes_with_characters_the_font_lacks():
    # An emoji has no glyph in DejaVu Sans Mono: drawn as "?" instead of a matplotlib warning
    # (warnings are errors in the tests); "$" must not start mathtext.
    text = "price $5 \U0001f600 $x$ \x07"
    assert png_dimensions(render_png(text, np.zeros(len(text)))) == png_size(text, 80)
