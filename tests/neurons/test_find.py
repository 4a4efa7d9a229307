"""find ranks the cell that tracks quotes first, on a model that needs one; findings round-trip."""

from __future__ import annotations

import numpy as np
import torch

from models.generator import Generator
from models.model import CharRNN
from neurons.find import Findings, find_cells, load_findings, pearson, save_findings
from tests.fixtures.runs import quotes_text

HELD_OUT = quotes_text(60, seed=1)  # new lines the model has not seen


def quote_correlation(generator: Generator) -> float:
    findings, _, _ = find_cells(generator, HELD_OUT, streams=4)
    result = next(r for r in findings.results if r.feature == "in_quotes")
    return result.best.correlation


def test_trained_model_has_a_quote_cell(quotes_run):
    assert abs(quote_correlation(Generator.load(quotes_run))) >= 0.9


def test_untrained_model_of_the_same_shape_has_none(quotes_run):
    # The control: letters differ inside quotes, so some cell of a random network correlates a little.
    trained = Generator.load(quotes_run)
    torch.manual_seed(0)
    untrained = Generator(CharRNN(trained.model.config).eval(), trained.vocab)
    assert abs(quote_correlation(untrained)) < 0.75


def test_pearson_matches_numpy_and_ignores_constant_columns():
    rng = np.random.default_rng(0)
    acts = rng.standard_normal((1000, 6)).astype(np.float32)
    acts[:, 5] = 0.3  # a dead cell
    feats = np.stack([acts[:, 0] * 2 + rng.standard_normal(1000) * 0.1, rng.standard_normal(1000)], 1)
    r = pearson(acts, feats, chunk=128)
    for i in range(5):
        for j in range(2):
            assert abs(r[i, j] - np.corrcoef(acts[:, i], feats[:, j])[0, 1]) < 1e-6
    assert r[5].tolist() == [0.0, 0.0]
    assert r[0, 0] > 0.99


def test_findings_are_saved_beside_the_checkpoint_and_go_stale(quotes_run, tmp_path):
    generator = Generator.load(quotes_run)
    findings, _, _ = find_cells(generator, HELD_OUT, streams=4, source="held out")
    assert findings.showcase().feature == "in_quotes"
    ckpt = generator.checkpoint
    path = save_findings(findings, ckpt.path)
    try:
        assert path == ckpt.path.parent / "neurons.json"
        loaded = load_findings(ckpt.path, ckpt.step)
        assert isinstance(loaded, Findings) and loaded == findings
        assert load_findings(ckpt.path, ckpt.step + 1) is None  # a newer checkpoint: recompute
        assert load_findings(tmp_path / "best.safetensors", ckpt.step) is None  # none saved there
    finally:
        path.unlink()
