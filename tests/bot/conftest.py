"""The real bot against the sandbox: a SandboxServer on a free port, the real PTB Application polling it
through `base_url`, SandboxClients acting as users, and a SQLite (or PostgreSQL) database per test.

Fixtures (reusable by other bot tests, e.g. the scheduler's):
    sandbox        a running SandboxServer (port 0)
    start_bot      async factory: `harness = await start_bot(**settings_overrides)` -> BotHarness;
                   overrides are Settings fields (rate_limit_count=2, queue_size=1, channel_id=...,
                   database_url=...); stopped at teardown
    running_bot    start_bot() with the defaults below
    alice          SandboxClient as Alice (user 1001, not an admin)
    admin_client   SandboxClient as the admin (user ADMIN_ID)
    postgres_url   a fresh PostgreSQL database for this test ($TEST_DATABASE_URL; skipped when unset)
"""

from __future__ import annotations

import asyncio
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from bot.app import build_application, running
from sandbox import SandboxClient, SandboxServer
from bot.services import Services, create_services
from bot.settings import Settings
from db import repositories as repo
from db.session import resolve_url
from tests.helpers import new_postgres_database

ALICE = 1001
BOB = 1002
ADMIN_ID = 4242
POLL_TIMEOUT_S = 1  # short long-polls: the app stops quickly at teardown


@dataclass
class BotHarness:
    application: object  # telegram.ext.Application
    services: Services
    settings: Settings
    server: SandboxServer

    def counts(self) -> dict[str, int]:
        with self.services.database.transaction() as session:
            return repo.table_counts(session)

    def prompts(self, user_id: int) -> list:
        """The user's prompts (newest first), each with .completions loaded."""
        with self.services.database.transaction() as session:
            return repo.user_prompts(session, user_id=user_id, limit=1000)

    def user(self, user_id: int):
        with self.services.database.transaction() as session:
            return repo.get_user(session, user_id=user_id)


def bot_settings(server: SandboxServer, tmp_path: Path, model_path: Path, **overrides) -> Settings:
    """Settings for a test bot: the sandbox's token and URL, a SQLite file in tmp_path, short
    completions, ADMIN_ID as the admin, no practical rate limit; `overrides` win."""
    values = dict(telegram_bot_token=server.token, telegram_api_base_url=server.bot_api_base_url,
                  database_url=f"sqlite:///{tmp_path / 'bot.db'}", model_path=str(model_path),
                  admin_user_ids=frozenset({ADMIN_ID}), default_length=40, max_length=1000,
                  rate_limit_count=1000, rate_limit_window_s=30.0)
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
async def sandbox():
    async with SandboxServer(port=0) as server:
        yield server


@pytest.fixture
async def start_bot(sandbox, tmp_path, trained_run):
    async with AsyncExitStack() as stack:
        async def start(**overrides) -> BotHarness:
            model_path = overrides.pop("model_path", trained_run)
            settings = bot_settings(sandbox, tmp_path, model_path, **overrides)
            services = await asyncio.to_thread(create_services, settings)
            application = build_application(settings, services)
            await stack.enter_async_context(running(application, poll_timeout=POLL_TIMEOUT_S))
            return BotHarness(application, services, settings, sandbox)

        yield start


@pytest.fixture
async def running_bot(start_bot) -> BotHarness:
    return await start_bot()


@pytest.fixture
async def alice(sandbox):
    async with SandboxClient(sandbox.url, user_id=ALICE, first_name="Alice", username="alice") as client:
        yield client


@pytest.fixture
async def admin_client(sandbox):
    async with SandboxClient(sandbox.url, user_id=ADMIN_ID, first_name="Ada", username="ada_admin") as client:
        yield client


@pytest.fixture
def postgres_url():
    raw = os.environ.get("TEST_DATABASE_URL")
    if not raw:
        pytest.skip("TEST_DATABASE_URL is not set")
    admin = create_engine(resolve_url(raw), isolation_level="AUTOCOMMIT")
    try:
        with new_postgres_database(admin, "rnnbot_bot") as url:
            yield url
    finally:
        admin.dispose()


def bot_texts(messages: list[dict]) -> list[str]:
    return [m.get("text", "") for m in messages if m.get("from", {}).get("is_bot")]


async def wait_until(condition, timeout: float = 10.0, what: str = "a condition"):
    """Poll a synchronous condition (e.g. a database row count) until it holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


__all__ = ["ALICE", "BOB", "ADMIN_ID", "BotHarness", "bot_settings", "bot_texts", "wait_until"]
