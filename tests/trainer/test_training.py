import json
import math
from pathlib import Path

import pytest
import torch

from models.checkpoint import load_checkpoint
from models.errors import RnnbotError
from models.precision import bf16_supported, resolve_precision
from tests.helpers import tiny_config
from trainer.config import TrainConfig
from trainer.train import Trainer, get_lr


def test_loss_falls_far_below_uniform_on_periodic_text(trained_run):
    ckpt = load_checkpoint(trained_run)
    uniform = math.log(len(ckpt.vocab) - 1)
    assert uniform > 3.0
    assert ckpt.metrics["val_loss"] < 0.3
    evals = [json.loads(line) for line in (trained_run / "metrics.jsonl").read_text().splitlines()]
    val_losses = [r["val_loss"] for r in evals if r["kind"] == "eval"]
    assert val_losses == sorted(val_losses, reverse=True)  # it kept improving


def test_run_directory_holds_everything(trained_run):
    names = {p.name for p in trained_run.iterdir()}
    assert {"config.json", "best.safetensors", "best.json", "last.safetensors", "last.json", "last.resume.pt",
            "metrics.jsonl", "samples.jsonl", "samples.md", "loss.png"} <= names
    assert (trained_run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    samples = [json.loads(line) for line in (trained_run / "samples.jsonl").read_text().splitlines()]
    assert {s["temperature"] for s in samples} == {0.5, 0.8, 1.0}
    assert sorted({s["step"] for s in samples}) == [75, 150]  # kept at every evaluation
    late = [s["text"] for s in samples if s["step"] == 150 and s["temperature"] == 0.5][0]
    assert "quick brown fox" in late


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_every_cell_type_learns(tmp_path, periodic_corpus, cell):
    cfg = tiny_config(tmp_path, periodic_corpus, cell=cell, layers=2, max_steps=80, eval_every=80)
    first = Trainer.start(cfg)
    before = first.checkpoint()  # untrained
    result = first.run()
    assert load_checkpoint(cfg.run_dir).config.cell == cell
    assert result.val_loss < 0.5 * math.log(len(before.vocab) - 1)


def test_resume_is_exact(tmp_path, periodic_corpus):
    """N steps, stop, resume for N more == 2N straight (weights, optimizer, data position, RNG)."""
    common = dict(max_steps=40, eval_every=15, dropout=0.2, layers=2)
    straight = Trainer.start(tiny_config(tmp_path / "a", periodic_corpus, **common))
    straight.run()

    first = Trainer.start(tiny_config(tmp_path / "b", periodic_corpus, stop_after=23, **common))
    assert first.run().status == "paused"
    resumed = Trainer.resume(str(tmp_path / "b" / "run"), stop_after=None)
    assert resumed.step == 23
    result = resumed.run()
    assert result.status == "finished" and result.step == 40
    for name, tensor in straight.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], tensor, rtol=1e-5, atol=1e-6)
    assert resumed.best_val == pytest.approx(straight.best_val, rel=1e-5)
    # The log of the resumed run reads like one run: one eval line per evaluation step.
    evals = [json.loads(x)["step"] for x in (tmp_path / "b/run/metrics.jsonl").read_text().splitlines()
             if json.loads(x)["kind"] == "eval"]
    assert evals == [15, 30, 40]


def test_resume_rejects_changed_corpus_and_existing_run(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("abcabcabd\n" * 200, encoding="utf-8")
    cfg = tiny_config(tmp_path, corpus, max_steps=10, eval_every=10)
    Trainer.start(cfg).run()
    with pytest.raises(RnnbotError, match="already holds a run"):
        Trainer.start(cfg)
    corpus.write_text("something else entirely\n" * 200, encoding="utf-8")
    with pytest.raises(RnnbotError, match="has changed"):
        Trainer.resume(cfg.run_dir)


def test_time_budget_stops_the_run(tmp_path, periodic_corpus):
    cfg = tiny_config(tmp_path, periodic_corpus, max_steps=None, max_minutes=0.05, eval_every=10_000)
    result = Trainer.start(cfg).run()
    assert result.status == "finished"
    assert result.step > 0 and result.elapsed_s < 3.0 + 3.0 * 1  # budget 3 s, final eval included
    assert result.val_loss is not None


def test_learning_rate_schedule():
    cfg = TrainConfig(lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert get_lr(cfg, 0, 0.0) == pytest.approx(0.1)
    assert get_lr(cfg, 9, 0.0) == pytest.approx(1.0)
    assert get_lr(cfg, 50, 0.5) == pytest.approx(0.55)
    assert get_lr(cfg, 100, 1.0) == pytest.approx(0.1)
    step = cfg.with_changes(schedule="step")
    assert [get_lr(step, 100, p) for p in (0.1, 0.7, 0.9)] == pytest.approx([1.0, 0.3, 0.1])


def test_precision_choice():
    assert resolve_precision("fp32") == "fp32"
    assert resolve_precision("auto") == ("bf16" if bf16_supported() else "fp32")
    if not bf16_supported():
        with pytest.raises(RnnbotError, match="no native bf16"):
            resolve_precision("bf16")


@pytest.mark.parametrize("field, value, message", [
    ("grad_clip", float("nan"), "--grad-clip must be a finite number >= 0, got nan"),
    ("weight_decay", -1.0, "--weight-decay must be a finite number >= 0"),
    ("min_lr_ratio", float("inf"), r"--min-lr-ratio must be a finite number in \[0, 1\]"),
    ("val_fraction", 1.5, r"--val-fraction must be a number in \(0, 1\)"),
    ("warmup_steps", -3, "--warmup-steps must be at least 0"),
    ("stop_after", 0, "--stop-after must be at least 1"),
    ("threads", -2, "--threads must be at least 0"),
])
def test_numbers_out_of_range_are_refused(field, value, message):
    with pytest.raises(RnnbotError, match=message):
        TrainConfig(**{field: value})


def test_config_validation():
    with pytest.raises(RnnbotError, match="--seq-len must be at least 1"):
        TrainConfig(seq_len=0)
    with pytest.raises(RnnbotError, match="--cell must be one of"):
        TrainConfig(cell="mlp")


def test_resume_after_a_kill_that_cut_a_log_line_short(tmp_path, periodic_corpus):
    cfg = tiny_config(tmp_path, periodic_corpus, max_steps=20, eval_every=10, stop_after=10)
    assert Trainer.start(cfg).run().status == "paused"
    with open(Path(cfg.run_dir) / "metrics.jsonl", "a", encoding="utf-8") as log:
        log.write('{"kind": "train", "step": 11, "lo')  # the process died mid-write
    resumed = Trainer.resume(cfg.run_dir, stop_after=None)
    assert resumed.run().status == "finished"
    assert all(record["step"] <= 20 for record in resumed.files.read_metrics())
