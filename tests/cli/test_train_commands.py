"""The `rnnbot` command line, run as a real subprocess."""

import json
import re

import pytest
import torch
from safetensors.torch import save_file

from tests.helpers import ROOT, assert_clean_error, run_cli


def test_prepare_prints_what_the_readme_shows(tmp_path):
    out = tmp_path / "kjv.txt"
    proc = run_cli("prepare", "--corpus", "kjv", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "kjv: 4,303,159 characters, 31,103 lines, 75 distinct characters (+1 unknown symbol)"
    assert lines[-1] == f"written to {out}"
    assert out.read_text(encoding="utf-8").startswith("1:1 In the beginning God created")
    # The README's tour shows the output under the command, as "#   " lines.
    tour = (ROOT / "README.md").read_text(encoding="utf-8").split("rnnbot prepare --corpus kjv\n", 1)[1]
    shown = [line.removeprefix("#   ") for line in tour.splitlines()[:2]]
    assert shown == lines[:2]


def test_train_sample_eval_round_trip(tmp_path, periodic_corpus):
    run = tmp_path / "run"
    proc = run_cli("train", "--corpus", str(periodic_corpus), "--run-dir", str(run), "--hidden", "32",
                   "--layers", "1", "--batch-size", "8", "--seq-len", "32", "--max-steps", "120",
                   "--eval-every", "60", "--lr", "0.01", "--seed", "5")
    assert proc.returncode == 0, proc.stderr
    assert "finished at step 120" in proc.stdout
    assert json.loads((run / "config.json").read_text())["hidden"] == 32
    # stdout is a pipe here, where tqdm's bar is not drawn: plain progress lines instead.
    assert re.search(r"^progress: step 1/120, loss \d+\.\d{3}, [\d,]+ chars/s, [\d.]+s elapsed, ETA \S+$",
                     proc.stdout, re.MULTILINE), proc.stdout
    assert "progress: step 120: evaluating on 674 validation characters…" in proc.stdout

    proc = run_cli("sample", "--checkpoint", str(run), "--prime", "the lazy", "--temperature", "0.3",
                   "--length", "100", "--num", "3", "--seed", "1", "--stop-at", "newline")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and all(line.startswith("the lazy") for line in lines)

    proc = run_cli("sample", "--checkpoint", str(run / "last.safetensors"), "--prime", "Ωthe", "--length", "5")
    assert proc.returncode == 0
    assert "never seen 'Ω'" in proc.stderr

    proc = run_cli("eval", "--checkpoint", str(run))
    assert proc.returncode == 0, proc.stderr
    assert "nats/char" in proc.stdout and "bits/char" in proc.stdout
    assert "evaluating: 674 chars…" in proc.stderr  # said at once, then every 30 s

    # resume: extend the run; architecture changes are refused
    proc = run_cli("train", "--resume", str(run), "--max-steps", "130")
    assert proc.returncode == 0, proc.stderr
    assert "finished at step 130" in proc.stdout
    assert_clean_error(run_cli("train", "--resume", str(run), "--hidden", "64"), "cannot change --hidden")


def test_a_budget_too_small_to_train_is_an_error_that_says_why(tmp_path, periodic_corpus):
    run = tmp_path / "run"
    proc = run_cli("train", "--corpus", str(periodic_corpus), "--run-dir", str(run), "--hidden", "32",
                   "--max-minutes", "0.001")
    assert proc.returncode == 2
    error = proc.stderr.splitlines()[-1]
    assert error.startswith("rnnbot: error: no training steps: the 0.1s budget (--max-minutes 0.001) was used up")
    assert "Give --max-minutes 2 or more" in error
    assert not (run / "best.safetensors").exists()  # `make run` must not take it for a model


@pytest.mark.parametrize("args, fragments", [
    (["sample", "--checkpoint", "/nonexistent/run"], ["no such checkpoint"]),
    (["eval", "--checkpoint", "/nonexistent/x.safetensors"], ["no such checkpoint"]),
    (["prepare", "--corpus", "shakespeare"], ["unknown corpus 'shakespeare'"]),
    (["train", "--corpus", "nope.txt", "--max-steps", "1"], ["unknown corpus 'nope.txt'"]),
    (["train", "--resume", "/nonexistent/run"], ["no resume state"]),
])
def test_errors_are_one_clear_line(args, fragments):
    assert_clean_error(run_cli(*args), *fragments)


@pytest.mark.parametrize("flags, fragments", [
    (["--hidden", "100000"], ["--hidden 100000", "GB of memory"]),  # checked before anything is allocated
    (["--batch-size", "100000000", "--seq-len", "100000"], ["GB of memory"]),
    (["--grad-clip", "nan"], ["--grad-clip must be a finite number >= 0, got nan"]),  # the others: test_training.py
])
def test_bad_training_options_are_one_clear_line(tmp_path, periodic_corpus, flags, fragments):
    proc = run_cli("train", "--corpus", str(periodic_corpus), "--run-dir", str(tmp_path / "run"), "--max-steps", "1",
                   *flags)
    assert_clean_error(proc, *fragments)
    assert not (tmp_path / "run").exists()  # nothing was started


def test_a_run_dir_that_cannot_be_written_is_one_clear_line(tmp_path, periodic_corpus):
    (tmp_path / "a-file").write_text("not a directory")
    proc = run_cli("train", "--corpus", str(periodic_corpus), "--run-dir", str(tmp_path / "a-file" / "run"),
                   "--max-steps", "1")
    assert_clean_error(proc, "--run-dir", "cannot be written")


@pytest.mark.parametrize("args, fragment", [
    (["--temperature", "nan"], "temperature must be a finite number"),
    (["--temperature", "-0.5"], "temperature must be a finite number"),
    (["--length", "0"], "length must be a positive integer"),
    (["--num", "0"], "--num must be from 1 to 1024"),
    (["--num", "100000000"], "--num must be from 1 to 1024"),
    (["--length", "10000000"], "--length must be at most 100,000"),
])
def test_bad_sampling_arguments(trained_run, args, fragment):
    assert_clean_error(run_cli("sample", "--checkpoint", str(trained_run), *args), fragment)


def test_sample_precision_choice(trained_run):
    from models.precision import bf16_supported

    args = ("sample", "--checkpoint", str(trained_run), "--prime", "the", "--length", "40", "--num", "2", "--seed", "3")
    first, again = run_cli(*args, "--precision", "int8"), run_cli(*args, "--precision", "int8")
    assert first.returncode == 0, first.stderr
    assert first.stdout == again.stdout  # same seed, same path, same text
    if not bf16_supported():
        assert_clean_error(run_cli(*args, "--precision", "bf16"), "no native bf16")


def test_corrupt_checkpoint_and_bad_env(tmp_path):
    bad = tmp_path / "best.safetensors"
    bad.write_bytes(b"garbage")
    assert_clean_error(run_cli("sample", "--checkpoint", str(tmp_path)), "not a readable safetensors file")
    proc = run_cli("train", "--max-steps", "1", env={"RNNBOT_HIDDEN": "lots"})
    assert_clean_error(proc, "RNNBOT_HIDDEN='lots' is not a valid int")
    # Another program's safetensors file: its header says {"format": "pt"}, not JSON.
    save_file({"w": torch.zeros(2)}, str(bad), metadata={"format": "pt"})
    for command in ("sample", "eval"):
        assert_clean_error(run_cli(command, "--checkpoint", str(bad)), "not an rnnbot checkpoint")


def test_flags_doc_matches_the_flags():
    # docs/flags.md is generated (python -m cli.flags_doc); regenerate it when a flag changes.
    from cli.flags_doc import render_markdown
    from tests.helpers import ROOT

    assert (ROOT / "docs" / "flags.md").read_text(encoding="utf-8") == render_markdown()


def test_every_train_flag_is_in_the_help_and_model_is_an_alias_of_cell():
    from dataclasses import fields

    from cli.main import build_parser
    from cli.options import flag
    from trainer.config import TrainConfig

    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    option_strings = {s for action in train._actions for s in action.option_strings}
    assert {flag(f.name) for f in fields(TrainConfig)} <= option_strings
    args = parser.parse_args(["train", "--model", "gru"])
    assert args.cell == "gru"
