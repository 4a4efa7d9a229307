"""prompts: the outcome of each request (sent, busy, failed) and a request id that makes it stored once

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Before, a prompt was stored before generation, so a "busy" answer or a dropped database left a
prompt without a completion that looked like a success, and a completion was stored even when its
reply failed to send. Now each request is stored once, after its reply, with its outcome. Existing
rows become "sent". `request_id` lets a write retried after an outage find the row it wrote.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prompts") as batch_op:  # SQLite rebuilds the table
        batch_op.add_column(sa.Column("outcome", sa.String(length=16), server_default="sent", nullable=False))
        batch_op.add_column(sa.Column("request_id", sa.String(length=32), nullable=True))
        batch_op.create_check_constraint(op.f("ck_prompts_outcome"), "outcome IN ('sent', 'busy', 'failed')")
        batch_op.create_unique_constraint(op.f("uq_prompts_request_id"), ["request_id"])


def downgrade() -> None:
    with op.batch_alter_table("prompts") as batch_op:
        batch_op.drop_constraint(op.f("uq_prompts_request_id"), type_="unique")
        batch_op.drop_constraint(op.f("ck_prompts_outcome"), type_="check")
        batch_op.drop_column("request_id")
        batch_op.drop_column("outcome")
