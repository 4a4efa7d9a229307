"""Row counts for `rnnbot db stats`."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import target_metadata


def table_counts(session: Session) -> dict[str, int]:
    """Rows per table, in dependency order (parents first)."""
    return {table.name: session.scalar(select(func.count()).select_from(table))
            for table in target_metadata.sorted_tables}
