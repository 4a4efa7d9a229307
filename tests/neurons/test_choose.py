"""The cell shown over a text is one whose feature changes in that text."""

from __future__ import annotations

import numpy as np

from models.generator import Generator
from neurons.activations import record
from neurons.choose import cell_for_text
from neurons.find import CellMatch, FeatureResult, Findings

VERSES = "12:3 the lamb shall see the city.\n4:5 a king went unto the hills.\n"
PROSE = "the lamb shall see the city. a king went unto the hills."


def findings_led_by_verse_numbers(generator: Generator) -> Findings:
    """Saved findings whose most interpretable cell is the verse-number cell (no memory feature
    reaches 0.5), as `neurons find` gave for the KJV model."""
    results = [FeatureResult("verse_number", CellMatch(0, 34, 0.95)),
               FeatureResult("word_position", CellMatch(0, 17, -0.69)),
               FeatureResult("line_position", CellMatch(0, 41, -0.45))]
    findings = Findings("best.safetensors", generator.checkpoint.step, "tanh_c", "test", 1000, results)
    assert findings.showcase().feature == "verse_number"
    return findings


def test_a_text_without_verse_numbers_gets_a_cell_whose_feature_varies_in_it(verse_run):
    generator = Generator.load(verse_run)
    findings = findings_led_by_verse_numbers(generator)
    assert cell_for_text(findings, record(generator, VERSES), "tanh_c").feature == "verse_number"

    acts = record(generator, PROSE)
    cell = cell_for_text(findings, acts, "tanh_c")
    assert (cell.feature, cell.layer, cell.cell) == ("word_position", 0, 17)
    assert cell.about.startswith("position in the word") and "-0.69" in cell.about
    assert acts.cell(0, 17, "tanh_c").std() >= 0.05  # the picture is not one flat colour


def test_without_a_cell_for_any_feature_of_the_text_the_most_active_one_is_shown(verse_run):
    generator = Generator.load(verse_run)
    acts = record(generator, PROSE)  # neither quotes nor verse numbers here
    findings = Findings("best.safetensors", generator.checkpoint.step, "tanh_c", "test", 1000,
                        [FeatureResult("verse_number", CellMatch(0, 34, 0.95)),
                         FeatureResult("in_quotes", CellMatch(0, 3, 0.9))])
    for chosen in (cell_for_text(findings, acts, "tanh_c"), cell_for_text(None, acts, "tanh_c")):
        assert chosen.feature is None and chosen.about.startswith("the most active and varied cell")
        values = acts.values("tanh_c")
        score = values.std(axis=0) + 0.25 * np.abs(values).mean(axis=0)
        assert score[chosen.layer, chosen.cell] == score.max()
