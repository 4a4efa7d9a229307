"""The KJV model that ships in the package: it loads, its card is recorded, and it is the default
only when nothing else is configured."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from cli.main import main
from models import bundled
from models.bundled import bundled_checkpoint, default_model
from models.checkpoint import load_checkpoint
from models.errors import CheckpointError
from tests.helpers import run_cli


def card() -> dict:
    return json.loads(bundled_checkpoint().with_suffix(".json").read_text(encoding="utf-8"))["extra"]["model_card"]


def test_the_bundled_model_loads_and_its_sidecar_records_how_it_was_made():
    ckpt = load_checkpoint(bundled_checkpoint())
    assert ckpt.corpus == "kjv" and ckpt.config.cell == "lstm" and ckpt.config.hidden >= 256
    assert bundled_checkpoint().stat().st_size <= 20 * 1024 * 1024
    made = card()
    assert made["command"].startswith("rnnbot train ") and "--corpus kjv" in made["command"]
    assert made["eval"]["chars"] == 430_315  # the full validation tail
    # the card's figure is this checkpoint's own validation loss, and far from a weak model's 1.24+
    assert made["eval"]["nats_per_char"] == pytest.approx(ckpt.metrics["val_loss"], abs=1e-3)
    assert made["eval"]["nats_per_char"] <= 1.15  # the target the model was trained for
    assert ckpt.metrics["chars_seen"] == made["chars_seen"] > 0


@pytest.mark.slow
def test_eval_on_a_validation_slice_matches_the_recorded_figure():
    recorded = card()["eval_slice"]
    done = run_cli("eval", "--checkpoint", str(bundled_checkpoint()), "--corpus", "kjv",
                   "--max-chars", str(recorded["chars"]), timeout=300)
    assert done.returncode == 0, done.stderr
    nats = float(re.search(r"([\d.]+) nats/char", done.stdout).group(1))
    assert nats == pytest.approx(recorded["nats_per_char"], abs=2e-4)


def test_a_trained_run_in_the_run_directory_comes_before_the_bundled_model(tmp_path, trained_run):
    run_dir = tmp_path / "runs" / "kjv"
    assert default_model(run_dir) == (bundled_checkpoint().parent, "the bundled KJV model")
    shutil.copytree(trained_run, run_dir)
    assert default_model(run_dir) == (run_dir, f"the trained run in {run_dir}")


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_missing_or_corrupt_bundled_model_is_one_clear_line(tmp_path, monkeypatch, capsys, damage):
    weights = tmp_path / "models" / "weights" / "kjv" / "best.safetensors"
    weights.parent.mkdir(parents=True)
    if damage == "corrupt":
        weights.write_bytes(b"\x00" * 64)
    monkeypatch.setattr(bundled.resources, "files", lambda package: tmp_path / package)
    monkeypatch.chdir(tmp_path)  # no runs/kjv here
    if damage == "missing":
        with pytest.raises(CheckpointError, match="bundled model is missing"):
            bundled_checkpoint()
    assert main(["sample", "--length", "10"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("rnnbot: error")]
    assert len(err) == 1 and ("missing" in err[0] if damage == "missing" else "not a readable" in err[0])
