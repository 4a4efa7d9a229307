"""The Telegram bot: `build_application(settings)` wires handlers and services; `running(app)` runs it.

    services = create_services(settings)           # db upgrade, admins, models (slow)
    application = build_application(settings, services)
    async with running(application):               # initialize, post_init, polling ... and back
        await stop.wait()

`rnnbot serve` (cli/bot_commands.py) does exactly this until SIGTERM/SIGINT; `run_polling()`
works too, since the start-up and shut-down steps are the Application's post_init, post_stop and post_shutdown.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from telegram import Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    InlineQueryHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import profile
from bot.handlers import admin, chat, guards, history, inline, neuron, preferences, schedule
from bot.handlers.errors import on_error
from bot.logs import protect_logs
from bot.request import CleanTextRequest
from bot.scheduler import service as scheduler
from bot.services import Services, create_services, get_services, start_health_server
from bot.settings import Settings
from models.errors import RnnbotError

log = logging.getLogger(__name__)

FLOOD_RETRIES = 3  # AIORateLimiter: retries after Telegram's 429 (it waits retry_after each time)
POLL_TIMEOUT_S = 10  # getUpdates long poll


def file_url_for(base_url: str) -> str:
    """http://host:8081/bot -> http://host:8081/file/bot (where a local Bot API serves downloads)."""
    base = base_url.rstrip("/")
    if not base.endswith("/bot"):
        raise RnnbotError(f"TELEGRAM_API_BASE_URL must end with /bot, e.g. http://127.0.0.1:8081/bot "
                          f"(the token is appended to it); got {base_url!r}")
    return base[: -len("/bot")] + "/file/bot"


async def on_startup(application: Application) -> None:
    """post_init: start the worker, publish the menus and descriptions, start the scheduler and the
    health server."""
    services = get_services(application)
    services.worker.start()
    if services.outbox is not None:
        services.outbox.start()  # writes an earlier run left waiting go first
    await profile.publish(application)
    services.health = start_health_server(services)
    if services.health is not None:
        await services.health.start()
    if services.posting is not None:
        await services.posting.start()
    log.info("bot @%s is up", application.bot.username)


async def on_stop(application: Application) -> None:
    """post_stop: stop auto-posting while the bot can still talk to Telegram, so that a post on its
    way is sent and recorded (post_shutdown comes after the bot's connections are closed)."""
    services = get_services(application)
    if services.posting is not None:
        await services.posting.stop()


async def on_shutdown(application: Application) -> None:
    """post_shutdown: stop what on_startup started, let queued generations finish, close the database."""
    services = get_services(application)
    if services.posting is not None:
        await services.posting.stop()  # already stopped by on_stop unless start-up failed half-way
    if services.health is not None:
        await services.health.stop()
        services.health = None
    await asyncio.to_thread(services.worker.stop)
    services.heavy.close()
    if services.outbox is not None:
        await services.outbox.stop()
        services.outbox.close()
    services.database.close()


@asynccontextmanager
async def running(application: Application, poll_timeout: float = POLL_TIMEOUT_S) -> AsyncIterator[Application]:
    """Run the application inside this event loop (as run_polling does, without owning the loop)."""
    try:
        await application.initialize()
        if application.post_init:
            await application.post_init(application)
        await receive_updates(application, poll_timeout)
        await application.start()
        try:
            yield application
        finally:
            if application.updater.running:
                await application.updater.stop()
            if application.running:
                await application.stop()
            if application.post_stop:
                await application.post_stop(application)
    finally:
        await application.shutdown()
        if application.post_shutdown:
            await application.post_shutdown(application)


async def receive_updates(application: Application, poll_timeout: float = POLL_TIMEOUT_S) -> None:
    """Long polling (one process per token), or with WEBHOOK_URL a webhook server that Telegram
    posts updates to, so that several replicas behind a load balancer share the work."""
    settings = get_services(application).settings
    if not settings.webhook_url:
        await application.updater.start_polling(poll_interval=0.0, timeout=dtm.timedelta(seconds=poll_timeout),
                                                allowed_updates=Update.ALL_TYPES)
        return
    # Every replica sets the same webhook (idempotent); stopping one leaves it for the others.
    try:
        await application.updater.start_webhook(
            listen=settings.webhook_listen, port=settings.webhook_port, url_path=settings.webhook_url_path,
            webhook_url=settings.webhook_url, secret_token=settings.webhook_secret.get_secret_value(),
            allowed_updates=Update.ALL_TYPES)
    except OSError as exc:
        raise RnnbotError(f"cannot listen for webhook updates on {settings.webhook_listen}:{settings.webhook_port}: "
                          f"{exc.strerror or exc}") from None
    log.info("webhook mode: listening on %s:%d/%s for updates sent to %s", settings.webhook_listen,
             settings.webhook_port, settings.webhook_url_path, settings.webhook_url)


