"""Keeping the bot token and users' text out of the logs and out of anything printed, whatever the log level.

Two layers: loggers that would print them are held at a level where they don't (`protect_logs`),
and every handler replaces the token and other secrets in whatever it emits, tracebacks included
(`redact_secrets`), as a last line of defence. Secrets are registered once (`keep_secret`), and
`redact(text)` hides them in any text shown outside the logs: the CLI's error line, a traceback
it prints, an exception message.
"""

from __future__ import annotations

import logging

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
