"""post, scheduler: posting generated verses to CHANNEL_ID from the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from contextlib import asynccontextmanager

from cli.bot_commands import StartupSignals, load_settings, run_until_signalled, startup_errors
from cli.options import database_option
from models.errors import RnnbotError

log = logging.getLogger(__name__)

DRY_RUN_ROUNDS = 5  # rounds of POST_CANDIDATES samples before the dry run gives up


def register(sub) -> None:
    p = sub.add_parser("post", parents=[database_option()],
                       help="post one generated verse to CHANNEL_ID now (--dry-run: only print it)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the verse that would be posted; post nothing, record no candidates")
    p.set_defaults(handler=cmd_post)

    p = sub.add_parser("scheduler", parents=[database_option()],
                       help="run the channel posting scheduler alone, until SIGTERM or Ctrl-C")
    p.set_defaults(handler=cmd_scheduler)


def make_bot(settings):
    """A plain telegram.Bot (no Application): what `rnnbot post` and `rnnbot scheduler` send with."""
    from telegram import Bot

    from bot.logs import protect_logs, redact_secrets
    from bot.request import CleanTextRequest

    token = settings.telegram_bot_token.get_secret_value()
    if not token:
        raise RnnbotError("TELEGRAM_BOT_TOKEN is not set (get a token from @BotFather)")
    protect_logs()
    redact_secrets(token)
    base_url = settings.telegram_api_base_url
    requests = {"request": CleanTextRequest(), "get_updates_request": CleanTextRequest()}
    return Bot(token, base_url=base_url, **requests) if base_url else Bot(token, **requests)


def cmd_post(args: argparse.Namespace) -> int:
    from bot.scheduler.service import check_settings
    from bot.services import create_services

    settings = load_settings(args)
    if not args.dry_run:
        if not settings.channel_id.strip():
            raise RnnbotError("CHANNEL_ID is not set: there is no channel to post to (try --dry-run)")
        check_settings(settings)
    services = create_services(settings, role="post")
    try:
        return asyncio.run(_dry_run(settings, services, args.verbose) if args.dry_run
                           else _post_once(settings, services))
    finally:
        services.outbox.close()
        services.database.close()


async def _dry_run(settings, services, verbose: bool) -> int:
    from bot.scheduler.service import candidate_buffer, load_post_corpus

    buffer = candidate_buffer(settings, services.worker, services.models, services.database, size=1, record=False)
    await load_post_corpus(buffer, settings.post_corpus)
    services.worker.start()
    try:
        rejected = []
        for _ in range(DRY_RUN_ROUNDS):
            found = await buffer.generate_round()
            rejected += found.rejected
            if found.accepted:
                break
        else:
            reasons = sorted({reason for _, reason in rejected})
            raise RnnbotError(f"no acceptable verse in {len(rejected)} samples (rejected: {'; '.join(reasons[:6])})")
    finally:
        services.worker.stop()
    if verbose:
        for text, reason in rejected:
            print(f"rejected ({reason}): {text}", file=sys.stderr)
    best = found.accepted[0]
    print(best.text)
    print(f"dry run: not posted. Model {buffer.model_name}, score {best.score:.3f}; "
          f"{len(found.accepted)} of {buffer.rules.per_round} samples of the last round were acceptable.",
          file=sys.stderr)
    return 0


async def _post_once(settings, services) -> int:
    from bot.scheduler.service import build_service

    async with _connected_bot(settings) as bot:
        service = build_service(settings, services.database, services.models, services.worker, bot,
                                run_schedule=False, outbox=services.outbox)
        services.worker.start()
        services.outbox.start()
        try:
            await service.start()
            try:
                result = await service.poster.post_now()
            finally:
                await service.stop()
        finally:
            await services.outbox.stop()
            services.worker.stop()
    if result.status != "sent":
        raise RnnbotError(f"not posted: {result.error or 'another post took this very second; try again'}")
    print(f"posted to {service.poster.channel} (message {result.message_id}):")
    print(result.text)
    return 0


def cmd_scheduler(args: argparse.Namespace) -> int:
    startup = StartupSignals("the scheduler")  # before the imports and the model: they take seconds
    from bot.scheduler.service import check_settings
    from bot.services import create_services

    try:
        settings = load_settings(args)
        check_settings(settings)
        services = create_services(settings, role="scheduler")  # loads the model: seconds
    except Exception as exc:
        if startup.stopped(exc):
            return 0
        raise
    try:
        if not startup.stopped():
            run_until_signalled(lambda stop: _run_scheduler(settings, services, stop), startup)
    finally:
        services.outbox.close()
        services.database.close()
    return 0


async def _run_scheduler(settings, services, stop: asyncio.Event) -> None:
    from bot.scheduler.service import build_service
    from bot.services import start_health_server

    async with _connected_bot(settings) as bot:
        service = build_service(settings, services.database, services.models, services.worker, bot,
                                metrics=services.metrics, outbox=services.outbox)
        services.worker.start()
        services.outbox.start()
        health = start_health_server(services)  # /healthz for compose, /metrics for Prometheus
        try:
            if health is not None:
                await health.start()
            await service.start()
            try:
                log.info("scheduler running (pid %d); SIGTERM or Ctrl+C stops it", os.getpid())
                await stop.wait()
                log.info("stopping (a post in progress may finish first)")
            finally:
                await service.stop()
        finally:
            if health is not None:
                await health.stop()
            await services.outbox.stop()
            await asyncio.to_thread(services.worker.stop)


@asynccontextmanager
async def _connected_bot(settings):
    bot = make_bot(settings)
    with startup_errors(settings.telegram_api_base_url):
        await bot.initialize()
    try:
        yield bot
    finally:
        await bot.shutdown()
