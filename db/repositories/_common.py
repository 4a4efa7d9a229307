"""Pieces the repositories share: dialect-specific INSERT (for ON CONFLICT) and sampling parameters."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.cleaning import check_id, check_number
from db.errors import InvalidInputError, NotFoundError


def dialect_insert(session: Session, entity):
    """INSERT with .on_conflict_do_nothing/.on_conflict_do_update: both dialects spell it the same."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return insert(entity)


def get_or_raise(session: Session, entity, row_id: int, what: str):
    row = session.get(entity, check_id(row_id, field=f"{what} id"))
    if row is None:
        raise NotFoundError(f"no {what} with id {row_id}")
    return row


@dataclass(frozen=True)
class SamplingParams:
    """How a text was sampled; stored beside every completion and generation."""

    temperature: float
    max_chars: int
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        check_number(self.temperature, field="temperature", minimum=0)
        check_number(self.max_chars, field="max_chars", minimum=1, integer=True)
        if self.top_k is not None:
            check_number(self.top_k, field="top_k", minimum=1, integer=True)
        if self.top_p is not None:
            check_number(self.top_p, field="top_p", minimum=0, maximum=1)
            if self.top_p == 0:
                raise InvalidInputError("top_p must be in (0, 1], got 0")
        if self.seed is not None:
            check_id(self.seed, field="seed")

    def columns(self) -> dict:
        return {"temperature": float(self.temperature), "max_chars": self.max_chars, "top_k": self.top_k,
                "top_p": self.top_p, "seed": self.seed}
