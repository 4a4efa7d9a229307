"""The path every completion takes: rate limit, record the prompt, the worker, record the result.

Chat messages, /complete, /verse and inline queries all go through `generate`, so each one is
rate limited, stored with its latency and run by the GenerationWorker, never on the event loop.
"""

from __future__ import annotations

import asyncio
import html
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

from sqlalchemy.orm import Session
from telegram import Chat, Message, Update, User
from telegram.constants import ChatAction, ParseMode
from telegram.error import TelegramError

from bot.services import Services
from bot.settings import Settings
from bot.worker import QueueFull
from db import repositories as repo
from models.generator import Completion, Generator

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


@dataclass
class Result:
    completions: list[Completion]
    temperatures: tuple[float, ...]
    preferences: Preferences
    latency_ms: int


async def generate(services: Services, request: Request) -> Result:
    """Record the prompt, complete it through the worker, record the completions. Raises Refused.
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

    def record_prompt(session: Session) -> tuple[int, Preferences]:
        row = remember_user(session, services, request.user, request.chat)
        prompt = repo.add_prompt(session, user_id=request.user.id, text=request.prompt,
                                 chat_id=request.chat.id if request.chat else None,
                                 max_chars=settings.max_prompt_chars)
        return prompt.id, preferences(row, settings, services)

    prompt_id, prefs = await services.database.run(record_prompt)
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

    def record_completions(session: Session) -> None:
        for completion, temperature in zip(completions, temperatures):
            repo.add_completion(session, prompt_id=prompt_id, text=request.completion_prefix + completion.text,
                                model_name=prefs.model,
                                params=repo.SamplingParams(temperature=temperature, max_chars=max_chars),
                                latency_ms=latency_ms)

    await services.database.run(record_completions)
    return Result(list(completions), temperatures, prefs, latency_ms)


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
