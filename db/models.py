"""The tables: users and chats, prompts and completions, generations, posts, the model registry,
training runs, service settings. Every schema change also needs a migration in db/migrations/versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from db.base import Base, utcnow

CHAT_TYPES = ("private", "group", "supergroup", "channel")
# A candidate becomes "claimed" with its post's slot and never a candidate again: "posted" once
# sent, "rejected" (with the reason) if the post failed, since a failed send may still have arrived.
GENERATION_STATUSES = ("candidate", "claimed", "posted", "rejected", "training-sample")
POST_STATUSES = ("claimed", "sent", "failed")
PROMPT_OUTCOMES = ("sent", "busy", "failed")
RUN_STATUSES = ("running", "finished", "paused", "interrupted")
NAME_LENGTH = 255


def one_of(column: str, values: tuple[str, ...]) -> CheckConstraint:
    """CHECK column IN (...), named ck_<table>_<column> by the naming convention."""
    listed = ", ".join(f"'{v}'" for v in values)
    return CheckConstraint(f"{column} IN ({listed})", name=column)


class User(Base):
    __tablename__ = "users"
    __repr_attrs__ = ("username", "is_admin")

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # Telegram user id
    username: Mapped[str | None]
    # Derived from the service configuration on every contact; no user-facing call changes it.
    is_admin: Mapped[bool] = mapped_column(default=False)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Per-user settings; NULL means "use the service default".
    temperature: Mapped[float | None]
    length: Mapped[int | None]
    model_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))


class Chat(Base):
    __tablename__ = "chats"
    __table_args__ = (one_of("type", CHAT_TYPES),)
    __repr_attrs__ = ("type", "title")

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # Telegram chat id
    type: Mapped[str] = mapped_column(String(16))
    title: Mapped[str | None]
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class Sampled:
    """What produced a text: the model and the sampling parameters."""

    model_name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"), index=True)
    temperature: Mapped[float]
    max_chars: Mapped[int]
    top_k: Mapped[int | None]
    top_p: Mapped[float | None]
    seed: Mapped[int | None] = mapped_column(BigInteger)


class Prompt(Base):
    """A request and what became of it: "sent" (its completions are what the user got), "busy" (the
    queue was full) or "failed" (the reply did not reach the user; no completion is stored)."""

    __tablename__ = "prompts"
    __table_args__ = (one_of("outcome", PROMPT_OUTCOMES),)
    __repr_attrs__ = ("user_id", "chat_id", "outcome", "text")

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"), index=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("chats.id", ondelete="SET NULL"),
                                                index=True)  # NULL: inline mode
    text: Mapped[str]
    outcome: Mapped[str] = mapped_column(String(16), default="sent", server_default="sent")
    # Set by the bot, so that a write retried after an outage (db/outbox.py) stores the request once.
    request_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    completions: Mapped[list[Completion]] = relationship(back_populates="prompt", order_by="Completion.id",
                                                         passive_deletes=True)


class Completion(Sampled, Base):
    __tablename__ = "completions"
    __repr_attrs__ = ("prompt_id", "model_name", "text")

    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[int] = mapped_column(ForeignKey("prompts.id", ondelete="CASCADE"), index=True)
    text: Mapped[str]
    latency_ms: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    prompt: Mapped[Prompt] = relationship(back_populates="completions")


class Generation(Sampled, Base):
    """Text sampled without a user: scheduler candidates and training samples."""

    __tablename__ = "generations"
    __table_args__ = (one_of("status", GENERATION_STATUSES),)
    __repr_attrs__ = ("status", "model_name", "text")

    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]
    status: Mapped[str] = mapped_column(String(16), index=True)
    reject_reason: Mapped[str | None]
    training_run_id: Mapped[int | None] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"),
                                                        index=True)
    step: Mapped[int | None]  # training step of a training sample
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Post(Base):
    """One schedule slot of one channel; the unique (channel, slot) pair is what stops double posts."""

    __tablename__ = "posts"
    __table_args__ = (UniqueConstraint("channel_id", "slot"), one_of("status", POST_STATUSES))
    __repr_attrs__ = ("channel_id", "slot", "status", "message_id")

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("chats.id"))
    slot: Mapped[datetime]
    # None only for a slot recorded as missed or failed without a verse (see record_unposted_slot).
    generation_id: Mapped[int | None] = mapped_column(ForeignKey("generations.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None]
    claimed_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]

    generation: Mapped[Generation | None] = relationship()


class RegisteredModel(Base):
    """A checkpoint the service may load. At most one active row per name (a partial unique index)."""

    __tablename__ = "models"
    __table_args__ = (
        UniqueConstraint("name", "path"),
        Index("uq_models_active_name", "name", unique=True,
              sqlite_where=text("active"), postgresql_where=text("active")),
    )
    __repr_attrs__ = ("name", "active", "val_bpc")

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    path: Mapped[str]
    corpus: Mapped[str | None]  # a name or a path
    config: Mapped[dict[str, Any]]
    val_bpc: Mapped[float | None]
    active: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TrainingRun(Base):
    __tablename__ = "training_runs"
    __table_args__ = (one_of("status", RUN_STATUSES),)
    __repr_attrs__ = ("run_dir", "status", "step")

    id: Mapped[int] = mapped_column(primary_key=True)
    run_dir: Mapped[str] = mapped_column(index=True)
    corpus: Mapped[str | None]  # a name or a path
    config: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16))
    step: Mapped[int] = mapped_column(default=0)
    best_val_loss: Mapped[float | None]
    elapsed_s: Mapped[float] = mapped_column(default=0.0)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    evaluations: Mapped[list[TrainingEvaluation]] = relationship(order_by="TrainingEvaluation.step",
                                                                 passive_deletes=True)


class TrainingEvaluation(Base):
    """Metrics at one evaluation; the samples taken then are generations with the same run and step."""

    __tablename__ = "training_evaluations"
    __table_args__ = (UniqueConstraint("run_id", "step"),)
    __repr_attrs__ = ("run_id", "step", "val_bpc")

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("training_runs.id", ondelete="CASCADE"))
    step: Mapped[int]
    val_loss: Mapped[float]
    val_bpc: Mapped[float]
    elapsed_s: Mapped[float]
    epoch: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ServiceSetting(Base):
    """Configuration an admin changed at runtime (the posting schedule, by /schedule). In the
    database so that every process and replica sees the same value and it survives restarts."""

    __tablename__ = "service_settings"
    __repr_attrs__ = ("value",)

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str]
    changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_by: Mapped[int | None] = mapped_column(BigInteger)  # the admin's Telegram user id


target_metadata = Base.metadata

