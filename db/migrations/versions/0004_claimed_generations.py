"""generations: "claimed" status; a verse whose post failed is rejected, never a candidate again

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Before, a failed post left its generation "candidate", and the candidate buffer reloaded it at the
next start: a send that had timed out after reaching the channel was posted a second time. Now a
generation becomes "claimed" with its slot, then "posted" or "rejected". Existing rows are brought
in line: a candidate that any post holds becomes "claimed" (a post in progress) or "rejected".
Downgrading turns "claimed" back into "candidate" (the older code checks the posts instead).
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BEFORE = ("candidate", "posted", "rejected", "training-sample")
AFTER = ("candidate", "claimed", "posted", "rejected", "training-sample")


def _status_check(values: tuple[str, ...]) -> None:
    listed = ", ".join(f"'{v}'" for v in values)
    with op.batch_alter_table("generations") as batch_op:  # SQLite rebuilds the table
        batch_op.drop_constraint(op.f("ck_generations_status"), type_="check")
        batch_op.create_check_constraint(op.f("ck_generations_status"), f"status IN ({listed})")


def upgrade() -> None:
    _status_check(AFTER)
    op.execute("UPDATE generations SET status = 'claimed' WHERE status = 'candidate' AND id IN "
               "(SELECT generation_id FROM posts WHERE status = 'claimed')")
    op.execute("UPDATE generations SET status = 'rejected', reject_reason = 'its post failed' "
               "WHERE status = 'candidate' AND id IN (SELECT generation_id FROM posts WHERE status = 'failed')")


def downgrade() -> None:
    op.execute("UPDATE generations SET status = 'candidate' WHERE status = 'claimed'")
    _status_check(BEFORE)
