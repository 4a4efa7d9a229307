"""Channel posts. A post is first claimed for a (channel, slot) pair, then marked sent or failed;
the unique constraint on that pair makes the claim safe between processes.

A generation is claimed with its slot, from "candidate" to "claimed", and never becomes a
candidate again whatever the outcome: "posted" once sent, "rejected" when the post failed (a send
that timed out may still have reached the channel, so a failed verse is never offered again)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, selectinload

from db.base import utcnow
from db.cleaning import check_id, clean_text
from db.errors import InvalidInputError, NotFoundError, StateConflictError
from db.models import Chat, Generation, Post
from db.repositories._common import dialect_insert, get_or_raise


def _slot_utc(slot: datetime) -> datetime:
    if not isinstance(slot, datetime) or slot.tzinfo is None or slot.utcoffset() is None:
        raise InvalidInputError(f"slot must be a timezone-aware datetime, got {slot!r}")
    return slot.astimezone(UTC).replace(microsecond=0)


def claim_post_slot(session: Session, *, channel_id: int, slot: datetime, generation_id: int) -> Post | None:
    """Claim a schedule slot of a channel for a generation.

    Returns the new post (status "claimed"), or None when the slot is already taken, by this
    process or any other: INSERT ... ON CONFLICT DO NOTHING lets the database pick one winner.
    Slots are stored in UTC to the second: the same instant in another time zone is the same slot.
    The generation must be a candidate (StateConflictError, and nothing written, otherwise); it
    becomes "claimed" in the same transaction, so no other slot or process can take it.
    """
    # FOR UPDATE: a racing claim of the same generation waits and then sees it claimed (SQLite's
    # BEGIN IMMEDIATE serialises writers anyway).
    generation = session.get(Generation, check_id(generation_id, field="generation id"), with_for_update=True,
                             populate_existing=True)
    if generation is None:
        raise NotFoundError(f"no generation with id {generation_id}")
    if generation.status != "candidate":
        raise StateConflictError(f"generation {generation_id} is {generation.status}, not a candidate")
    post = _insert_slot(session, channel_id, slot, generation_id=generation_id, status="claimed")
    if post is not None:
        generation.status = "claimed"
        session.flush()
    return post


def _insert_slot(session: Session, channel_id: int, slot: datetime, **values) -> Post | None:
    check_id(channel_id, field="channel id")
    slot = _slot_utc(slot)
    now = utcnow()
    session.execute(dialect_insert(session, Chat).values(id=channel_id, type="channel", first_seen_at=now)
                    .on_conflict_do_nothing(index_elements=[Chat.id]))
    stmt = (dialect_insert(session, Post)
            .values(channel_id=channel_id, slot=slot, claimed_at=now, **values)
            .on_conflict_do_nothing(index_elements=[Post.channel_id, Post.slot])
            .returning(Post.id))
    post_id = session.execute(stmt).scalar_one_or_none()
    return None if post_id is None else session.get(Post, post_id)


def record_unposted_slot(session: Session, *, channel_id: int, slot: datetime, error: str) -> Post | None:
    """Take a slot as "failed" with no verse: it was missed, or no acceptable candidate came.

    Like claim_post_slot, None when the slot already has a row (another process took it).
    """
    return _insert_slot(session, channel_id, slot, generation_id=None, status="failed",
                        error=clean_text(error, field="error"))


def get_post(session: Session, *, post_id: int) -> Post | None:
    return session.get(Post, check_id(post_id, field="post id"))


def mark_post_sent(session: Session, *, post_id: int, message_id: int) -> Post:
    """The message is in the channel: record its id; the generation becomes "posted".

    Also over a "failed" row: a sender that could not reach the database in time may find its
    post given up by recovery, and the message id it brings is the truth."""
    post = get_or_raise(session, Post, post_id, "post")
    if post.status == "sent":
        raise InvalidInputError(f"post {post_id} was already sent as message {post.message_id}")
    post.status, post.message_id = "sent", check_id(message_id, field="message id")
    post.error, post.sent_at = None, utcnow()
    post.generation.status, post.generation.reject_reason = "posted", None
    session.flush()
    return post


def mark_post_failed(session: Session, *, post_id: int, error: str) -> Post:
    post = get_or_raise(session, Post, post_id, "post")
    if post.status == "sent":
        raise InvalidInputError(f"post {post_id} was already sent as message {post.message_id}")
    post.status, post.error = "failed", clean_text(error, field="error")
    _retire_generation(post)
    session.flush()
    return post


def _retire_generation(post: Post) -> None:
    """A failed post's verse is never offered again: the message may have arrived anyway."""
    if post.generation is not None and post.generation.status in ("candidate", "claimed"):
        post.generation.status = "rejected"
        post.generation.reject_reason = f"its post failed: {post.error}"


