"""Which cell to show when none is named, for a given text.

`rnnbot neurons find` saves, beside the checkpoint (neurons.json), the cell that best tracks each
feature (inside quotes, position in the line, ...). A cell is worth showing over a text only if
its feature changes there: the "inside a verse number" cell over a text without verse numbers is
one flat colour. So among the saved cells, the choice is the most interpretable one whose feature
varies in the text and which moves over it; without such a cell, the most active and varied one.
The CLI's `neurons show` and the bot's /neuron both choose through here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from models.errors import RnnbotError
from models.generator import Generator
from neurons import features
from neurons.activations import Activations
from neurons.features import DESCRIPTIONS
from neurons.find import Findings, find_cells, load_findings, most_interpretable, save_findings
from neurons.heldout import held_out_text

log = logging.getLogger(__name__)

MIN_SPREAD = 0.05  # a cell whose activation moves less than this (std) over the text looks flat
CODE_FEATURES = {"in_string", "in_comment", "indent"}


@dataclass(frozen=True)
class Cell:
    layer: int
    cell: int
    value: str  # tanh_c or h
    about: str  # what it tracks, for a caption
    feature: str | None = None  # the feature it tracks; None when chosen for its activity alone


def model_findings(generator: Generator, find_chars: int = 0) -> Findings | None:
    """The findings saved beside the model's checkpoint; with `find_chars` > 0 and none saved,
    found now on that many characters of held-out text (and saved). None if neither works."""
    ckpt = generator.checkpoint
    if ckpt is None or not ckpt.path:
        return None
    findings = load_findings(ckpt.path, ckpt.step)
    if findings is None and find_chars:
        try:
            text, source, code = held_out_text(ckpt, None, find_chars)
        except RnnbotError as exc:
            log.warning("no held-out text to find cells for %s: %s", generator.name, exc)
            return None
        findings, _, _ = find_cells(generator, text, code, source=source)
        save_findings(findings, ckpt.path)
    return findings


def cell_for_text(findings: Findings | None, acts: Activations, value: str) -> Cell:
    """The cell to show over `acts.text` (see the module's docstring)."""
    if findings is not None and findings.results:
        code = any(r.feature in CODE_FEATURES for r in findings.results)
        text_features = features.compute(acts.text, code)
        values = acts.values(findings.value)
        candidates = [r for r in findings.results
                      if r.feature in text_features and np.ptp(text_features[r.feature]) > 0
                      and values[:, r.best.layer, r.best.cell].std() >= MIN_SPREAD]
        best = most_interpretable(candidates)
        if best is not None:
            return Cell(best.best.layer, best.best.cell, findings.value,
                        f"{DESCRIPTIONS[best.feature]} (correlation {best.best.correlation:+.2f} on held-out text)",
                        best.feature)
    return most_active_cell(acts, value)


def most_active_cell(acts: Activations, value: str) -> Cell:
    """The cell that moves most over the recorded text, far from zero by preference: its spread
    (std) plus a quarter of its mean |activation|, so a picture is not all white."""
    values = acts.values(value)  # (T, L, H)
    score = values.std(axis=0) + 0.25 * np.abs(values).mean(axis=0)
    layer, unit = divmod(int(score.argmax()), acts.hidden)
    return Cell(layer, unit, value, "the most active and varied cell over your text (no cell that tracks "
                                    "a feature of it was found)")
