"""The native int8 LSTM (models/csrc/lstm_int8.c): the same function as fp32 to int8 precision,
both kernels alike, and sampling, stops and limits exactly as the torch path's rules."""

import pytest
import torch

from models.bundled import bundled_checkpoint
from models.checkpoint import load_checkpoint
from models.fast_step import FastStepper
from models.generator import Generator
from models.model import CharRNN, ModelConfig
from models.native_lstm import NativeLSTM, native_kernel, native_supports
from models.precision import NATIVE_MAX_BATCH
from models.sampling import gumbel_noise, sample_next

pytestmark = pytest.mark.skipif(native_kernel() is None, reason="the native extension is not built here")
vnni = pytest.mark.skipif(native_kernel() != "vnni", reason="this CPU has no AVX-512 VNNI")


@pytest.fixture(scope="module")
def trained(trained_run):
    return load_checkpoint(trained_run)


def kl_along_sampled_text(model: CharRNN, steps: int, seed: int = 0) -> tuple[float, float]:
    """Mean and max KL(fp32 || native int8) of next-char distributions along text fp32 samples."""
    ref, native = FastStepper(model, "fp32"), NativeLSTM(model)
    s_ref, s_native = ref.init_state(1), native.init_state(1)
    rng = torch.Generator().manual_seed(seed)
    ids, kls = torch.tensor([1]), []
    with torch.inference_mode():
        for _ in range(steps):
            p, s_ref = ref(ids, s_ref)
            q = native.step(ids, s_native)
            logp, logq = p.log_softmax(-1), q.log_softmax(-1)
            kls.append(float((logp.exp() * (logp - logq)).sum()))
            ids = torch.multinomial(logp.exp()[0], 1, generator=rng)
    return sum(kls) / len(kls), max(kls)


def test_next_char_distributions_stay_close_to_fp32_on_a_trained_model(trained):
    mean, worst = kl_along_sampled_text(trained.build_model().eval(), steps=600)
    assert mean < 1e-3
    assert worst < 2e-2


@pytest.mark.slow
def test_the_bundled_model_stays_within_the_kl_bound_over_2000_steps():
    mean, _ = kl_along_sampled_text(load_checkpoint(bundled_checkpoint()).build_model().eval(), steps=2000)
    assert mean < 1e-3  # nats/char, the bound of the performance issue (bench/README.md has the figure)


def test_logits_and_state_follow_fp32_for_every_row_of_a_batch(trained):
    model = trained.build_model().eval()
    ref, native = FastStepper(model, "fp32"), NativeLSTM(model)
    ids = torch.tensor(trained.vocab.encode("the quick brown fox jumps over the lazy dog.\nthe quick"))
    rows = ids.view(1, -1).repeat(5, 1)
    for i in range(1, 5):
        rows[i] = rows[i].roll(7 * i)
    s_ref, s_native = ref.init_state(5), native.init_state(5)
    with torch.inference_mode():
        for t in range(rows.shape[1]):
            a, s_ref = ref(rows[:, t], s_ref)
            b = native.step(rows[:, t], s_native)
            torch.testing.assert_close(b.log_softmax(-1), a.log_softmax(-1), atol=0.1, rtol=0)
            torch.testing.assert_close(b.softmax(-1), a.softmax(-1), atol=0.01, rtol=0)
            torch.testing.assert_close(s_native[0], s_ref[0], atol=0.06, rtol=0)
            torch.testing.assert_close(s_native[1], s_ref[1], atol=0.1, rtol=0)


@vnni
@pytest.mark.parametrize("hidden,layers", [(48, 2), (64, 3), (256, 1)])
def test_the_vnni_and_portable_kernels_give_the_same_numbers(hidden, layers):
    # The int8 products accumulate exactly and the float code is shared, so the two kernels agree
    # to the bit, batch 1 (one row's path) and batch 6 (four rows at a time, then the rest).
    torch.manual_seed(hidden)
    model = CharRNN(ModelConfig(vocab_size=37, layers=layers, hidden=hidden, embedding=16)).eval()
    fast, portable = NativeLSTM(model, "vnni"), NativeLSTM(model, "portable")
    for batch in (1, 6):
        s_fast, s_portable = fast.init_state(batch), portable.init_state(batch)
        ids = torch.randint(0, 37, (batch, 40), generator=torch.Generator().manual_seed(batch))
        for t in range(ids.shape[1]):
            assert torch.equal(fast.step(ids[:, t], s_fast), portable.step(ids[:, t], s_portable))
        assert torch.equal(s_fast[0], s_portable[0]) and torch.equal(s_fast[1], s_portable[1])


def python_loop(native: NativeLSTM, prompts, noise, temps, top_k, top_p, stop_ids, limits):
    """The torch path's rules, spelled out, on the native step's logits: what generate() must do."""
    texts, finished = [], []
    for row, prompt in enumerate(prompts):
        state = native.init_state(1)
        for cid in prompt:
            logits = native.step(torch.tensor([cid]), state)
        out, stopped = [], False
        temp = temps[row]
        for t in range(limits[row]):
            if temp == 0:
                logits[:, 0] = float("-inf")
            nxt = int(sample_next(logits, torch.tensor([1.0 / max(temp, 1e-6)]), noise[row:row + 1, t], top_k, top_p,
                                  torch.tensor([temp > 0]))[0])
            if nxt in stop_ids:
                stopped = True
                break
            out.append(nxt)
            logits = native.step(torch.tensor([nxt]), state)
        texts.append(out)
        finished.append(stopped)
    return texts, finished


