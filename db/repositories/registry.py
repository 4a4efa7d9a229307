"""The model registry: checkpoints the service may load, at most one active per name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.base import utcnow
from db.cleaning import check_id, check_number, clean_optional, clean_text
from db.models import NAME_LENGTH, RegisteredModel
from db.repositories._common import dialect_insert, get_or_raise


def register_model(session: Session, *, name: str, path: str, config: dict[str, Any], corpus: str | None = None,
                   val_bpc: float | None = None, activate: bool = False) -> RegisteredModel:
    """Add a checkpoint, or refresh the entry with the same name and path (e.g. a resumed run's best)."""
    values = {"corpus": clean_optional(corpus, field="corpus"), "config": dict(config),
              "val_bpc": None if val_bpc is None else float(check_number(val_bpc, field="val_bpc", minimum=0))}
    stmt = (dialect_insert(session, RegisteredModel)
            .values(name=clean_text(name, field="model name", max_chars=NAME_LENGTH),
                    path=clean_text(str(path), field="model path"), active=False, created_at=utcnow(), **values)
            .on_conflict_do_update(index_elements=[RegisteredModel.name, RegisteredModel.path], set_=values)
            .returning(RegisteredModel.id))
    model_id = session.execute(stmt).scalar_one()
    if activate:
        return activate_model(session, model_id=model_id)
    return session.get(RegisteredModel, model_id, populate_existing=True)


def activate_model(session: Session, *, model_id: int) -> RegisteredModel:
    """Make this checkpoint the active one of its name; the others of that name are deactivated first,
    in the same transaction (the partial unique index would refuse two active rows)."""
    model = get_or_raise(session, RegisteredModel, model_id, "model")
    session.execute(update(RegisteredModel)
                    .where(RegisteredModel.name == model.name, RegisteredModel.id != model.id, RegisteredModel.active)
                    .values(active=False))
    session.execute(update(RegisteredModel).where(RegisteredModel.id == model.id).values(active=True))
    session.refresh(model)
    return model


def deactivate_model(session: Session, *, model_id: int) -> RegisteredModel:
    model = get_or_raise(session, RegisteredModel, model_id, "model")
    model.active = False
    session.flush()
    return model


def get_model(session: Session, *, model_id: int) -> RegisteredModel | None:
    return session.get(RegisteredModel, check_id(model_id, field="model id"))


def active_model(session: Session, *, name: str | None = None) -> RegisteredModel | None:
    """The active checkpoint of `name`; without a name, the most recently registered active one."""
    stmt = select(RegisteredModel).where(RegisteredModel.active)
    if name is not None:
        stmt = stmt.where(RegisteredModel.name == name)
    return session.scalars(stmt.order_by(RegisteredModel.created_at.desc(), RegisteredModel.id.desc())
                           .limit(1)).first()


def list_models(session: Session, *, name: str | None = None) -> list[RegisteredModel]:
    """Newest first."""
    stmt = select(RegisteredModel)
    if name is not None:
        stmt = stmt.where(RegisteredModel.name == name)
    return list(session.scalars(stmt.order_by(RegisteredModel.created_at.desc(), RegisteredModel.id.desc())))
