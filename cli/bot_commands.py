"""serve, sandbox: run the Telegram bot, against Telegram or against the local sandbox."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from cli.options import database_option
from models.errors import RnnbotError

log = logging.getLogger(__name__)

SANDBOX_CHANNEL = "@rnnbot_verses"  # the sandbox's default channel
SANDBOX_CHATS = "data/sandbox-chats.json"  # beside make run's data/rnnbot.db


def register(sub) -> None:
    p = sub.add_parser("serve", parents=[database_option()],
                       help="run the Telegram bot (and the scheduler) until SIGTERM/SIGINT",
                       description="Run the bot with the configuration from the environment (and .env): "
                                   "TELEGRAM_BOT_TOKEN, TELEGRAM_API_BASE_URL, MODEL_PATH, DATABASE_URL, ... "
                                   "The database must be migrated first: `rnnbot db upgrade`.")
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("sandbox", parents=[database_option()],
                       help="run a local Telegram sandbox with the bot in it, and print its URL",
                       description="Start the offline Telegram sandbox (a Bot API server and a chat page) and "
                                   "the bot against it, in one process, with the sandbox's test token. "
                                   "It migrates the database itself.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port of the page and the Bot API (default: 8080; "
                                                          "0 picks a free one)")
    p.add_argument("--chats-file", default=SANDBOX_CHATS, metavar="PATH",
                   help=f"keep the page's users, chats and messages here across restarts (default: {SANDBOX_CHATS}; "
                        "'' keeps them in memory only)")
    p.add_argument("--inline-mode", action=argparse.BooleanOptionalAction, default=True,
                   help="whether the sandbox's bot has inline mode on, as @BotFather's /setinline sets it "
                        "(default: on)")
    api = p.add_argument_group("Bot API only (the bot runs in another process or container)")
    api.add_argument("--api-only", action="store_true",
                     help="serve the Bot API, the page and GET /healthz without a bot of its own: point the "
                          "bot's TELEGRAM_API_BASE_URL at http://HOST:PORT/bot and give it --token")
    api.add_argument("--token", metavar="TOKEN",
                     help="with --api-only: the one token the Bot API accepts, '<bot id>:<secret>' (default: "
                          "the sandbox's test token, 7000000001:sandbox-token-not-a-secret)")
    api.add_argument("--channel", action="append", metavar="CHANNEL",
                     help=f"with --api-only: a channel the bot may post to, @name or numeric id; repeat for more "
                          f"(default: {SANDBOX_CHANNEL})")
    p.set_defaults(handler=cmd_sandbox)


def load_settings(args: argparse.Namespace):
    """Settings from the flags, then the environment, then .env, then the defaults; the secrets in
    them are hidden in whatever is printed from here on (an error line, a traceback)."""
    from sqlalchemy.engine import make_url

    from bot.logs import keep_secret
    from bot.settings import Settings
    from cli.options import read_settings

    settings = read_settings(Settings, database_url=getattr(args, "database_url", None))
    keep_secret(settings.telegram_bot_token.get_secret_value(), settings.webhook_secret.get_secret_value())
    try:
        keep_secret(make_url(settings.database_url).password or "")
    except Exception:  # a malformed URL is reported where it is used
        pass
    return settings


class StartupSignals:
    """SIGTERM and SIGINT noted from the very start of a service, before the imports and the model
    (seconds), so that a stop then (`docker compose down` right after `up`) ends it with exit code 0,
    not 143. The start-up runs to its end (or its error), then the service stops instead of
    running; run_until_signalled's handlers take over once its event loop runs."""

    def __init__(self, what: str):
        self.what = what
        self.received: str | None = None
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._note)

    def _note(self, signum, frame) -> None:
        self.received = self.received or signal.Signals(signum).name

    def stopped(self, failure: BaseException | None = None) -> bool:
        """Whether a stop arrived (logged once here). Python runs signal handlers on the main thread
        only, and a signal the kernel handed another thread (torch's, the database's) waits for
        the main thread's next check: time.sleep(0) is one."""
        time.sleep(0)
        if self.received is None:
            return False
        why = f" (its start-up failed meanwhile: {failure})" if failure is not None else ""
        log.info("%s stopped by %s while starting%s", self.what, self.received, why)
        return True


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[None]],
                        startup: StartupSignals | None = None) -> None:
    """asyncio.run(main(stop)), where `stop` is set by SIGTERM or SIGINT (or was already, during
    `startup`, if one came just before these handlers replaced its own)."""
    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if startup is not None and startup.received:
            stop.set()
        await main(stop)

    asyncio.run(runner())


@contextmanager
def startup_errors(base_url: str) -> Iterator[None]:
    """Telegram's refusals at start-up, as one line each."""
    from telegram.error import InvalidToken, NetworkError, TelegramError

    where = base_url or "https://api.telegram.org"
    try:
        yield
    except InvalidToken as exc:
        raise RnnbotError(f"the Bot API at {where} refused TELEGRAM_BOT_TOKEN ({exc})") from None
    except NetworkError as exc:
        raise RnnbotError(f"cannot reach the Bot API at {where}: {exc}") from None
    except TelegramError as exc:  # e.g. setWebhook refused: "bad webhook: ..."
        raise RnnbotError(f"the Bot API at {where} refused to start the bot: {exc.message}") from None


