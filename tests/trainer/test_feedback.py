"""What a training run tells its user: progress lines where no bar is seen, why nothing was
trained, and a closing line naming what slowed a run down."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import torch

from tests.helpers import tiny_config
from trainer.busy import HISTORY_NAME, SpeedHistory, config_key, cpu_hogs, cpu_snapshot
from trainer.progress import TaskProgress, TrainingLines, duration
from trainer.train import Trainer


def test_a_budget_too_small_to_train_leaves_no_checkpoint_and_says_why(tmp_path, periodic_corpus):
    # The final evaluation's first estimate (675 validation chars at 10,000 chars/s) outlasts 0.06 s.
    cfg = tiny_config(tmp_path, periodic_corpus, max_steps=None, max_minutes=0.001)
    trainer = Trainer.start(cfg)
    result = trainer.run()
    assert (result.step, result.val_loss) == (0, None)
    [note] = result.notes
    assert note.startswith("no training steps: the 0.1s budget (--max-minutes 0.001) was used up before the first step")
    assert f"for {len(trainer.val_ids):,} validation characters" in note and "--max-steps" in note
    # An untrained "best" checkpoint would pass for a model.
    assert not any(p.suffix in (".safetensors", ".pt") for p in (tmp_path / "run").iterdir())


def test_a_run_far_slower_than_its_configuration_usually_is_says_so(tmp_path, periodic_corpus):
    cfg = tiny_config(tmp_path, periodic_corpus, max_steps=1)
    trainer = Trainer.start(cfg)
    key = config_key(cfg, trainer.precision, torch.get_num_threads())
    (tmp_path / HISTORY_NAME).write_text(json.dumps({key: [40.0, 50.0, 60.0]}))
    note = trainer.speed_note(steps=100, train_s=10.0, wall_s=10.0, cpu_before=cpu_snapshot())
    assert note.startswith("slow run: 10.00 steps/s, 20% of the 50.00 steps/s this configuration usually "
                           "reaches here (median of 3 earlier runs)")
    assert SpeedHistory(tmp_path / HISTORY_NAME).load()[key] == [40.0, 50.0, 60.0, 10.0]  # remembered
    # At the usual speed, nothing to say.
    assert trainer.speed_note(steps=500, train_s=10.0, wall_s=10.0, cpu_before=cpu_snapshot()) is None
    # Too short to tell: start-up dominates.
    assert trainer.speed_note(steps=1, train_s=0.5, wall_s=0.5, cpu_before={}) is None


def test_processes_that_used_the_cpu_are_named(tmp_path):
    burn = ("import sys, time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
            "print('done', flush=True)\nsys.stdin.read()\n")
    before = cpu_snapshot()
    with subprocess.Popen([sys.executable, "-c", burn], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True) as busy:
        assert busy.stdout.readline() == "done\n"  # it has used its 0.3 s of CPU
        after = cpu_snapshot()
        busy.stdin.close()
    hogs = cpu_hogs(before, after, wall_s=1.0, exclude={os.getpid()}, top=1000)
    [(proc, share)] = [(p, s) for p, s in hogs if p.pid == busy.pid]
    assert share >= 0.29 and proc.name.startswith("python")  # it used 0.3 CPU-seconds in the "1 s" given
    assert os.getpid() not in {p.pid for p, _ in hogs}


def test_progress_lines_say_step_loss_speed_and_time_left():
    now = [0.0]
    out = io.StringIO()
    lines = TrainingLines(max_steps=1000, budget_s=None, chars_per_step=256, stream=out, every_s=30,
                          clock=lambda: now[0])
    now[0] = 0.5
    lines.step(1, 2.0, elapsed_s=0.5)  # the first step is reported at once
    for step in range(2, 101):
        now[0] = step * 0.5
        lines.step(step, 1.0, elapsed_s=now[0])
    assert out.getvalue().splitlines() == [
        "progress: step 1/1,000, loss 2.000, 512 chars/s, 0.5s elapsed, ETA 8m20s",
        "progress: step 61/1,000, loss 1.000, 512 chars/s, 30s elapsed, ETA 7m50s",
    ]


def test_a_task_off_a_terminal_announces_itself():
    out = io.StringIO()
    with TaskProgress(430_316, "evaluating", "chars", stream=out) as progress:
        progress.update(1000)  # within the first interval: no line
        progress.update(430_316)
    assert out.getvalue() == "evaluating: 430,316 chars…\n"
    assert [duration(s) for s in (0.25, 45, 190, 3720)] == ["0.2s", "45s", "3m10s", "1h02m"]
