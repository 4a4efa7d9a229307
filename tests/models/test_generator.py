import pytest
import torch

from models import checkpoint as checkpoint_module
from models.errors import SamplingError
from models.generator import Generator
from models.sampling import gumbel, sample_next


@pytest.fixture(scope="module")
def generator(trained_run):
    return Generator.load(trained_run)


def test_learned_text_is_reproduced(generator):
    [c] = generator.complete(["the quick brown "], max_chars=60, temperature=0)
    assert c.text.startswith("fox jumps over the lazy dog.\nthe quick")
    assert c.finish_reason == "length" and len(c.text) == 60


def test_batch_of_mixed_lengths_equals_one_by_one(generator):
    prompts = ["t", "the quick brown fox jumps over", "", "lazy d", "Zebra ü"]
    batch = generator.complete(prompts, max_chars=50, temperature=1.0, seed=11)
    for i, prompt in enumerate(prompts):
        [alone] = generator.complete([prompt], max_chars=50, temperature=1.0, seed=11 + i)
        assert alone.text == batch[i].text
    assert len({c.text for c in batch}) > 1


def test_per_row_lengths_match_one_by_one(generator):
    prompts, lengths = ["the", "lazy", "fox"], [5, 300, 17]
    batch = generator.complete(prompts, max_chars=lengths, temperature=1.0, seed=4)
    assert [len(c.text) for c in batch] == lengths
    for i, (prompt, n) in enumerate(zip(prompts, lengths)):
        assert generator.complete([prompt], max_chars=n, temperature=1.0, seed=4 + i)[0].text == batch[i].text


def test_stop_at_newline_gives_one_line(generator):
    completions = generator.complete(["the lazy"] * 4, max_chars=200, temperature=0.5, seed=1, stop_at="\n")
    for c in completions:
        assert c.finish_reason == "stop"
        assert "\n" not in c.text
        assert c.text.endswith("dog.")


def test_multi_character_stop_string(generator):
    [c] = generator.complete(["the quick "], max_chars=100, temperature=0, stop_at="lazy")
    assert c.text == "brown fox jumps over the "
    assert c.finish_reason == "stop"


def test_unknown_characters_are_reported_not_fatal(generator):
    [c] = generator.complete(["über 😀 the quick"], max_chars=10, temperature=0)
    assert c.unknown_chars == ["ü", "😀"]
    assert len(c.text) == 10
    assert "\ufffd" not in c.text


def test_per_row_temperatures(generator):
    greedy = generator.complete(["the "], max_chars=40, temperature=0)[0].text
    mixed = generator.complete(["the ", "the "], max_chars=40, temperature=[0, 5.0], seed=2)
    assert mixed[0].text == greedy
    assert mixed[1].text != greedy


def test_invalid_parameters_raise_clear_errors(generator):
    for kwargs, message in [({"temperature": float("nan")}, "temperature"), ({"temperature": -1}, "temperature"),
                            ({"max_chars": 0}, "length"), ({"top_k": 0}, "top_k"), ({"top_p": 1.5}, "top_p")]:
        with pytest.raises(SamplingError, match=message):
            generator.complete(["x"], **kwargs)
    with pytest.raises(TypeError):
        generator.complete("just a string")


def test_top_k_one_and_tiny_top_p_are_greedy():
    logits = torch.tensor([[0.1, 2.0, 1.9, -1.0], [3.0, 0.0, 2.9, 1.0]])
    inv_temps = torch.tensor([1.0, 1.0])
    greedy = logits.argmax(-1)
    for seed in range(5):
        noise = gumbel(torch.rand(2, 4, generator=torch.Generator().manual_seed(seed)))
        assert torch.equal(sample_next(logits, inv_temps, noise, top_k=1), greedy)
        assert torch.equal(sample_next(logits, inv_temps, noise, top_p=1e-3), greedy)


def test_sampling_follows_the_distribution():
    logits = torch.log(torch.tensor([[0.1, 0.6, 0.3]])).repeat(20000, 1)

    def frequencies(inv_temp=1.0, seed=0, **kwargs):
        noise = gumbel(torch.rand(20000, 3, generator=torch.Generator().manual_seed(seed)))
        draws = sample_next(logits, torch.full((20000,), inv_temp), noise, **kwargs)
        return torch.bincount(draws, minlength=3).float() / 20000

    torch.testing.assert_close(frequencies(), torch.tensor([0.1, 0.6, 0.3]), atol=0.015, rtol=0)
    # temperature 0.5 squares the probabilities (renormalised): .01, .36, .09 of .46
    torch.testing.assert_close(frequencies(2.0, seed=1), torch.tensor([0.01, 0.36, 0.09]) / 0.46,
                               atol=0.015, rtol=0)
    # top_p = 0.7 keeps the 0.6 and 0.3 characters, renormalised; top_k = 2 the same two
    torch.testing.assert_close(frequencies(seed=2, top_p=0.7), torch.tensor([0.0, 2 / 3, 1 / 3]), atol=0.015, rtol=0)
    torch.testing.assert_close(frequencies(seed=3, top_k=2), torch.tensor([0.0, 2 / 3, 1 / 3]), atol=0.015, rtol=0)


def test_generator_loads_checkpoint_once(trained_run, monkeypatch):
    reads = []
    real_load_file = checkpoint_module.load_file
    monkeypatch.setattr(checkpoint_module, "load_file", lambda path: reads.append(path) or real_load_file(path))
    gen = Generator.load(trained_run)
    assert len(reads) == 1 and reads[0].endswith("best.safetensors")
    gen.complete(["the ", "a"], max_chars=20, seed=1)
    gen.complete(["quick"], max_chars=20, seed=2)
    assert len(reads) == 1  # sampling never goes back to the file
    assert gen.name.endswith("best.safetensors")


def test_empty_prompt_burns_in_whole_lines_saved_in_the_checkpoint(generator):
    from trainer.train import start_context

    # The trainer saves whole lines from the end of the training text...
    assert generator.start_context.endswith("\n") and generator.start_context.count("\n") >= 2
    assert set(generator.start_context.splitlines()) == {"the quick brown fox jumps over the lazy dog."}
    assert start_context("no newline at all") == "\n"
    assert start_context("half a line\nline one\nline two\nhalf") == "line one\nline two\n"
    # ...and an empty prompt continues from there: a fresh line, not the context itself.
    [c] = generator.complete([""], max_chars=44, temperature=0)
    assert c.text == "the quick brown fox jumps over the lazy dog."
