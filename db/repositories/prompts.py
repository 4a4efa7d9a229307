"""Prompts users send and the completions served for them; retention."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from db.base import utcnow
from db.cleaning import DEFAULT_MAX_PROMPT_CHARS, check_id, check_number, clean_prompt, clean_text
from db.models import NAME_LENGTH, Completion, Prompt
from db.repositories._common import SamplingParams, get_or_raise


def add_prompt(session: Session, *, user_id: int, text: str, chat_id: int | None = None,
               max_chars: int = DEFAULT_MAX_PROMPT_CHARS) -> Prompt:
    """Store a prompt (the user and chat rows must exist: upsert_user / upsert_chat first).

    chat_id is None for inline queries. Raises PromptTooLongError over `max_chars`."""
    prompt = Prompt(user_id=check_id(user_id, field="user id"), text=clean_prompt(text, max_chars=max_chars),
                    chat_id=None if chat_id is None else check_id(chat_id, field="chat id"))
    session.add(prompt)
    session.flush()
    return prompt


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
