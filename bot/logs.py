"""Keeping the bot token and users' text out of the logs, whatever the log level.

Two layers: loggers that would print them are held at a level where they don't (`protect_logs`),
and every handler replaces the token and other secrets in whatever it emits, tracebacks included
(`redact_secrets`), as a last line of defence.
"""

from __future__ import annotations

import logging


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
    """Replaces secrets in every record a handler emits (messages and tracebacks)."""

    def __init__(self, *secrets: str):
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(s in message for s in self.secrets):
            record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


def redact_secrets(token: str, *others: str) -> None:
    """Every root handler hides the token (and its secret half on its own) and `others`."""
    secret = token.split(":", 1)[-1]  # the part after the bot id is what must stay private
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactSecrets(token, secret, *others))
