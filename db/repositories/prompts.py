"""Prompts users send and the completions served for them; retention."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from db.base import utcnow
from db.cleaning import DEFAULT_MAX_PROMPT_CHARS, check_choice, check_id, check_number, clean_prompt, clean_text
from db.models import NAME_LENGTH, PROMPT_OUTCOMES, Completion, Prompt
from db.repositories._common import SamplingParams, get_or_raise
from db.repositories.users import upsert_chat, upsert_user


def add_prompt(session: Session, *, user_id: int, text: str, chat_id: int | None = None,
               max_chars: int = DEFAULT_MAX_PROMPT_CHARS, outcome: str = "sent", request_id: str | None = None,
               created_at: datetime | None = None) -> Prompt:
    """Store a prompt (the user and chat rows must exist: upsert_user / upsert_chat first).

    chat_id is None for inline queries. Raises PromptTooLongError over `max_chars`."""
    prompt = Prompt(user_id=check_id(user_id, field="user id"), text=clean_prompt(text, max_chars=max_chars),
                    chat_id=None if chat_id is None else check_id(chat_id, field="chat id"),
                    outcome=check_choice(outcome, field="outcome", choices=PROMPT_OUTCOMES),
                    request_id=None if request_id is None else clean_text(request_id, field="request id",
                                                                          max_chars=32),
                    created_at=created_at or utcnow())
    session.add(prompt)
    session.flush()
    return prompt


@dataclass(frozen=True)
class Served:
    """One completion a user was sent."""

    text: str
    model_name: str
    params: SamplingParams


def record_exchange(session: Session, *, request_id: str, user_id: int, username: str | None, is_admin: bool,
                    chat: tuple[int, str, str | None] | None, prompt: str, outcome: str,
                    served: list[Served] = (), latency_ms: int | None = None, created_at: datetime | None = None,
                    max_chars: int = DEFAULT_MAX_PROMPT_CHARS) -> Prompt:
    """A whole request in one transaction, after the reply: the user (and chat: id, type, title), the
    prompt with its outcome, and the completions the user was sent.

    Once per `request_id`: a write retried after an outage returns the row it stored before."""
    done = session.scalar(select(Prompt).where(Prompt.request_id == request_id))
    if done is not None:
        return done
    upsert_user(session, user_id=user_id, username=username, is_admin=is_admin)
    if chat is not None:
        upsert_chat(session, chat_id=chat[0], type=chat[1], title=chat[2])
    row = add_prompt(session, user_id=user_id, text=prompt, chat_id=chat[0] if chat else None, max_chars=max_chars,
                     outcome=outcome, request_id=request_id, created_at=created_at)
    for completion in served:
        add_completion(session, prompt_id=row.id, text=completion.text, model_name=completion.model_name,
                       params=completion.params, latency_ms=latency_ms)
    return row


def add_completion(session: Session, *, prompt_id: int, text: str, model_name: str, params: SamplingParams,
                   model_id: int | None = None, latency_ms: int | None = None) -> Completion:
    """One completion served for a prompt (inline mode adds several to the same prompt)."""
    get_or_raise(session, Prompt, prompt_id, "prompt")
    if latency_ms is not None:
        latency_ms = round(check_number(latency_ms, field="latency_ms", minimum=0))
    completion = Completion(prompt_id=prompt_id, text=clean_text(text, field="completion"),
                            model_name=clean_text(model_name, field="model name", max_chars=NAME_LENGTH),
                            model_id=model_id, latency_ms=latency_ms, **params.columns())
    session.add(completion)
    session.flush()
    return completion


def user_prompts(session: Session, *, user_id: int, limit: int = 20) -> list[Prompt]:
    """A user's latest prompts, newest first, with their completions loaded."""
    stmt = (select(Prompt).where(Prompt.user_id == check_id(user_id, field="user id"))
            .options(selectinload(Prompt.completions)).order_by(Prompt.created_at.desc(), Prompt.id.desc())
            .limit(limit))
    return list(session.scalars(stmt))


def prune_older_than(session: Session, *, days: float, now: datetime | None = None) -> dict[str, int]:
    """Retention: delete prompts older than `days` days, with their completions. Returns rows deleted."""
    check_number(days, field="days", minimum=0)
    cutoff = (now or utcnow()) - timedelta(days=days)
    old = select(Prompt.id).where(Prompt.created_at < cutoff)
    return {
        "completions": session.execute(delete(Completion).where(Completion.prompt_id.in_(old))).rowcount,
        "prompts": session.execute(delete(Prompt).where(Prompt.created_at < cutoff)).rowcount,
    }
