"""Texts sampled without a user: scheduler candidates (then posted or rejected) and training samples."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.cleaning import check_choice, check_id, clean_text
from db.errors import NotFoundError
from db.models import GENERATION_STATUSES, NAME_LENGTH, Generation
from db.repositories._common import SamplingParams


def add_generation(session: Session, *, text: str, model_name: str, params: SamplingParams,
                   model_id: int | None = None, status: str = "candidate", training_run_id: int | None = None,
                   step: int | None = None) -> Generation:
    generation = Generation(
        text=clean_text(text, field="generation"),
        model_name=clean_text(model_name, field="model name", max_chars=NAME_LENGTH),
        model_id=model_id, status=check_choice(status, field="status", choices=GENERATION_STATUSES),
        training_run_id=training_run_id, step=step, **params.columns())
    session.add(generation)
    session.flush()
    return generation


def get_generation(session: Session, *, generation_id: int) -> Generation | None:
    return session.get(Generation, check_id(generation_id, field="generation id"))


def candidate_generations(session: Session, *, limit: int = 20, model_name: str | None = None) -> list[Generation]:
    """Candidates not yet posted or rejected, oldest first."""
    stmt = select(Generation).where(Generation.status == "candidate")
    if model_name is not None:
        stmt = stmt.where(Generation.model_name == model_name)
    return list(session.scalars(stmt.order_by(Generation.id).limit(limit)))


def reject_generation(session: Session, *, generation_id: int, reason: str) -> Generation:
    """Reject a candidate with the reason. A generation a post has claimed keeps its status (another
    process may be posting it), and so does one that is already rejected.

    FOR UPDATE: a claim of the same generation in another transaction is waited for and then seen
    (PostgreSQL would otherwise overwrite the committed claim with "rejected")."""
    generation = session.get(Generation, check_id(generation_id, field="generation id"), with_for_update=True,
                             populate_existing=True)
    if generation is None:
        raise NotFoundError(f"no generation with id {generation_id}")
    if generation.status != "candidate":
        return generation
    generation.status = "rejected"
    generation.reject_reason = clean_text(reason, field="reason")
    session.flush()
    return generation
