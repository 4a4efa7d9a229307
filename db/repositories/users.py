"""Users (with their settings) and chats, and /forget."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import delete, exists, select, update
from sqlalchemy.orm import Session

from db.base import utcnow
from db.cleaning import check_choice, check_id, check_number, clean_optional
from db.models import CHAT_TYPES, NAME_LENGTH, Chat, Completion, Post, Prompt, User
from db.repositories._common import dialect_insert, get_or_raise

KEEP = object()  # update_user_settings: leave this setting as it is (None resets it to the default)


def upsert_user(session: Session, *, user_id: int, username: str | None = None, is_admin: bool = False,
                now: datetime | None = None) -> User:
    """Record that a user was seen: creates the row or refreshes username, last seen and the admin flag.

    `is_admin` comes from the service configuration (e.g. user_id in ADMIN_IDS), never from the user.
    """
    now = now or utcnow()
    values = {"username": clean_optional(username, field="username"), "is_admin": bool(is_admin),
              "last_seen_at": now}
    stmt = dialect_insert(session, User).values(id=check_id(user_id, field="user id"), first_seen_at=now, **values)
    session.execute(stmt.on_conflict_do_update(index_elements=[User.id], set_=values))
    return session.get(User, user_id, populate_existing=True)


def get_user(session: Session, *, user_id: int) -> User | None:
    return session.get(User, check_id(user_id, field="user id"))


def update_user_settings(session: Session, *, user_id: int, temperature=KEEP, length=KEEP,
                         model_name=KEEP) -> User:
    """Change a user's own settings; pass None to go back to the service default."""
    user = get_or_raise(session, User, user_id, "user")
    if temperature is not KEEP:
        user.temperature = None if temperature is None else float(
            check_number(temperature, field="temperature", minimum=0))
    if length is not KEEP:
        user.length = None if length is None else check_number(length, field="length", minimum=1, integer=True)
    if model_name is not KEEP:
        user.model_name = clean_optional(model_name, field="model name", max_chars=NAME_LENGTH)
    session.flush()
    return user


def sync_admins(session: Session, *, admin_ids: Iterable[int]) -> None:
    """Make the admin flags match the configuration (run at start-up)."""
    ids = [check_id(i, field="admin id") for i in admin_ids]
    session.execute(update(User).where(User.id.in_(ids), ~User.is_admin).values(is_admin=True))
    session.execute(update(User).where(User.id.not_in(ids), User.is_admin).values(is_admin=False))


def upsert_chat(session: Session, *, chat_id: int, type: str, title: str | None = None) -> Chat:
    values = {"type": check_choice(type, field="chat type", choices=CHAT_TYPES),
              "title": clean_optional(title, field="chat title")}
    stmt = dialect_insert(session, Chat).values(id=check_id(chat_id, field="chat id"), first_seen_at=utcnow(),
                                                **values)
    session.execute(stmt.on_conflict_do_update(index_elements=[Chat.id], set_=values))
    return session.get(Chat, chat_id, populate_existing=True)


def get_chat(session: Session, *, chat_id: int) -> Chat | None:
    return session.get(Chat, check_id(chat_id, field="chat id"))


def forget_user(session: Session, *, user_id: int) -> dict[str, int]:
    """Delete everything stored for one user: prompts, completions, settings, the user row and their
    private chat with the bot. Group chats and channels stay. Returns the rows deleted per table."""
    check_id(user_id, field="user id")
    their_prompts = select(Prompt.id).where(Prompt.user_id == user_id)
    deleted = {
        "completions": session.execute(delete(Completion).where(Completion.prompt_id.in_(their_prompts))).rowcount,
        "prompts": session.execute(delete(Prompt).where(Prompt.user_id == user_id)).rowcount,
        # A private chat's id is the user's id; one that somehow received posts is not theirs alone.
        "chats": session.execute(delete(Chat).where(
            Chat.id == user_id, Chat.type == "private",
            ~exists().where(Post.channel_id == Chat.id))).rowcount,
        "users": session.execute(delete(User).where(User.id == user_id)).rowcount,
    }
    return deleted
