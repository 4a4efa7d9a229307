"""Recorded activations are generation's hidden states: same weights, same stepper, same numbers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import RnnbotError
from models.generator import Generator
from models.model import CharRNN, ModelConfig
from models.vocab import Vocab
from neurons.activations import record

TEXT = 'In the beginning "God" created (the heaven) and the earth.\n1:2 And the earth was'


def random_generator(cell: str) -> Generator:
    torch.manual_seed(0)
    vocab = Vocab.from_text(TEXT)
    model = CharRNN(ModelConfig(len(vocab), cell=cell, layers=2, hidden=24, dropout=0.0)).eval()
    return Generator(model, vocab)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_every_step_matches_the_model_run_on_each_prefix(cell):
    generator = random_generator(cell)
    acts = record(generator, TEXT, top_k=5)
    prefixes = [generator.vocab.encode(TEXT[: t + 1]) for t in (0, 9, 40, len(TEXT) - 1)]
    with torch.inference_mode():
        logits, state = generator._burn_in(prefixes)  # nn.LSTM/GRU/RNN over each whole prefix
    for row, t in enumerate((0, 9, 40, len(TEXT) - 1)):
        np.testing.assert_allclose(acts.h[t], state[0][:, row].numpy(), atol=1e-5)
        if cell == "lstm":
            np.testing.assert_allclose(acts.tanh_c[t], state[1][:, row].tanh().numpy(), atol=1e-5)
        probs = torch.softmax(logits[row, 1:], -1)  # generation never emits the unknown id 0
        top = probs.topk(5)
        np.testing.assert_array_equal(acts.top_ids[t], top.indices.numpy() + 1)
        np.testing.assert_allclose(acts.top_probs[t], top.values.numpy(), atol=1e-5)
    assert (acts.tanh_c is None) == (cell != "lstm")


def test_trained_checkpoint_final_state_equals_generation_state(quotes_run):
    generator = Generator.load(quotes_run)
    text = 'abc "tuv wx" fe.\ndd "'
    acts = record(generator, text)
    with torch.inference_mode():
        _, (h, c) = generator._burn_in([generator.vocab.encode(text)])
    np.testing.assert_allclose(acts.h[-1], h[:, 0].numpy(), atol=1e-5)
    np.testing.assert_allclose(acts.tanh_c[-1], c[:, 0].tanh().numpy(), atol=1e-5)
    # and the state generation then continues from: step one more character both ways
    state = tuple(s.clone() for s in (h, c))
    generator._step(torch.tensor(generator.vocab.encode("t")), state)
    np.testing.assert_allclose(record(generator, text + "t").h[-1], state[0][:, 0].numpy(), atol=1e-5)


def test_streams_are_independent_slices_from_the_zero_state():
    generator = random_generator("lstm")
    text = TEXT[:80]
    together = record(generator, text, streams=4)
    for s in range(4):
        alone = record(generator, text[s * 20:(s + 1) * 20])
        np.testing.assert_allclose(together.tanh_c[s * 20:(s + 1) * 20], alone.tanh_c, atol=1e-6)
    assert together.text == text


def test_bad_cell_and_value_are_clear_errors():
    acts = record(random_generator("gru"), "abc")
    with pytest.raises(RnnbotError, match=r"layer 2 is out of range: this model has 2 layers \(0-1\)"):
        acts.cell(2, 0, "h")
    with pytest.raises(RnnbotError, match=r"cell 24 is out of range: each layer has 24 cells \(0-23\)"):
        acts.cell(0, 24, "h")
    with pytest.raises(RnnbotError, match="no cell state"):
        acts.cell(0, 0, "tanh_c")
    with pytest.raises(RnnbotError, match="empty"):
        record(random_generator("gru"), "")