def cmd_serve(args: argparse.Namespace) -> int:
    startup = StartupSignals("the bot")  # before the imports and the models: they take seconds
    from bot.app import build_application, running
    from bot.logs import redact_secrets
    from bot.services import create_services

    settings = load_settings(args)
    token = settings.telegram_bot_token.get_secret_value()
    if not token:
        raise RnnbotError("TELEGRAM_BOT_TOKEN is not set (get a token from @BotFather, or try `rnnbot sandbox`)")
    redact_secrets(token, settings.webhook_secret.get_secret_value())

    async def serve(stop: asyncio.Event) -> None:
        with startup_errors(settings.telegram_api_base_url):
            async with running(application):
                log.info("serving; SIGTERM or Ctrl+C stops")
                await stop.wait()
        log.info("stopped")

    try:
        services = create_services(settings)  # loads the models: seconds
        application = build_application(settings, services)
    except Exception as exc:
        if startup.stopped(exc):
            return 0
        raise
    if startup.stopped():
        services.database.close()
        return 0
    run_until_signalled(serve, startup)
    return 0


def sandbox_settings(settings):
    """The environment's settings with the sandbox's token, an admin, and its channel for the scheduler."""
    from pydantic import SecretStr

    from sandbox import DEFAULT_TOKEN, DEFAULT_USER_ID

    changes = {"telegram_bot_token": SecretStr(DEFAULT_TOKEN), "webhook_url": ""}  # the sandbox polls
    if not settings.admin_user_ids:
        changes["admin_user_ids"] = frozenset({DEFAULT_USER_ID})  # the page's default user
    if not settings.channel_id:
        changes["channel_id"] = SANDBOX_CHANNEL
    return settings.model_copy(update=changes)


def cmd_sandbox(args: argparse.Namespace) -> int:
    if args.api_only:
        return cmd_sandbox_api(args)
    if args.token or args.channel:
        raise RnnbotError("--token and --channel go with --api-only (without it the sandbox runs its own bot "
                          "with the test token, posting to CHANNEL_ID or @rnnbot_verses)")
    from bot.app import build_application, running
    from bot.services import create_services
    from db.session import safe_url
    from sandbox import DEFAULT_TOKEN, run_sandbox

    settings = sandbox_settings(load_settings(args))
    services = create_services(settings, migrate=True)  # a local try-out: migrate its own database

    async def main(stop: asyncio.Event) -> None:
        stop_sandbox = asyncio.Event()
        bot_task: asyncio.Task | None = None

        async def bot(server) -> None:
            try:
                application = build_application(
                    settings.model_copy(update={"telegram_api_base_url": server.bot_api_base_url}), services)
                async with running(application):
                    admins = ", ".join(map(str, sorted(settings.admin_user_ids)))
                    chats = f"chats kept in {args.chats_file}" if args.chats_file else "chats in memory only"
                    print(f"Telegram sandbox with @{application.bot.username}: open {server.url}\n"
                          f"  admin user ids: {admins}; database: {safe_url(settings.database_url)}; {chats}\n"
                          "  Ctrl+C stops.", flush=True)
                    await stop.wait()
            finally:
                stop_sandbox.set()  # the bot stops first, while the sandbox still answers it

        def on_ready(server) -> None:
            nonlocal bot_task
            bot_task = asyncio.create_task(bot(server))

        try:
            await run_sandbox(args.host, args.port, token=DEFAULT_TOKEN, on_ready=on_ready, stop=stop_sandbox,
                              chats_file=args.chats_file or None, inline_mode=args.inline_mode)
        except OSError as exc:
            raise RnnbotError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
        if bot_task is not None:
            await bot_task

    try:
        run_until_signalled(main)
    finally:
        services.database.close()
    return 0


def channel_spec(value: str):
    """--channel: '@name' or a numeric chat id (-100...)."""
    from bot.scheduler.poster import parse_channel

    try:
        return parse_channel(value)
    except RnnbotError:
        raise RnnbotError(f"--channel must be a channel's @name or a numeric chat id (-100...), "
                          f"got {value!r}") from None


def cmd_sandbox_api(args: argparse.Namespace) -> int:
    """The Bot API, the page and /healthz alone, until SIGTERM or Ctrl+C."""
    from sandbox import DEFAULT_TOKEN, run_sandbox

    token = args.token or DEFAULT_TOKEN
    channels = [channel_spec(c) for c in args.channel or [SANDBOX_CHANNEL]]

    def on_ready(server) -> None:
        chats = f"chats kept in {args.chats_file}" if args.chats_file else "chats in memory only"
        print(f"Telegram Bot API sandbox for @{server.bot_username} (no bot of its own): page {server.url}, "
              f"health {server.url}/healthz\n"
              f"  bots connect with TELEGRAM_API_BASE_URL={server.bot_api_base_url} and the token given; {chats}\n"
              "  SIGTERM or Ctrl+C stops.", flush=True)

    async def main(stop: asyncio.Event) -> None:
        try:
            await run_sandbox(args.host, args.port, token=token, channels=channels, on_ready=on_ready, stop=stop,
                              chats_file=args.chats_file or None, inline_mode=args.inline_mode)
        except ValueError as exc:  # a malformed --token
            raise RnnbotError(f"--token: {exc}") from None
        except OSError as exc:
            raise RnnbotError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None

    run_until_signalled(main)
    log.info("sandbox stopped")
    return 0
