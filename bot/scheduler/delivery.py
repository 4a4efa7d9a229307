"""Sending one post to Telegram: retry what is safe to retry, give up cleanly on the rest.

- RetryAfter (429, flood control): wait as long as Telegram says, then retry.
- Network errors where the request surely never reached Telegram (connection refused, connect or
  pool timeout) or Telegram answered with an error status (502 ...): retry with exponential
  backoff.
- A timeout or dropped connection *after* the request was sent: Telegram may have posted it, and
  there is no way to ask. Resending could post it twice, so this gives up (the caller records the
  slot as failed and tells the admins).
- Forbidden (bot not admin in the channel), BadRequest (chat not found ...), InvalidToken: retrying
  cannot help; the caller records them and tells the admins.
- All retries stop after `retry_window_s`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import httpx
from telegram import Bot, Message
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 60.0
# httpx errors raised before a request could have reached the server.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.WriteError, httpx.WriteTimeout)


class DeliveryFailed(Exception):
    """The post did not go out (or may not have); `permanent` when configuration must change first."""

    def __init__(self, reason: str, *, permanent: bool = False, uncertain: bool = False):
        super().__init__(reason)
        self.reason, self.permanent, self.uncertain = reason, permanent, uncertain


def retry_after_seconds(error: RetryAfter) -> float:
    value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def surely_not_sent(error: NetworkError) -> bool:
    """Whether Telegram cannot have acted on the request that raised `error`."""
    cause = error.__cause__
    if isinstance(cause, httpx.HTTPError):
        return isinstance(cause, NOT_SENT)
    # No transport error: Telegram (or a proxy) answered with an error status, or PTB's pool was
    # full ("Request was *not* sent"); either way nothing was posted.
    return not isinstance(error, TimedOut) or "not* sent" in error.message


async def send_post(bot: Bot, chat_id: int | str, text: str, *, retry_window_s: float, send_timeout_s: float = 20.0,
                    first_backoff_s: float = FIRST_BACKOFF_S) -> Message:
    """Send `text` to `chat_id`, retrying as described above; raises DeliveryFailed.

    Each attempt may take up to about 4 x `send_timeout_s` (pool, connect, write, read)."""
    timeouts = {name: send_timeout_s for name in ("connect_timeout", "write_timeout", "read_timeout", "pool_timeout")}
    started, attempt, backoff = time.monotonic(), 0, first_backoff_s
    while True:
        attempt += 1
        try:
            return await bot.send_message(chat_id=chat_id, text=text, **timeouts)
        except RetryAfter as exc:
            wait, last = retry_after_seconds(exc), f"flood control ({exc.message})"
        except (Forbidden, InvalidToken, ChatMigrated, BadRequest) as exc:  # BadRequest before NetworkError
            raise DeliveryFailed(f"{type(exc).__name__}: {exc.message}", permanent=True) from None
        except NetworkError as exc:
            if not surely_not_sent(exc):
                raise DeliveryFailed(f"{exc.message or type(exc).__name__} after the request was sent: it may "
                                     "have been posted, so it is not resent", uncertain=True) from None
            wait, last = backoff, f"network error ({exc.message})"
            backoff = min(backoff * 2, MAX_BACKOFF_S)
        except TelegramError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc.message}", permanent=True) from None
        elapsed = time.monotonic() - started
        if elapsed + wait > retry_window_s:
            raise DeliveryFailed(f"gave up after {attempt} attempts in {elapsed:.0f}s: {last}")
        log.warning("posting to %s: %s; retrying in %.1fs (attempt %d)", chat_id, last, wait, attempt)
        await asyncio.sleep(wait)
