"""A tiny LSTM trained in-test on text where being inside double quotes decides what follows."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.helpers import tiny_config

OUTSIDE, INSIDE = "abcdefg", "tuvwxyz"  # letters used outside and inside quotes


def quotes_text(lines: int, seed: int) -> str:
    """`ab cde "tuv wxy" fg.` lines: which letters come next depends on whether a quote is open."""
    rng = random.Random(seed)

    def words(letters: str, low: int, high: int) -> str:
        return " ".join("".join(rng.choice(letters) for _ in range(rng.randint(2, 5)))
                        for _ in range(rng.randint(low, high)))

    return "".join(f'{words(OUTSIDE, 1, 3)} "{words(INSIDE, 1, 4)}" {words(OUTSIDE, 1, 3)}.\n'
                   for _ in range(lines))


@pytest.fixture(scope="session")
def quotes_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("quotes") / "quotes.txt"
    path.write_text(quotes_text(400, seed=0), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def quotes_run(tmp_path_factory, quotes_corpus) -> Path:
    """A run directory with a 1x32 LSTM trained for 150 steps (about 3 s) on the quotes corpus."""
    from trainer.train import Trainer

    cfg = tiny_config(tmp_path_factory.mktemp("quotes_run"), quotes_corpus, max_steps=150, eval_every=150,
                      seq_len=64, log_every=1000)
    Trainer.start(cfg).run()
    return Path(cfg.run_dir)