@pytest.mark.parametrize("top_k,top_p", [(None, None), (4, None), (None, 0.7), (6, 0.9)])
def test_generate_samples_stops_and_limits_by_the_torch_paths_rules(trained, top_k, top_p):
    native = NativeLSTM(trained.build_model().eval())
    vocab = trained.vocab
    prompts = [vocab.encode(p) for p in ["the", "lazy d", "\n", "the quick brown fox jumps"]]
    temps, limits, T = [1.0, 0.0, 1.3, 0.7], [60, 25, 60, 40], 60
    stop_ids = [vocab.encode(".")[0]]
    noise = gumbel_noise([11, 12, 13, 14], T, len(vocab))
    noise[:, :, 0] = float("-inf")
    temps_t = torch.tensor(temps)
    with torch.inference_mode():
        out, lengths, stopped = native.generate(prompts, noise, 1.0 / temps_t.clamp_min(1e-6), temps_t > 0, top_k,
                                                top_p, stop_ids, limits, threads=2)
        expected, expected_stopped = python_loop(native, prompts, noise, temps, top_k, top_p, stop_ids, limits)
    assert [out[i, : lengths[i]].tolist() for i in range(4)] == expected
    assert stopped == expected_stopped
    assert all(length <= limit for length, limit in zip(lengths, limits))


def test_bad_input_is_refused_before_the_kernel_reads_it(trained):
    native = NativeLSTM(trained.build_model().eval())
    V = len(trained.vocab)
    noise, one, hot = torch.zeros(2, 5, V), torch.ones(2), torch.ones(2, dtype=torch.bool)
    with pytest.raises(ValueError, match="non-empty prompt"):
        native.generate([[1], []], noise, one, hot, None, None, [], [5, 5])
    with pytest.raises(ValueError, match="non-empty prompt"):
        native.generate([[1], [2]], noise, one, hot, None, None, [], [5, 6])  # a limit beyond the noise
    with pytest.raises(ValueError, match=r"ids must be in \[0"):
        native.generate([[1], [V]], noise, one, hot, None, None, [], [5, 5])
    with pytest.raises(ValueError, match="noise must be"):
        native.generate([[1], [2]], torch.zeros(2, 5, V + 1), one, hot, None, None, [], [5, 5])
    state = native.init_state(1)
    with pytest.raises(ValueError, match=r"ids must be in \[0"):
        native.step(torch.tensor([-1]), state)
    with pytest.raises(ValueError, match="state must be"):
        native.step(torch.tensor([1]), native.init_state(2))
    assert torch.equal(state[0], torch.zeros_like(state[0]))  # nothing was written


@vnni
def test_the_generator_runs_int8_and_auto_natively_and_fp32_not(trained):
    model = trained.build_model().eval()
    for precision, native in (("auto", True), ("int8", True), ("fp32", False)):
        gen = Generator(model, trained.vocab, trained, precision=precision)
        assert gen.uses_native(1) is native and gen.uses_native(NATIVE_MAX_BATCH) is native
        assert NATIVE_MAX_BATCH >= 64  # the bot's largest batch (MAX_BATCH) runs natively
        assert not gen.uses_native(NATIVE_MAX_BATCH + 1)


@vnni
def test_same_seed_same_text_alone_in_a_batch_and_on_any_number_of_threads(trained):
    gen = Generator(trained.build_model().eval(), trained.vocab, trained, precision="int8")
    prompts = ["the", "lazy d", "", "the quick brown fox jumps"]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        first = gen.complete(prompts, max_chars=80, temperature=1.0, seed=7)
        alone = [gen.complete([p], max_chars=80, temperature=1.0, seed=7 + i)[0].text for i, p in enumerate(prompts)]
        torch.set_num_threads(1)
        one_thread = gen.complete(prompts, max_chars=80, temperature=1.0, seed=7)
    finally:
        torch.set_num_threads(before)
    assert [c.text for c in first] == alone == [c.text for c in one_thread]
    assert len(set(alone)) > 1


@vnni
def test_a_longer_stop_string_or_a_gru_takes_the_torch_path_with_the_same_rules(trained):
    gen = Generator(trained.build_model().eval(), trained.vocab, trained, precision="int8")
    [c] = gen.complete(["the"], max_chars=200, temperature=0.0, stop_at=["lazy"])
    assert c.finish_reason == "stop" and "lazy" not in c.text  # greedy text of this corpus reaches it
    gru = CharRNN(ModelConfig(vocab_size=len(trained.vocab), cell="gru", layers=1, hidden=32)).eval()
    assert not native_supports(gru)
    assert not Generator(gru, trained.vocab, precision="int8").uses_native(1)
    assert len(Generator(gru, trained.vocab, precision="int8").complete(["x"], max_chars=5)[0].text) == 5
