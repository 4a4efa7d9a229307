"""Fine-tuning (--init-from): a new run from trained weights on a new corpus, with real tiny training."""

from __future__ import annotations

import json
import logging
import shutil

import pytest
import torch

from models.checkpoint import load_checkpoint
from models.errors import RnnbotError
from tests.helpers import PERIODIC, run_cli, tiny_config
from trainer.train import Trainer

# The new corpus: the old text plus characters the periodic corpus never had.
NEW_TEXT = (PERIODIC * 40).replace("fox", "föx").replace("dog.", "dog!") + "ü\n"


@pytest.fixture
def new_corpus(tmp_path):
    path = tmp_path / "new.txt"
    path.write_text(NEW_TEXT, encoding="utf-8")
    return path


def test_starts_from_the_weights_with_a_fresh_optimizer_and_the_old_vocabulary(tmp_path, trained_run, new_corpus,
                                                                                caplog):
    caplog.set_level(logging.INFO, logger="trainer.finetune")
    old = load_checkpoint(trained_run)
    # the flags' architecture (tiny_config: 1x32) gives way to the checkpoint's (2x48)
    cfg = tiny_config(tmp_path, new_corpus, run_dir=str(tmp_path / "tuned"), init_from=str(trained_run),
                      max_steps=20, eval_every=20, warmup_steps=15)
    trainer = Trainer.start(cfg)
    assert (trainer.cfg.layers, trainer.cfg.hidden) == (old.config.layers, old.config.hidden)
    assert trainer.vocab == old.vocab  # reused, not rebuilt from the new corpus
    assert all(torch.equal(trainer.model.state_dict()[k], v) for k, v in old.state_dict.items())
    assert trainer.step == 0 and not trainer.optimizer.state  # nothing carried over but the weights
    # what the vocabulary lacks: reported with counts, read as the unknown symbol (id 0)
    [report] = [r.getMessage() for r in caplog.records if "lacks" in r.getMessage()]
    assert "'ö' ×40" in report and "'!' ×40" in report and "'ü' ×1" in report
    assert (trainer.train_ids == 0).sum() + (trainer.val_ids == 0).sum() == 81

    result = trainer.run()
    assert result.status == "finished" and result.step == 20
    tuned = load_checkpoint(tmp_path / "tuned")
    assert tuned.vocab == old.vocab and tuned.corpus == trainer.corpus.name != old.corpus
    assert tuned.extra["train_config"]["init_from"] == str(trained_run)
    assert not torch.equal(tuned.state_dict["head.weight"], old.state_dict["head.weight"])  # it trained
    # steps and the warm-up started again at 0: at step 10 of 15 warm-up steps the rate is still rising
    first = json.loads((tmp_path / "tuned" / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 10 and first["lr"] == pytest.approx(cfg.lr * 10 / 15)
    assert (trained_run / "best.safetensors").stat().st_size  # the source run is untouched
    assert load_checkpoint(trained_run).step == old.step


def test_refusals(tmp_path, trained_run, new_corpus):
    cfg = tiny_config(tmp_path, new_corpus, init_from=str(trained_run))
    with pytest.raises(RnnbotError, match=r"leave out --hidden 32 \(the checkpoint has 48\)"):
        Trainer.start(cfg, explicit={"hidden"})  # the user asked for a different size
    copied = tmp_path / "copied"
    copied.mkdir()
    shutil.copy(trained_run / "best.safetensors", copied)
    with pytest.raises(RnnbotError, match="give it a new --run-dir"):  # it would overwrite its own start
        Trainer.start(cfg.with_changes(init_from=str(copied), run_dir=str(copied)))
    with pytest.raises(RnnbotError, match="no such checkpoint"):
        Trainer.start(cfg.with_changes(init_from=str(tmp_path / "missing")))


@pytest.mark.slow
def test_the_command_line(tmp_path, trained_run, new_corpus):
    proc = run_cli("train", "--init-from", str(trained_run), "--corpus", str(new_corpus), "--run-dir",
                   str(tmp_path / "tuned"), "--max-steps", "4", "--eval-every", "4", "--seq-len", "16",
                   "--batch-size", "4", "--sample-chars", "10", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "'ö' ×40" in proc.stderr and "read as the unknown symbol" in proc.stderr
    assert "finished at step 4" in proc.stdout
    proc = run_cli("train", "--init-from", str(trained_run), "--corpus", str(new_corpus), "--run-dir",
                   str(tmp_path / "other"), "--hidden", "8", "--max-steps", "1", cwd=tmp_path)
    assert proc.returncode == 2 and "fine-tuning keeps the checkpoint's architecture" in proc.stderr