def record_post_outcome(session: Session, *, post_id: int, message_id: int | None = None,
                        error: str | None = None) -> Post:
    """A send's outcome: sent as `message_id`, or failed with `error`. Safe to apply twice (a write
    replayed after a restart): an outcome already recorded changes nothing, and a failure never
    overwrites a sent post."""
    post = get_or_raise(session, Post, post_id, "post")
    if post.status == "sent":
        if message_id is not None and post.message_id != message_id:
            raise InvalidInputError(f"post {post_id} was already sent as message {post.message_id}")
        return post
    if message_id is not None:
        return mark_post_sent(session, post_id=post_id, message_id=message_id)
    if post.status == "failed":
        return post
    return mark_post_failed(session, post_id=post_id, error=error or "failed")


def begin_post_send(session: Session, *, post_id: int) -> bool:
    """Record that sending is about to start (sets sent_at on a claimed post that has none).

    A compare-and-set: True for exactly one caller, so of two processes that both want to send a
    claimed post (its owner and one recovering it), only one does. While the status is still
    "claimed", sent_at is when the send began: a crash after this point may or may not have
    reached the channel.
    """
    stmt = (update(Post).where(Post.id == check_id(post_id, field="post id"), Post.status == "claimed",
                               Post.sent_at.is_(None))
            .values(sent_at=utcnow()).execution_options(synchronize_session=False))
    return session.execute(stmt).rowcount == 1


def fail_claimed_post(session: Session, *, post_id: int, error: str,
                      started_before: datetime | None = None) -> bool:
    """Mark a claimed post failed, as a compare-and-set: True for exactly one caller.

    Without `started_before` only a post whose send never began qualifies; with it, only one whose
    send began before that moment (a sender that has surely given up or died).
    """
    condition = [Post.id == check_id(post_id, field="post id"), Post.status == "claimed"]
    if started_before is None:
        condition.append(Post.sent_at.is_(None))
    else:
        _slot_utc(started_before)  # refuses naive datetimes
        condition.append(Post.sent_at < started_before)
    stmt = (update(Post).where(*condition).values(status="failed", error=clean_text(error, field="error"))
            .execution_options(synchronize_session=False))
    if session.execute(stmt).rowcount != 1:
        return False
    post = session.get(Post, post_id, populate_existing=True)
    _retire_generation(post)
    session.flush()
    return True


def latest_post_slot(session: Session, *, channel_id: int) -> datetime | None:
    """The latest slot with a post row of this channel, whatever its status."""
    stmt = select(Post.slot).where(Post.channel_id == check_id(channel_id, field="channel id"))
    return session.scalar(stmt.order_by(Post.slot.desc()).limit(1))


def last_sent_at(session: Session) -> datetime | None:
    """When the latest successful post (to any channel) reached Telegram; None before the first."""
    return session.scalar(select(func.max(Post.sent_at)).where(Post.status == "sent"))


def posted_texts(session: Session, *, limit: int = 10_000) -> list[str]:
    """The verses of the latest `limit` posts, to any channel, newest first: sent, being sent
    (claimed) or failed, since a failed send may have reached the channel all the same."""
    stmt = (select(Generation.text).join(Post, Post.generation_id == Generation.id)
            .order_by(Post.id.desc()).limit(limit))
    return list(session.scalars(stmt))


def unsent_posts(session: Session, *, channel_id: int | None = None) -> list[Post]:
    """Claimed but neither sent nor failed: what a crashed scheduler left behind, oldest slot first."""
    stmt = select(Post).where(Post.status == "claimed").options(selectinload(Post.generation))
    if channel_id is not None:
        stmt = stmt.where(Post.channel_id == channel_id)
    return list(session.scalars(stmt.order_by(Post.slot, Post.id)))


def recent_posts(session: Session, *, limit: int = 10, channel_id: int | None = None) -> list[Post]:
    """Latest slots first, whatever their status, with their generation loaded."""
    stmt = select(Post).options(selectinload(Post.generation))
    if channel_id is not None:
        stmt = stmt.where(Post.channel_id == channel_id)
    return list(session.scalars(stmt.order_by(Post.slot.desc(), Post.id.desc()).limit(limit)))


def was_posted(session: Session, *, text: str, channel_id: int | None = None) -> bool:
    """Whether exactly this text (after cleaning) was sent before, to this channel or any."""
    condition = [Post.status == "sent", Post.generation_id == Generation.id,
                 Generation.text == clean_text(text, field="text")]
    if channel_id is not None:
        condition.append(Post.channel_id == channel_id)
    return bool(session.scalar(select(exists().where(*condition))))
