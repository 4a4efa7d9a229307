"""Small helpers shared by the db tests (fixtures live in conftest.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from db import repositories as repo

SLOT = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
SAMPLING = repo.SamplingParams(temperature=0.8, max_chars=280)
CHANNEL = -1001234567890


def add_candidate(db, text="a candidate", model_name="kjv") -> int:
    with db.transaction() as session:
        return repo.add_generation(session, text=text, model_name=model_name, params=SAMPLING).id


def counts(db) -> dict[str, int]:
    with db.transaction() as session:
        return repo.table_counts(session)
