"""Load on the whole bot: N concurrent sandbox users send prompts; completions/s and latency.

Everything runs in one process, as `rnnbot sandbox` does: the sandbox (a local Bot API), the real
PTB Application polling it over HTTP, the generation worker thread, SQLite. Each user sends a
prompt through the sandbox's control API, waits for the bot's reply, and sends the next one.
Latency is from the user's send to the bot's reply arriving at the sandbox.

    python bench/bot_load.py [--model runs/kjv] [--users 32] [--prompts 4] [--length 280]

Not a test: run it by hand and read the numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PTB_TIMEDELTA", "1")

from bot.app import build_application, running
from bot.services import create_services
from bot.settings import Settings
from sandbox import SandboxClient, SandboxServer

PROMPTS = ["And God said", "In the beginning", "Blessed are the", "1:1 Paul, an apostle",
           "Then said Jesus unto them,", "Thus saith the LORD", "And it came to pass", "The LORD is my"]
FIRST_USER = 10_000


async def wait_for_reply(server: SandboxServer, chat_id: int, after: int, timeout: float) -> float:
    """When (time.time()) the bot's first message after message `after` reached the sandbox."""
    state, deadline = server.state, time.monotonic() + timeout
    while True:
        for event in state.chat_events(chat_id):
            message = event.get("message") or {}
            if event["type"] == "message" and message.get("from", {}).get("is_bot") and event["message_id"] > after:
                return event["time"]
        if time.monotonic() > deadline:
            raise TimeoutError(f"user {chat_id}: no reply within {timeout} s")
        await state.change_signal.wait(1.0)  # in-process: no polling traffic competing with the bot


async def user(client: SandboxClient, server: SandboxServer, user_id: int, prompts: list[str],
               latencies: list[float], timeout: float) -> None:
    who = {"id": user_id, "first_name": f"User{user_id}"}
    for prompt in prompts:
        started = time.time()
        sent = await client.send_text(who, prompt)
        latencies.append(await wait_for_reply(server, user_id, sent["message_id"], timeout) - started)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        async with SandboxServer(port=0) as server:
            settings = Settings(_env_file=None, telegram_bot_token=server.token,
                                telegram_api_base_url=server.bot_api_base_url,
                                database_url=args.database_url or f"sqlite:///{tmp}/bench.db",
                                model_path=args.model, default_length=args.length, max_length=max(args.length, 1),
                                rate_limit_count=10**9, queue_size=args.queue_size, max_batch=args.max_batch,
                                batch_wait_ms=args.batch_wait_ms)
            services = await asyncio.to_thread(create_services, settings, migrate=True)  # a scratch database
            application = build_application(settings, services)
            async with running(application), SandboxClient(server.url) as client:
                await user(client, server, FIRST_USER - 1, ["warm up"], [], args.timeout)
                batches_before = services.worker.batches
                latencies: list[float] = []
                started = time.perf_counter()
                await asyncio.gather(*(
                    user(client, server, FIRST_USER + i, [rng.choice(PROMPTS) for _ in range(args.prompts)],
                         latencies, args.timeout)
                    for i in range(args.users)))
                elapsed = time.perf_counter() - started
                batches = services.worker.batches - batches_before
                checkpoint = services.models.get(None).checkpoint
    config = checkpoint.config if checkpoint else None
    shape = f"{config.layers}x{config.hidden} {config.cell.upper()}" if config else "?"
    print(f"model {args.model} ({shape}), {args.length} chars per completion, torch threads "
          f"{__import__('torch').get_num_threads()}")
    print(f"{args.users} users x {args.prompts} prompts = {len(latencies)} completions in {elapsed:.1f} s")
    print(f"completions/s   {len(latencies) / elapsed:8.2f}")
    print(f"latency p50     {percentile(latencies, 0.50):8.2f} s")
    print(f"latency p95     {percentile(latencies, 0.95):8.2f} s")
    print(f"latency max     {max(latencies):8.2f} s")
    print(f"worker batches  {batches:8d} (mean {len(latencies) / max(batches, 1):.1f} requests each, "
          f"largest {services.worker.largest_batch})")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="runs/kjv", help="run directory or checkpoint (default: runs/kjv)")
    p.add_argument("--users", type=int, default=32, help="concurrent users (default: 32)")
    p.add_argument("--prompts", type=int, default=4, help="prompts per user, one after another (default: 4)")
    p.add_argument("--length", type=int, default=280, help="characters per completion (default: 280)")
    p.add_argument("--queue-size", type=int, default=64)
    p.add_argument("--max-batch", type=int, default=64)
    p.add_argument("--batch-wait-ms", type=float, default=5.0)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    p.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for one reply")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    if not Path(args.model).exists():
        sys.exit(f"bot_load: {args.model} does not exist (train one, or pass --model)")
    if args.threads:
        __import__("torch").set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
