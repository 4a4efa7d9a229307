"""initial schema: users, chats, prompts, completions, generations, posts, models, training runs

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime(timezone=True)


def status_check(table: str, column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    listed = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({listed})", name=op.f(f"ck_{table}_{column}"))


def sampled_columns(table: str) -> list:
    """The model and sampling parameters behind a completion or a generation."""
    return [
        sa.Column("model_name", sa.String(length=255), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("temperature", sa.Double(), nullable=False),
        sa.Column("max_chars", sa.Integer(), nullable=False),
        sa.Column("top_k", sa.Integer(), nullable=True),
        sa.Column("top_p", sa.Double(), nullable=True),
        sa.Column("seed", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f(f"fk_{table}_model_id_models"),
                                ondelete="SET NULL"),
    ]


def index(table: str, column: str) -> None:
    op.create_index(op.f(f"ix_{table}_{column}"), table, [column], unique=False)


def upgrade() -> None:
    op.create_table(
        "chats",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("first_seen_at", TIMESTAMP, nullable=False),
        status_check("chats", "type", ("private", "group", "supergroup", "channel")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chats")),
    )
    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("corpus", sa.Text(), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("val_bpc", sa.Double(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("name", "path", name=op.f("uq_models_name_path")),
    )
    # At most one active model per name, enforced by the database itself.
    op.create_index("uq_models_active_name", "models", ["name"], unique=True,
                    sqlite_where=sa.text("active"), postgresql_where=sa.text("active"))
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("username", sa.Text(), nullable=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("first_seen_at", TIMESTAMP, nullable=False),
        sa.Column("last_seen_at", TIMESTAMP, nullable=False),
        sa.Column("temperature", sa.Double(), nullable=True),
        sa.Column("length", sa.Integer(), nullable=True),
        sa.Column("model_name", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_table(
        "prompts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["chat_id"], ["chats.id"], name=op.f("fk_prompts_chat_id_chats"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_prompts_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompts")),
    )
    for column in ("chat_id", "created_at", "user_id"):
        index("prompts", column)
    op.create_table(
        "training_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_dir", sa.Text(), nullable=False),
        sa.Column("corpus", sa.Text(), nullable=True),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("best_val_loss", sa.Double(), nullable=True),
        sa.Column("elapsed_s", sa.Double(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        status_check("training_runs", "status", ("running", "finished", "paused", "interrupted")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_training_runs_model_id_models"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_runs")),
    )
    index("training_runs", "run_dir")
    op.create_table(
        "completions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prompt_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        *sampled_columns("completions"),
        sa.ForeignKeyConstraint(["prompt_id"], ["prompts.id"], name=op.f("fk_completions_prompt_id_prompts"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_completions")),
    )
    for column in ("model_id", "prompt_id"):
        index("completions", column)
    op.create_table(
        "generations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        sa.Column("training_run_id", sa.Integer(), nullable=True),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        *sampled_columns("generations"),
        status_check("generations", "status", ("candidate", "posted", "rejected", "training-sample")),
        sa.ForeignKeyConstraint(["training_run_id"], ["training_runs.id"],
                                name=op.f("fk_generations_training_run_id_training_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generations")),
    )
    for column in ("model_id", "status", "training_run_id"):
        index("generations", column)
    op.create_table(
        "training_evaluations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("val_loss", sa.Double(), nullable=False),
        sa.Column("val_bpc", sa.Double(), nullable=False),
        sa.Column("elapsed_s", sa.Double(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["training_runs.id"],
                                name=op.f("fk_training_evaluations_run_id_training_runs"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_evaluations")),
        sa.UniqueConstraint("run_id", "step", name=op.f("uq_training_evaluations_run_id_step")),
    )
    op.create_table(
        "posts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("slot", TIMESTAMP, nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("claimed_at", TIMESTAMP, nullable=False),
        sa.Column("sent_at", TIMESTAMP, nullable=True),
        status_check("posts", "status", ("claimed", "sent", "failed")),
        sa.ForeignKeyConstraint(["channel_id"], ["chats.id"], name=op.f("fk_posts_channel_id_chats")),
        sa.ForeignKeyConstraint(["generation_id"], ["generations.id"], name=op.f("fk_posts_generation_id_generations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_posts")),
        # One slot of one channel is posted at most once, whoever tries.
        sa.UniqueConstraint("channel_id", "slot", name=op.f("uq_posts_channel_id_slot")),
    )
    for column in ("generation_id", "status"):
        index("posts", column)


def downgrade() -> None:
    # Children first; dropping a table drops its indexes.
    for table in ("posts", "training_evaluations", "generations", "completions", "training_runs", "prompts",
                  "users", "models", "chats"):
        op.drop_table(table)
