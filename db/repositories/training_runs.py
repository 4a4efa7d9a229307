"""Training runs: config and status, metrics at each evaluation, and the samples taken then
(stored as generations with status "training-sample" and the run's id and step)."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from db.base import utcnow
from db.cleaning import check_choice, check_number, clean_optional, clean_text
from db.models import NAME_LENGTH, RUN_STATUSES, Generation, TrainingEvaluation, TrainingRun
from db.repositories._common import SamplingParams, get_or_raise
from db.repositories.generations import add_generation


def start_training_run(session: Session, *, run_dir: str, config: dict[str, Any], corpus: str | None = None,
                       step: int = 0) -> TrainingRun:
    run = TrainingRun(run_dir=clean_text(str(run_dir), field="run_dir"), config=dict(config), status="running",
                      corpus=clean_optional(corpus, field="corpus"), step=step)
    session.add(run)
    session.flush()
    return run


def latest_training_run(session: Session, *, run_dir: str) -> TrainingRun | None:
    stmt = select(TrainingRun).where(TrainingRun.run_dir == str(run_dir)).order_by(TrainingRun.id.desc()).limit(1)
    return session.scalars(stmt).first()


def resume_training_run(session: Session, *, run_id: int, step: int) -> TrainingRun:
    """A run continues from `step`: what was recorded after it is dropped, as the trainer drops it
    from its files."""
    run = get_or_raise(session, TrainingRun, run_id, "training run")
    _drop_after(session, run.id, step)
    run.status, run.step, run.updated_at, run.finished_at = "running", step, utcnow(), None
    session.flush()
    return run


def _drop_after(session: Session, run_id: int, step: int) -> None:
    session.execute(delete(TrainingEvaluation).where(TrainingEvaluation.run_id == run_id,
                                                     TrainingEvaluation.step > step))
    session.execute(delete(Generation).where(Generation.training_run_id == run_id, Generation.step > step))


def record_evaluation(session: Session, *, run_id: int, step: int, val_loss: float, val_bpc: float,
                      elapsed_s: float, samples: list[tuple[float, str]], sample_chars: int,
                      epoch: int | None = None) -> TrainingEvaluation:
    """Metrics and samples of one evaluation; recording the same step again replaces it."""
    run = get_or_raise(session, TrainingRun, run_id, "training run")
    check_number(step, field="step", minimum=0, integer=True)
    _drop_after(session, run.id, step - 1)
    evaluation = TrainingEvaluation(run_id=run.id, step=step, val_loss=float(val_loss), val_bpc=float(val_bpc),
                                    elapsed_s=float(elapsed_s), epoch=epoch)
    session.add(evaluation)
    name = run_name(run)
    for temperature, text in samples:
        add_generation(session, text=text, model_name=name, status="training-sample", training_run_id=run.id,
                       step=step, params=SamplingParams(temperature=temperature, max_chars=sample_chars))
    run.status, run.step, run.elapsed_s, run.updated_at = "running", step, float(elapsed_s), utcnow()
    run.best_val_loss = val_loss if run.best_val_loss is None else min(run.best_val_loss, val_loss)
    session.flush()
    return evaluation


def finish_training_run(session: Session, *, run_id: int, status: str, step: int, elapsed_s: float,
                        best_val_loss: float | None = None, model_id: int | None = None) -> TrainingRun:
    run = get_or_raise(session, TrainingRun, run_id, "training run")
    run.status = check_choice(status, field="status", choices=RUN_STATUSES)
    run.step, run.elapsed_s, run.updated_at = step, float(elapsed_s), utcnow()
    if best_val_loss is not None:
        run.best_val_loss = best_val_loss
    if model_id is not None:
        run.model_id = model_id
    run.finished_at = utcnow() if status == "finished" else None
    session.flush()
    return run


def training_samples(session: Session, *, run_id: int) -> list[Generation]:
    stmt = select(Generation).where(Generation.training_run_id == run_id).order_by(Generation.step, Generation.id)
    return list(session.scalars(stmt))


def run_name(run: TrainingRun) -> str:
    """The name a run's samples and registered checkpoint go by: its directory's name."""
    return PurePath(run.run_dir).name[:NAME_LENGTH] or "run"
