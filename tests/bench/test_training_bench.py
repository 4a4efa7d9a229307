"""bench/training.py compares like with like: the same network sizes, the same characters."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.training import build
from trainer.config import TrainConfig
from trainer.corpora import load_corpus

ROOT = Path(__file__).resolve().parents[2]


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("embedding", [0, 16])
def test_the_baseline_has_the_projects_network_sizes(tmp_path, periodic_corpus, embedding):
    # rnnbot train's default embedding (64) is not the baseline's: the benchmark must set it for both.
    cfg = TrainConfig(corpus=str(periodic_corpus), hidden=32, layers=2, embedding=embedding, batch_size=8,
                      seq_len=16, run_dir=str(tmp_path / "run"))
    project, baseline, base_batcher = build(cfg, 4, 1e-3, load_corpus(str(periodic_corpus)))
    assert project.model.config.embedding_dim == (embedding or 32)
    assert n_params(baseline.model) == n_params(project.model)
    assert sorted(p.shape for p in baseline.model.parameters()) == sorted(p.shape for p in project.model.parameters())
    x, _, _ = base_batcher.next()
    assert x.shape == (4, 16) and project.batcher.next()[0].shape == (8, 16)
    assert torch.equal(x[0], project.train_ids[:16])  # the baseline reads the project's training text


@pytest.mark.slow
def test_a_larger_project_batch_is_timed_on_the_baselines_characters():
    out = subprocess.run(
        [sys.executable, "bench/training.py", "--hidden", "32", "--layers", "1", "--batch-size", "4",
         "--project-batch-size", "8", "--seq-len", "16", "--steps", "2", "--rounds", "1", "--threads", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=240, check=True).stdout
    line = next(line for line in out.splitlines() if "training chars/s" in line)
    assert "B=4 (rnnbot B=8) T=16" in line
    assert float(line.split()[-1].rstrip("x")) > 0
    assert "one training step:" in out


def test_a_project_batch_that_is_not_a_multiple_is_refused():
    done = subprocess.run([sys.executable, "bench/training.py", "--batch-size", "64", "--project-batch-size", "96",
                           "--hidden", "32", "--steps", "1", "--rounds", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 2
    assert "--project-batch-size must be a multiple of --batch-size" in done.stderr
