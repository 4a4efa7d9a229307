"""Data-parallel training: `torchrun --nproc_per_node=2` with gloo on CPU, and the plain path untouched."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from models.generator import Generator
from tests.helpers import PERIODIC, ROOT, tiny_config
from trainer import distributed
from trainer.artifacts import RunFiles
from trainer.corpora import load_corpus
from trainer.data import StreamBatcher
from trainer.train import Trainer

# 2 processes x 8 streams must read exactly what 1 process x 16 streams reads
STREAMS, WORLD = 8, 2
TINY = ["--hidden", "32", "--layers", "1", "--seq-len", "32", "--lr", "1e-2", "--warmup-steps", "5",
        "--log-every", "10", "--sample-chars", "40", "--seed", "3", "--dropout", "0", "--precision", "fp32"]


@pytest.fixture(scope="module")
def even_corpus(tmp_path_factory) -> Path:
    """A periodic text whose training split is 1 + a multiple of 16 chars, so 2 x 8 streams = 16 streams."""
    path = tmp_path_factory.mktemp("ddp") / "periodic.txt"
    length = 6750
    while True:
        path.write_text((PERIODIC * 200)[:length], encoding="utf-8")
        train, _ = load_corpus(str(path)).split(0.1)
        if (len(train) - 1) % (STREAMS * WORLD) == 0:
            return path
        length += 1


def torchrun(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    # --standalone: a rendezvous on a free local port, so parallel runs do not collide
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}",
               "-m", "cli", "train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_each_rank_reads_its_own_equal_share_of_the_streams():
    ids = torch.arange(16 * 100 + 1)
    whole = StreamBatcher(ids, STREAMS * WORLD, 10)
    ranks = [distributed.DataParallel(rank, WORLD, owns_group=False).batcher(ids, STREAMS, 10) for rank in range(WORLD)]
    for _ in range(whole.windows_per_epoch + 1):
        x, y, reset = whole.next()
        parts = [r.next() for r in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), x)
        assert torch.equal(torch.cat([p[1] for p in parts]), y)
        assert all(p[2] == reset for p in parts)
    # starts differ by rank: no two ranks read the same characters
    assert set(ranks[0].inputs.flatten().tolist()).isdisjoint(ranks[1].inputs.flatten().tolist())


def test_a_too_small_shard_says_why():
    from models.errors import RnnbotError

    with pytest.raises(RnnbotError, match="each of the 2 processes reads 1/2 of the text"):
        distributed.DataParallel(1, 2, owns_group=False).batcher(torch.arange(300), 8, 32)


def test_a_plain_process_trains_as_before(tmp_path, periodic_corpus):
    trainer = Trainer.start(tiny_config(tmp_path, periodic_corpus, max_steps=20, eval_every=20))
    assert isinstance(trainer.dist, distributed.Single) and trainer.dist.is_main
    assert trainer.ddp_model is trainer.model  # no wrapper, no process group
    reference = StreamBatcher(trainer.train_ids, trainer.cfg.batch_size, trainer.cfg.seq_len)
    assert torch.equal(trainer.batcher.inputs, reference.inputs)
    result = trainer.run()
    assert result.step == 20 and not torch.distributed.is_initialized()
    assert RunFiles(trainer.cfg.run_dir).checkpoint("best").exists()


@pytest.mark.slow
def test_two_processes_train_exactly_like_one_with_twice_the_streams(tmp_path, even_corpus):
    ddp_dir = tmp_path / "ddp"
    done = torchrun("--corpus", str(even_corpus), "--run-dir", str(ddp_dir), "--max-steps", "30",
                    "--eval-every", "15", "--batch-size", str(STREAMS), *TINY)
    assert done.returncode == 0, done.stdout + done.stderr
    single = tiny_config(tmp_path / "single", even_corpus, batch_size=STREAMS * WORLD, max_steps=30,
                         eval_every=15, precision="fp32", dropout=0.0, seed=3)
    Trainer.start(single).run()

    # DDP averaged the two ranks' gradients: the same weights as one process reading all 16 streams
    ddp_weights = load_file(ddp_dir / "last.safetensors")
    single_weights = load_file(Path(single.run_dir) / "last.safetensors")
    assert ddp_weights.keys() == single_weights.keys()
    for name, tensor in ddp_weights.items():
        torch.testing.assert_close(tensor, single_weights[name], atol=1e-5, rtol=1e-4)

    # a valid checkpoint, a model that learned, and one log written by rank 0 only
    generator = Generator.load(ddp_dir)
    assert generator.checkpoint.step == 30
    assert generator.complete(["the quick brown "], max_chars=20, temperature=0.0)[0].text.startswith("fox")
    metrics = RunFiles(ddp_dir).read_metrics()
    train_steps = [m["step"] for m in metrics if m["kind"] == "train"]
    assert train_steps == [10, 20, 30]
    evals = [m["val_loss"] for m in metrics if m["kind"] == "eval"]
    assert len(evals) == 2 and evals[-1] < evals[0] < math.log(len(generator.vocab))
    assert sorted(p.name for p in ddp_dir.iterdir() if p.suffix == ".safetensors") == ["best.safetensors",
                                                                                      "last.safetensors"]


@pytest.mark.slow
def test_ranks_stop_together_on_a_time_budget(tmp_path, even_corpus):
    run_dir = tmp_path / "budget"
    done = torchrun("--corpus", str(even_corpus), "--run-dir", str(run_dir), "--max-minutes", "0.05",
                    "--eval-every", "100", "--batch-size", str(STREAMS), *TINY, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    # Both ranks exited 0: had one stopped earlier, the other would have hung in a collective (and
    # torchrun would have timed out). Rank 0 alone prints the summary line.
    steps = re.findall(r"finished at step (\d+)", done.stdout)
    assert len(steps) == 1, done.stdout
    # `last` is the final step; `best` may be an earlier evaluation's.
    assert Generator.load(run_dir / "last.safetensors").checkpoint.step == int(steps[0])
