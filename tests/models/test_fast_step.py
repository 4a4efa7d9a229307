"""The lean generation step computes the same function as nn.LSTM / nn.GRU / nn.RNN."""

import pytest
import torch

from models.fast_step import FastStepper
from models.generator import Generator
from models.model import CharRNN, ModelConfig
from models.vocab import Vocab


def random_model(cell: str, layers=2, hidden=24, embedding=0, vocab=13, seed=0) -> CharRNN:
    torch.manual_seed(seed)
    model = CharRNN(ModelConfig(vocab_size=vocab, cell=cell, layers=layers, hidden=hidden, embedding=embedding))
    with torch.no_grad():  # larger weights than the default init, so gates saturate and differences show
        for p in model.parameters():
            p.mul_(3.0)
    return model.eval()


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
@pytest.mark.parametrize("layers", [1, 3])
def test_next_char_distribution_matches_torch_fp32(cell, layers):
    model = random_model(cell, layers=layers, embedding=7)
    stepper = FastStepper(model)
    ids = torch.randint(0, 13, (5, 30), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        reference, _ = model(ids)
        state = stepper.init_state(5)
        for t in range(ids.shape[1]):
            logits, state = stepper(ids[:, t], state)
            torch.testing.assert_close(torch.log_softmax(logits, -1), torch.log_softmax(reference[:, t], -1),
                                       rtol=1e-5, atol=1e-5)


def test_bf16_weights_give_close_distributions():
    model = random_model("lstm", hidden=64)
    fast32, fast16 = FastStepper(model), FastStepper(model, torch.bfloat16)
    ids = torch.randint(0, 13, (4, 40), generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        s32, s16 = fast32.init_state(4), fast16.init_state(4)
        for t in range(ids.shape[1]):
            l32, s32 = fast32(ids[:, t], s32)
            l16, s16 = fast16(ids[:, t], s16)
            p32, logp16 = torch.softmax(l32, -1), torch.log_softmax(l16, -1)
            kl = (p32 * (torch.log(p32) - logp16)).sum(-1)
            assert float(kl.max()) < 0.02


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_same_samples_as_the_nn_module_path(cell):
    model = random_model(cell, hidden=32, vocab=27)
    vocab = Vocab.from_text("abcdefghijklmnopqrstuvwxyz")
    fast = Generator(model, vocab)
    reference = Generator(model, vocab)

    def module_step(ids, state):  # the plain per-character nn.Module call
        logits, state = model(ids.unsqueeze(1), state)
        return logits[:, 0], state

    reference._step = module_step  # the generator's private step, swapped for the reference
    prompts = ["abc", "hello there", ""]
    for kwargs in ({"temperature": 1.0}, {"temperature": 0.0}, {"temperature": 0.7, "top_k": 5, "top_p": 0.9}):
        a = fast.complete(prompts, max_chars=120, seed=5, **kwargs)
        b = reference.complete(prompts, max_chars=120, seed=5, **kwargs)
        assert [c.text for c in a] == [c.text for c in b]


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_a_step_runs_on_the_calling_thread_alone_and_restores_the_thread_count(precision):
    stepper = FastStepper(random_model("lstm", hidden=16), precision)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = []
        original = stepper._lstm_or_rnn
        stepper._lstm_or_rnn = lambda *args: (seen.append(torch.get_num_threads()), original(*args))[1]
        stepper(torch.tensor([1, 2]), stepper.init_state(2))
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
