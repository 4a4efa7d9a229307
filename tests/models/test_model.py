import pytest
import torch

from models.model import CharRNN, ModelConfig


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_forward_shapes_and_state(cell):
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=11, cell=cell, layers=2, hidden=16, embedding=8)).eval()
    idx = torch.randint(0, 11, (3, 7))
    logits, state = model(idx)
    assert logits.shape == (3, 7, 11)
    assert len(state) == (2 if cell == "lstm" else 1)
    assert all(s.shape == (2, 3, 16) for s in state)
    # Carrying the state across two halves equals one pass over the whole sequence.
    first, mid = model(idx[:, :4])
    second, _ = model(idx[:, 4:], mid)
    torch.testing.assert_close(torch.cat([first, second], 1), logits)


def test_packed_burn_in_matches_rows_one_by_one():
    torch.manual_seed(0)
    model = CharRNN(ModelConfig(vocab_size=9, layers=2, hidden=12)).eval()
    rows = [torch.randint(0, 9, (n,)) for n in (5, 1, 9)]
    padded = torch.zeros(3, 9, dtype=torch.long)
    for i, r in enumerate(rows):
        padded[i, : len(r)] = r
    last_logits, (h, c) = model.run_packed(padded, torch.tensor([5, 1, 9]))
    for i, r in enumerate(rows):
        logits, (h1, c1) = model(r.unsqueeze(0))
        torch.testing.assert_close(last_logits[i], logits[0, -1])
        torch.testing.assert_close(h[:, i], h1[:, 0])
        torch.testing.assert_close(c[:, i], c1[:, 0])


def test_config_rejects_nonsense():
    with pytest.raises(ValueError, match="unknown cell"):
        ModelConfig(vocab_size=5, cell="transformer")
    with pytest.raises(ValueError, match="dropout"):
        ModelConfig(vocab_size=5, dropout=1.5)
