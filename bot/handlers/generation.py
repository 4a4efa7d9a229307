"""The path every completion takes: rate limit, the worker, the reply, then one record of it all.

Chat messages, /complete, /verse and inline queries all go through `serve`, so each one is rate
limited, run by the GenerationWorker (never on the event loop), answered, and then stored once
with its outcome: "sent" with the completions the user got, "busy" when the queue was full, or
"failed" when the reply did not reach the user (then no completion is stored).
"""

from __future__ import annotations

import asyncio
import html
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session
from telegram import Chat, Message, Update, User
from telegram.constants import ChatAction, ParseMode
from telegram.error import TelegramError

from bot import records
from bot.services import Services
from bot.settings import Settings
from bot.worker import QueueFull
from db import repositories as repo
from db.base import utcnow
from db.session import unavailable_reason
from models.generator import Completion, Generator

KNOWN_PREFERENCES = 10_000  # users whose settings are remembered for a database outage
BUSY = "I'm busy with other people's requests right now. Please try again in a few seconds."
TYPING_REFRESH_S = 4.5  # Telegram shows a chat action for 5 s


@dataclass(frozen=True)
class Preferences:
    """A user's settings with the service defaults filled in."""

    temperature: float
    length: int
    model: str  # a loaded model's name


def preferences(user_row, settings: Settings, services: Services) -> Preferences:
    temperature = settings.default_temperature if user_row is None or user_row.temperature is None \
        else user_row.temperature
    length = settings.default_length if user_row is None or user_row.length is None else user_row.length
    model = services.models.resolve(None if user_row is None else user_row.model_name)
    return Preferences(temperature, min(length, settings.max_length), model)


def remember_user(session: Session, services: Services, user: User, chat: Chat | None = None):
    """Upsert the user (and chat) row; returns the user row, whose settings the caller may read."""
    row = repo.upsert_user(session, user_id=user.id, username=user.username, is_admin=services.is_admin(user.id))
    if chat is not None:
        repo.upsert_chat(session, chat_id=chat.id, type=chat.type, title=chat.title)
    return row


async def user_preferences(services: Services, user_id: int) -> Preferences:
    """The user's settings; while the database is unreachable the last ones read, else the defaults
    (the model does not need the database to answer)."""
    try:
        row = await services.database.run(lambda session: repo.get_user(session, user_id=user_id))
    except Exception as exc:
        if unavailable_reason(exc) is None:
            raise
        return services.known_preferences.get(user_id) or preferences(None, services.settings, services)
    prefs = preferences(row, services.settings, services)
    if len(services.known_preferences) >= KNOWN_PREFERENCES:
        services.known_preferences.clear()
    services.known_preferences[user_id] = prefs
    return prefs


class Refused(Exception):
    """The request was not run: rate limited or the queue is full. The message is for the user."""


def rate_limit_message(services: Services, user_id: int, completion: bool = True) -> str | None:
    """None if the user may ask now (the request is counted); else a friendly explanation.
    `completion`: a refusal counts as a completion refused (rnnbot_completions_total)."""
    wait = services.limiter.check(user_id)
    if not wait:
        return None
    if completion:
        services.metrics.completion("rate_limited")
    s = services.settings
    return (f"Easy there! You can ask for {s.rate_limit_count} completions every {s.rate_limit_window_s:g} "
            f"seconds. Please try again in {math.ceil(wait)} s.")


async def within_rate_limit(services: Services, update: Update, completion: bool = True) -> bool:
    """True if the user may ask now (the request is counted); else they are told when to retry."""
    refusal = rate_limit_message(services, update.effective_user.id, completion)
    if refusal:
        await update.effective_message.reply_text(refusal)
    return refusal is None


@dataclass
class Request:
    user: User
    chat: Chat | None  # None: inline mode
    prompt: str  # what the user asked for, as stored (and shown by /history)
    model_input: str | None = None  # what the model reads, when not the prompt itself (/verse)
    completion_prefix: str = ""  # shown before each completion and stored with it (/verse's number)
    # Burn in the model's start context (whole lines of training text) before the input, so a
    # line begins from a state the model knows rather than from zeros (/verse).
    after_start_context: bool = False
    stop_at: str | None = None
    max_chars: int | None = None  # None: the user's length setting
    length_cap: int | None = None  # at most this many, whatever the user's length
    temperatures: tuple[float, ...] | None = None  # None: the user's; several: one completion each
    # Sample `candidates` completions per temperature and keep the one `pick(completions, generator)`
    # names (it runs in a thread); only that one is stored and returned (/verse).
    candidates: int = 1
    pick: Callable[[list[Completion], Generator], int] | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)  # stored with it: one row, however often written
    received_at: datetime = field(default_factory=utcnow)


