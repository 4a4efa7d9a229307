"""The training recorder, driven by a real (tiny) training run."""

from __future__ import annotations

import math
from pathlib import Path

from sqlalchemy import select

from db import repositories as repo
from db.models import TrainingRun
from db.session import Database
from db.training import TrainingRecorder
from tests.helpers import tiny_config


def test_recorder_follows_a_paused_and_resumed_run(tmp_path, periodic_corpus, database_url):
    from trainer.train import Trainer

    cfg = tiny_config(tmp_path, periodic_corpus, max_steps=40, eval_every=20, stop_after=25, sample_chars=20,
                      database_url=database_url)
    trainer = Trainer.start(cfg)
    recorder = TrainingRecorder.attach(trainer)
    assert TrainingRecorder.attach(trainer) is recorder  # attaching twice keeps one observer
    assert trainer.run().status == "paused"

    with Database(database_url) as db, db.transaction() as session:
        [run] = session.scalars(select(TrainingRun)).all()
        assert (run.status, run.step, run.corpus) == ("paused", 25, str(periodic_corpus))
        assert run.config["hidden"] == 32 and "database_url" not in run.config
        assert [e.step for e in run.evaluations] == [20]
        assert repo.list_models(session) == []

    resumed = Trainer.resume(cfg.run_dir)
    TrainingRecorder.attach(resumed, database_url)
    result = resumed.run()
    assert result.status == "finished" and result.step == 40

    with Database(database_url) as db, db.transaction() as session:
        [run] = session.scalars(select(TrainingRun)).all()  # the same row continued
        assert (run.status, run.step, run.finished_at is not None) == ("finished", 40, True)
        assert run.best_val_loss == result.best_val_loss
        evaluations = run.evaluations
        assert [e.step for e in evaluations] == [20, 40]
        assert all(math.isclose(e.val_bpc, e.val_loss / math.log(2)) for e in evaluations)
        samples = repo.training_samples(session, run_id=run.id)
        assert [(s.step, s.temperature) for s in samples] == [(20, 0.5), (20, 0.8), (20, 1.0),
                                                              (40, 0.5), (40, 0.8), (40, 1.0)]
        assert {(s.status, s.model_name, s.max_chars) for s in samples} == {("training-sample", "run", 20)}
        assert all(len(s.text) <= 20 for s in samples)

        model = repo.active_model(session, name="run")
        assert model is not None and run.model_id == model.id
        assert model.path == str(Path(cfg.run_dir).resolve() / "best.safetensors") and Path(model.path).exists()
        assert math.isclose(model.val_bpc, result.best_val_loss / math.log(2))
        assert model.corpus == str(periodic_corpus)
