"""Webhook delivery, as Telegram does it once setWebhook is called: each pending update is POSTed as
JSON to the webhook URL, in order, with the secret in `X-Telegram-Bot-Api-Secret-Token`. A 2xx answer
confirms the update; anything else (an error status, a refused connection, a timeout) keeps it
pending and it is tried again after a growing pause, with the error shown by getWebhookInfo. So an
update sent while every replica is down is delivered when one comes back, never lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlsplit

import aiohttp

from sandbox.context import Sandbox

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DELIVERY_TIMEOUT_S = 10.0
FIRST_RETRY_S = 0.2
MAX_RETRY_S = 5.0
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def webhook_url_problem(url: str) -> str | None:
    """Why setWebhook refuses `url`, or None. Telegram wants HTTPS; the sandbox also takes plain http
    on loopback, where the bot's own webhook server listens without a certificate."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return None
    return "bad webhook: An HTTPS URL must be provided for webhook"


class WebhookDelivery:
    """Runs beside the sandbox's HTTP server while it serves."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_S))
        self._task = asyncio.get_running_loop().create_task(self._deliver_forever())

    async def stop(self) -> None:
        # A flag as well as cancel(): Python 3.11's wait_for can swallow a cancellation that arrives
        # as the wait ends, and this loop would go on.
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _deliver_forever(self) -> None:
        pause = FIRST_RETRY_S
        while not self._stopping:
            state = self.sandbox.state  # re-read: a reset replaces it
            webhook = state.webhook
            pending = state.take_updates(None, 1) if webhook else []
            if not pending:
                await state.updates_signal.wait(1.0)  # a new update, or setWebhook
                continue
            update = pending[0]
            error = await self._post(webhook, update)
            if error is None:
                state.take_updates(update["update_id"] + 1, 0)  # confirmed, as an offset would
                pause = FIRST_RETRY_S
                continue
            webhook.update(last_error_date=int(time.time()), last_error_message=error)
            logger.info("webhook delivery of update %d failed (%s); retrying in %.1fs",
                        update["update_id"], error, pause)
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_RETRY_S)

    async def _post(self, webhook: dict, update: dict) -> str | None:
        """None when the webhook accepted the update, else Telegram's kind of error text."""
        headers = {SECRET_HEADER: webhook["secret_token"]} if webhook.get("secret_token") else {}
        try:
            async with self._session.post(webhook["url"], json=update, headers=headers) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return None
                return f"Wrong response from the webhook: {response.status} {response.reason}"
        except TimeoutError:
            return "Timeout expired"
        except aiohttp.ClientError as exc:
            return f"Connection failed: {type(exc).__name__}"
