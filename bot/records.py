"""A request's record as plain JSON, so that it can wait in the outbox (db/outbox.py) while the
database is down and be written, once, when it is back."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from db import repositories as repo

EXCHANGE = "exchange"  # the outbox's kind for a request's record


def exchange(*, request_id: str, user, chat, prompt: str, outcome: str, is_admin: bool, served: list[dict],
             latency_ms: int | None, received_at: datetime, max_prompt_chars: int) -> dict:
    """`served`: [{"text", "model", "temperature", "max_chars"}] for the completions the user got."""
    return {"request_id": request_id, "user_id": user.id, "username": user.username, "is_admin": is_admin,
            "chat": None if chat is None else [chat.id, chat.type, chat.title], "prompt": prompt,
            "outcome": outcome, "served": served, "latency_ms": latency_ms, "received_at": received_at.isoformat(),
            "max_prompt_chars": max_prompt_chars}


def apply_exchange(session: Session, data: dict) -> None:
    """The outbox's applier: the whole request in one transaction, once per request id."""
    served = [repo.Served(s["text"], s["model"], repo.SamplingParams(temperature=s["temperature"],
                                                                     max_chars=s["max_chars"]))
              for s in data["served"]]
    repo.record_exchange(session, request_id=data["request_id"], user_id=data["user_id"], username=data["username"],
                         is_admin=data["is_admin"], chat=tuple(data["chat"]) if data["chat"] else None,
                         prompt=data["prompt"], outcome=data["outcome"], served=served,
                         latency_ms=data["latency_ms"], created_at=datetime.fromisoformat(data["received_at"]),
                         max_chars=data["max_prompt_chars"])