@dataclass
class Result:
    completions: list[Completion]
    temperatures: tuple[float, ...]
    preferences: Preferences
    latency_ms: int
    max_chars: int


async def generate(services: Services, request: Request) -> Result:
    """Complete the request through the worker with the user's settings. Raises Refused.
    Each call counts once in rnnbot_completions_total: ok, busy (Refused) or error."""
    try:
        result = await _generate(services, request)
    except Refused:
        services.metrics.completion("busy")
        raise
    except Exception:
        services.metrics.completion("error")
        raise
    services.metrics.completion("ok", result.latency_ms / 1000)
    return result


async def _generate(services: Services, request: Request) -> Result:
    started = time.perf_counter()
    settings = services.settings
    prefs = await user_preferences(services, request.user.id)
    temperatures = request.temperatures or (prefs.temperature,)
    max_chars = min(request.max_chars or prefs.length, request.length_cap or settings.max_length,
                    settings.max_length)
    model_input = request.prompt if request.model_input is None else request.model_input
    if request.after_start_context:
        model_input = services.models.get(prefs.model).start_context + model_input
    runs = tuple(t for t in temperatures for _ in range(request.candidates))
    try:
        completions = await asyncio.gather(*(
            services.worker.complete(model_input, max_chars=max_chars, temperature=t, model=prefs.model,
                                     stop_at=request.stop_at)
            for t in runs))
    except QueueFull:
        raise Refused(BUSY) from None
    if request.pick is not None:
        chosen = await asyncio.to_thread(request.pick, list(completions), services.models.get(prefs.model))
        completions, runs = [completions[chosen]], (runs[chosen],)
    temperatures = runs
    latency_ms = round((time.perf_counter() - started) * 1000)
    return Result(list(completions), temperatures, prefs, latency_ms, max_chars)


async def serve(services: Services, request: Request, reply: Callable[[Result], Awaitable[None]],
                refuse: Callable[[str], Awaitable[None]]) -> Result | None:
    """Generate, reply, and record the request once with what became of it (see the module docstring).

    `reply(result)` sends the answer and raises if it could not; `refuse(text)` says the bot is busy."""
    services.unrecorded += 1
    try:
        try:
            result = await generate(services, request)
        except Refused as refused:
            await record(services, request, None, "busy")
            await refuse(str(refused))
            return None
        try:
            await reply(result)
        except Exception:
            await record(services, request, result, "failed")
            raise
        await record(services, request, result, "sent")
        return result
    finally:
        services.unrecorded -= 1


async def record(services: Services, request: Request, result: Result | None, outcome: str) -> None:
    """Store the request: the user, the chat, the prompt with its outcome, the completions sent. While
    the database is down it waits in the outbox, and the user is told nothing went wrong."""
    served = [] if result is None or outcome != "sent" else [
        {"text": request.completion_prefix + c.text, "model": result.preferences.model, "temperature": t,
         "max_chars": result.max_chars}
        for c, t in zip(result.completions, result.temperatures)]
    data = records.exchange(request_id=request.id, user=request.user, chat=request.chat, prompt=request.prompt,
                            outcome=outcome, is_admin=services.is_admin(request.user.id), served=served,
                            latency_ms=result.latency_ms if result else None, received_at=request.received_at,
                            max_prompt_chars=services.settings.max_prompt_chars)
    await services.outbox.write(records.EXCHANGE, data)


@asynccontextmanager
async def typing(chat: Chat) -> AsyncIterator[None]:
    """Show "typing…" in the chat until the block ends."""
    async def keep_typing() -> None:
        while True:
            with suppress(TelegramError):
                await chat.send_action(ChatAction.TYPING)
            await asyncio.sleep(TYPING_REFRESH_S)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


async def reply_html(message: Message, pieces: list[str]) -> None:
    """Send already-escaped HTML pieces (each within Telegram's 4096 limit) in order."""
    for piece in pieces:
        if piece.strip():
            await message.reply_text(piece, parse_mode=ParseMode.HTML)


def unknown_chars_note(chars: list[str]) -> str | None:
    if not chars:
        return None
    shown = list(dict.fromkeys(chars))
    listed = " ".join(shown[:10]) + (" …" if len(shown) > 10 else "")
    return (f"I had never seen {listed} while learning, so I read "
            f"{'it' if len(shown) == 1 else 'them'} as unknown characters.")


def italic(text: str) -> str:
    return f"<i>{html.escape(text, quote=False)}</i>"
