"""Peak memory of `rnnbot serve` with a model loaded, after it has served some completions.

The sandbox (a local Bot API) runs in this process; `rnnbot serve` runs as its own process pointed
at it, exactly as in production. After `--completions` prompts from concurrent users the script
reads the server's peak resident set size (VmHWM in /proc/PID/status) and its current RSS.

    python bench/serve_memory.py [--model runs/kjv] [--completions 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PTB_TIMEDELTA", "1")

from bot.settings import Settings  # noqa: E402
from sandbox import SandboxClient, SandboxServer  # noqa: E402


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmHWM", "VmRSS"):
            fields[name] = int(value.split()[0])
    return fields


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="runs/kjv")
    parser.add_argument("--completions", type=int, default=64)
    args = parser.parse_args()
    settings_names = {name.upper() for name in Settings.model_fields}
    async with SandboxServer(port=0) as server:
        with tempfile.TemporaryDirectory() as tmp:
            env = {k: v for k, v in os.environ.items() if k not in settings_names}
            env.update(TELEGRAM_BOT_TOKEN=server.token, TELEGRAM_API_BASE_URL=server.bot_api_base_url,
                       DATABASE_URL=f"sqlite:///{tmp}/bench.db", MODEL_PATH=str(Path(args.model).resolve()),
                       RATE_LIMIT_COUNT="1000", PTB_TIMEDELTA="1")
            subprocess.run([sys.executable, "-m", "cli", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                           stdout=subprocess.DEVNULL)  # serve checks the schema; it does not migrate
            serve = subprocess.Popen([sys.executable, "-m", "cli", "serve"], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                async with SandboxClient(server.url) as client:
                    started = await client.ask({"id": 5000, "first_name": "Warmup"}, "/start", timeout=120)
                    assert started, "the bot did not answer /start"
                    idle = memory_kib(serve.pid)
                    t0 = time.perf_counter()
                    users = [{"id": 6000 + i, "first_name": f"U{i}"} for i in range(args.completions)]
                    replies = await asyncio.gather(*(client.ask(u, "And God said", timeout=300) for u in users))
                    elapsed = time.perf_counter() - t0
                    busy = memory_kib(serve.pid)
            finally:
                serve.send_signal(signal.SIGTERM)
                rc = serve.wait(timeout=30)
    mib = 1024
    print(f"model {args.model}; rnnbot serve exit code after SIGTERM: {rc}")
    print(f"after /start:              RSS {idle['VmRSS'] / mib:7.1f} MiB")
    print(f"after {len(replies)} completions ({elapsed:.1f} s): RSS {busy['VmRSS'] / mib:7.1f} MiB, "
          f"peak (VmHWM) {busy['VmHWM'] / mib:7.1f} MiB")


if __name__ == "__main__":
    asyncio.run(main())
