"""posts: a slot recorded as missed or failed needs no generation (generation_id nullable)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

Before, such a row borrowed an unrelated generation (the NOT NULL column demanded one), so
`rnnbot db stats` showed a verse next to a slot that posted nothing. Existing rows are left as
they are. Downgrading deletes the rows without a generation (they record missed slots only).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts") as batch_op:  # SQLite rebuilds the table
        batch_op.alter_column("generation_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM posts WHERE generation_id IS NULL")
    with op.batch_alter_table("posts") as batch_op:
        batch_op.alter_column("generation_id", existing_type=sa.Integer(), nullable=False)
