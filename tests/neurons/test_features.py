"""Per-character features: the value at t describes the moment just after reading text[t]."""

from __future__ import annotations

import numpy as np

from neurons import features


def as_list(a: np.ndarray) -> list[int]:
    return [int(x) for x in a]


def test_quotes_brackets_and_positions():
    text = 'a "b" (c[d])\nxy z'
    assert as_list(features.in_quotes(text)) == [0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert as_list(features.bracket_depth(text)) == [0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 1, 0, 0, 0, 0, 0, 0]
    assert as_list(features.line_position(text)) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0, 1, 2, 3, 4]
    assert as_list(features.word_position(text)) == [1, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 0, 1]
    assert as_list(features.line_start(text)) == [0] * 12 + [1, 0, 0, 0, 0]
    assert as_list(features.line_start("\n  x")) == [1, 1, 1, 0]


def test_verse_numbers_only_at_line_starts():
    text = "22:3 I am 4:5\n22:4 And"
    f = features.verse_number(text)
    assert "".join(ch for ch, v in zip(text, f) if v) == "22:322:4"


def test_python_strings_comments_and_indent():
    text = 'if x:  # why "not"\n    s = "a#b" + \'c\\\'d\'\n    """doc\n    (text"""\n'
    string, comment = features.python_strings_and_comments(text)
    assert "".join(ch for ch, v in zip(text, comment) if v) == '# why "not"'
    # an opening quote is inside the string; after a closing quote's last character we are outside
    assert "".join(ch for ch, v in zip(text, string) if v) == '"a#b\'c\\\'d"""doc\n    (text""'
    indent = features.indent(text)
    assert indent[text.index("s =")] == 4 and indent[text.index("if")] == 0
    depth = features.compute(text, code=True)["bracket_depth"]
    assert depth.max() == 0  # the "(" inside the docstring does not count


def test_code_start_skips_a_docstring_tail():
    text = 'rest of a docstring.\n"""\nimport os\n'
    assert text[features.code_start(text):].startswith("import os")


def test_feature_sets():
    assert set(features.compute("x", code=False)) == set(features.PROSE)
    assert set(features.compute("x", code=True)) == set(features.CODE)
    assert set(features.DESCRIPTIONS) >= set(features.PROSE) | set(features.CODE)