def build_application(settings: Settings, services: Services | None = None) -> Application:
    """The bot, wired: handlers, error handler, start-up/shut-down steps, optional scheduler and /neuron.

    `services` (default: create_services(settings)) end up in application.bot_data["services"]."""
    protect_logs()
    token = settings.telegram_bot_token.get_secret_value()
    if not token:
        raise RnnbotError("TELEGRAM_BOT_TOKEN is not set (get one from @BotFather)")
    base_url = settings.telegram_api_base_url.rstrip("/")  # PTB appends the token to it
    base_file_url = file_url_for(base_url) if base_url else None
    if services is None:
        services = create_services(settings)
    builder = (ApplicationBuilder().token(token)
               # Lone surrogates out of users' text, both ways (bot/request.py); PTB's pool sizes.
               .request(CleanTextRequest(connection_pool_size=256))
               .get_updates_request(CleanTextRequest(connection_pool_size=1))
               .concurrent_updates(True)  # one user's slow completion must not hold up the others
               .job_queue(None)  # unused: posting has its own scheduler (bot/scheduler/service.py)
               .rate_limiter(AIORateLimiter(max_retries=FLOOD_RETRIES))
               .post_init(on_startup).post_stop(on_stop).post_shutdown(on_shutdown))
    if base_url:
        builder.base_url(base_url).base_file_url(base_file_url)
    application = builder.build()
    application.bot_data["services"] = services

    # New messages only: an edited message is not a new prompt, nor a new command (CommandHandler
    # takes edits too unless told otherwise).
    new = filters.UpdateType.MESSAGE
    private_text = new & filters.TEXT & ~filters.COMMAND & filters.ChatType.PRIVATE & ~filters.VIA_BOT
    # Before the handlers, each in its own group (a group runs only its first matching handler):
    # name the update in log lines, then stop updates that have no user to serve.
    application.add_handler(TypeHandler(Update, profile.before_every_update), group=profile.BEFORE_HANDLERS)
    application.add_handler(TypeHandler(Update, guards.require_sender), group=profile.BEFORE_HANDLERS + 1)
    application.add_handlers([
        CommandHandler("start", chat.start, filters=new),
        CommandHandler("help", chat.help_command, filters=new),
        CommandHandler("complete", chat.complete_command, filters=new),
        CommandHandler("verse", chat.verse, filters=new),
        CommandHandler("settings", preferences.settings_command, filters=new),
        CommandHandler("temperature", preferences.temperature_command, filters=new),
        CommandHandler("length", preferences.length_command, filters=new),
        CommandHandler("model", preferences.model_command, filters=new),
        CommandHandler("history", history.history, filters=new),
        CommandHandler("forget", history.forget, filters=new),
        CommandHandler("neuron", neuron.neuron, filters=new),
        CommandHandler("stats", admin.stats, filters=new),
        CommandHandler("reload", admin.reload, filters=new),
        CallbackQueryHandler(preferences.settings_button, pattern=preferences.CALLBACK_PATTERN),
        CallbackQueryHandler(history.forget_button, pattern=history.CALLBACK_PATTERN),
        InlineQueryHandler(inline.inline_query),
        MessageHandler(private_text, chat.complete_text),
    ])
    if settings.channel_id:  # posts on schedule unless POST_IN_BOT=false; /schedule and /post_now
        services.posting = scheduler.build_service(settings, services.database, services.models, services.worker,
                                                   application.bot, run_schedule=settings.post_in_bot,
                                                   metrics=services.metrics, outbox=services.outbox,
                                                   heavy=services.heavy)
        application.add_handlers([
            CommandHandler("schedule", schedule.schedule_command, filters=new),
            # block=False: a post may wait on flood control; other updates need not wait with it.
            CommandHandler("post_now", schedule.post_now_command, filters=new, block=False),
        ])
    # Last: any other command. In a private chat it gets a pointer to /help; groups stay quiet.
    application.add_handler(MessageHandler(filters.UpdateType.MESSAGE & filters.COMMAND & filters.ChatType.PRIVATE,
                                           chat.unknown_command))
    application.add_error_handler(on_error)
    return application
