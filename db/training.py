"""Records a training run in the database: the trainer calls it as an observer."""

from __future__ import annotations

import logging
import math
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from db import repositories as repo
from db.session import Database, database_errors
from models.errors import RnnbotError

log = logging.getLogger(__name__)


def run_config(trainer) -> dict:
    """The run's config as stored: without the database URL, which may hold a password."""
    return {k: v for k, v in trainer.cfg.to_dict().items() if k != "database_url"}


class TrainingRecorder:
    """Stores a run's config and status, the metrics and samples of every evaluation, and at the end
    of a finished run registers <run_dir>/best.safetensors under the run directory's name, active.

        TrainingRecorder.attach(trainer)   # before trainer.run(); uses trainer.cfg.database_url

    Attaching migrates the database and creates the run row, so a wrong URL fails before training.
    Later database errors are logged and skipped: the run directory stays the record that counts.
    """

    def __init__(self, database_url: str | None = None):
        self.db = Database(database_url)
        with database_errors(self.db.url):
            self.db.upgrade()
        self.run_id: int | None = None

    @classmethod
    def attach(cls, trainer, database_url: str | None = None) -> TrainingRecorder:
        """The recorder observing this trainer, created (and its run row opened) if there is none yet."""
        for observer in trainer.observers:
            if isinstance(observer, cls):
                return observer
        recorder = cls(database_url or trainer.cfg.database_url)
        with database_errors(recorder.db.url):
            recorder.open_run(trainer)
        trainer.observers.append(recorder)
        return recorder

    def open_run(self, trainer) -> int:
        """A fresh trainer (step 0) starts a new run row; a resumed one continues the latest row of its
        run directory, dropping what was recorded after the step it resumes from."""
        run_dir = str(Path(trainer.cfg.run_dir).resolve())
        with self.db.transaction() as session:
            previous = repo.latest_training_run(session, run_dir=run_dir) if trainer.step > 0 else None
            if previous is not None:
                run = repo.resume_training_run(session, run_id=previous.id, step=trainer.step)
                run.config = run_config(trainer)  # resuming may change max_steps, eval_every, ...
            else:
                run = repo.start_training_run(session, run_dir=run_dir, config=run_config(trainer),
                                              corpus=trainer.corpus.name, step=trainer.step)
            self.run_id = run.id
        return self.run_id

    def on_eval(self, trainer, metrics: dict, samples: list[tuple[float, str]]) -> None:
        try:
            if self.run_id is None:
                self.open_run(trainer)
            with self.db.transaction() as session:
                repo.record_evaluation(session, run_id=self.run_id, step=metrics["step"],
                                       val_loss=metrics["val_loss"], val_bpc=metrics["val_bpc"],
                                       elapsed_s=metrics["elapsed_s"], epoch=metrics.get("epoch"),
                                       samples=samples, sample_chars=trainer.cfg.sample_chars)
        except (SQLAlchemyError, RnnbotError) as exc:
            log.warning("could not record step %s in the database: %s", metrics.get("step"), exc)

    def on_end(self, trainer, result) -> None:
        try:
            if self.run_id is None:
                self.open_run(trainer)
            with self.db.transaction() as session:
                model_id = self._register_best(session, trainer, result) if result.status == "finished" else None
                repo.finish_training_run(session, run_id=self.run_id, status=result.status, step=result.step,
                                         elapsed_s=result.elapsed_s, best_val_loss=result.best_val_loss,
                                         model_id=model_id)
        except (SQLAlchemyError, RnnbotError) as exc:
            log.warning("could not record the end of the run in the database: %s", exc)
        finally:
            self.db.close()  # returns pooled connections; the engine reconnects if used again

    def _register_best(self, session, trainer, result) -> int | None:
        best = Path(trainer.cfg.run_dir).resolve() / "best.safetensors"
        if not best.exists():
            return None
        bpc = None if result.best_val_loss is None else result.best_val_loss / math.log(2)
        model = repo.register_model(session, name=best.parent.name, path=str(best), config=run_config(trainer),
                                    corpus=trainer.corpus.name, val_bpc=bpc, activate=True)
        log.info("registered %s as model %r (active)", best, model.name)
        return model.id
