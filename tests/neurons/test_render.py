"""HTML escapes the text; PNGs are valid images of the announced size; colours are consistent."""

from __future__ import annotations

import numpy as np

from neurons.png import CELL_H, CELL_W, GUESS_H, MARGIN, png_size, render_png
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
    # rows "ab↵" and "cdef": 4 columns by 2 rows of cells, plus the margin
    assert png_dimensions(data) == (2 * MARGIN + 4 * CELL_W, 2 * MARGIN + 2 * CELL_H) == png_size(text, 80)


def test_png_wraps_long_lines_and_grows_for_predictions():
    text = "x" * 25
    values = np.zeros(25)
    assert png_dimensions(render_png(text, values, width=10)) == (2 * MARGIN + 10 * CELL_W, 2 * MARGIN + 3 * CELL_H)
    top = (np.ones((25, 5), dtype=int), np.full((25, 5), 0.5), ("\ufffd", "y"))
    w, h = png_dimensions(render_png(text, values, width=10, top=top))
    row = CELL_H + 5 * GUESS_H + 4  # the text, then five rows of guesses and a small gap
    assert (w, h) == png_size(text, 10, guesses=True) == (2 * MARGIN + 10 * CELL_W, 2 * MARGIN + 3 * row)


def test_png_copes_with_characters_the_font_lacks():
    # An emoji has no glyph in DejaVu Sans Mono: drawn as "?" instead of a matplotlib warning
    # (warnings are errors in the tests); "$" must not start mathtext.
    text = "price $5 \U0001f600 $x$ \x07"
    assert png_dimensions(render_png(text, np.zeros(len(text)))) == png_size(text, 80)
