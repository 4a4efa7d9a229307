"""Which cell to show when none is named: the one `rnnbot neurons find` saved beside the checkpoint
(neurons.json), optionally found now on held-out text; the CLI's `neurons show` and the bot's
/neuron both choose through here."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from models.errors import RnnbotError
from models.generator import Generator
from neurons.activations import Activations
from neurons.features import DESCRIPTIONS
from neurons.find import find_cells, load_findings, save_findings
from neurons.heldout import held_out_text

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Cell:
    layer: int
    cell: int
    value: str  # tanh_c or h
    about: str  # what it tracks, for a caption


def showcase_cell(generator: Generator, find_chars: int = 0) -> Cell | None:
    """The model's most interpretable cell, from the saved findings; with `find_chars` > 0 and none
    saved, found now on that many characters of held-out text (and saved). None if neither works."""
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
    best = findings.showcase() if findings else None
    if best is None:
        return None
    return Cell(best.best.layer, best.best.cell, findings.value,
                f"{DESCRIPTIONS[best.feature]} (correlation {best.best.correlation:+.2f} on held-out text)")


def most_varied_cell(acts: Activations, value: str) -> Cell:
    """The cell whose activation varies most over the recorded text."""
    spread = acts.values(value).std(axis=0)  # (L, H)
    layer, unit = divmod(int(spread.argmax()), acts.hidden)
    return Cell(layer, unit, value, "the cell that varies most over your text")
