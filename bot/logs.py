"""Log set-up every command shares: the format (LOG_FORMAT), the update or slot a line is about,
and keeping the bot token and users' text out of the logs and out of anything printed, whatever
the level and format.

Two layers keep secrets out: loggers that would print them are held at a level where they don't
(`protect_logs`), and every handler replaces the token and other secrets in whatever it emits,
tracebacks included (`redact_secrets`), as a last line of defence. Secrets are registered once
(`keep_secret`), and `redact(text)` hides them in any text shown outside the logs: the CLI's error
line, a traceback it prints, an exception message. Users' text is never passed to a logger: lines
name the update id (`log_context`), not the message.
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings

from db.settings import SOURCES

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What a line is about, for the JSON format: set while an update is handled or a slot is posted.
CONTEXT_FIELDS = ("update_id", "slot")
_context: contextvars.ContextVar[dict | None] = contextvars.ContextVar("rnnbot_log_context", default=None)


class LogSettings(BaseSettings):
    model_config = SOURCES

    log_format: Literal["text", "json"] = Field("text", description="json = one JSON object per line, "
                                                                      "for log collectors")


@contextmanager
def log_context(**fields) -> Iterator[None]:
    """Lines logged inside the block (in this task, and tasks it starts) carry these fields."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def set_log_context(**fields) -> None:
    """Like log_context, for the rest of the current task (an update's handlers run in one task)."""
    _context.set({**(_context.get() or {}), **fields})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, update_id/slot where there is one,
    and the traceback (as `exc`) when one was logged."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        context = _context.get() or {}  # handlers format in the logging call's own context
        for key in CONTEXT_FIELDS:  # log_context, or a call's extra={...}
            value = getattr(record, key, context.get(key))
            if value is not None:
                line[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return logging.Formatter(TEXT_FORMAT, datefmt="%H:%M:%S")


_secrets: set[str] = set()
MASK = "***"
MIN_SECRET_CHARS = 4


def keep_secret(*secrets: str) -> None:
    """Register secrets for `redact`; a bot token keeps its bot id (123:***), which says which bot.
    Very short ones are left out: masking every "ab" would garble the text and hide nothing."""
    for secret in secrets:
        secret = (secret or "").split(":", 1)[-1]
        if len(secret) >= MIN_SECRET_CHARS:
            _secrets.add(secret)


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ***."""
    for secret in sorted(_secrets, key=len, reverse=True):  # a longer secret may contain a shorter one
        text = text.replace(secret, MASK)
    return text


def protect_logs() -> None:
    """httpx logs every request URL at INFO, and a Bot API URL contains the token; at DEBUG, PTB's
    Bot logs its base URL (with the token) and every request's parameters, and its Application
    every update (both with users' text)."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    for name in ("telegram.Bot", "telegram.ext.ExtBot", "telegram.ext.Application"):
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.getEffectiveLevel(), logging.INFO))


class RedactSecrets(logging.Filter):
    """Replaces registered secrets in every record a handler emits (messages and tracebacks)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def redact_secrets(token: str, *others: str) -> None:
    """Register the token (its secret half) and `others`; every root handler hides them."""
    keep_secret(token, *others)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactSecrets) for f in handler.filters):
            handler.addFilter(RedactSecrets())
