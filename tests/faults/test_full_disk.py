"""A full disk under the bot's SQLite database (a small tmpfs): users are still answered, /healthz
says writes fail, and the records are written once there is room again."""

from __future__ import annotations

import sqlite3

import aiohttp
import pytest

from tests.helpers import ALICE, fill_disk, free_port, small_disk, wait_until

pytestmark = pytest.mark.slow


async def healthz(port: int) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/healthz") as response:
        return response.status, await response.json()


async def test_a_full_disk_is_unhealthy_and_loses_no_request(start_bot, alice):
    port = free_port()
    with small_disk("4m") as disk:
        bot = await start_bot(database_url=f"sqlite:///{disk / 'bot.db'}", health_port=port)
        assert (await alice.ask(None, "the quick "))["text"].startswith("the quick ")
        await bot.settled()
        assert (await healthz(port))[0] == 200
        with sqlite3.connect(disk / "bot.db") as connection:  # an empty WAL: the next commit must grow it
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        filler = fill_disk(disk)

        reply = await alice.ask(None, "the lazy ")
        await wait_until(lambda: bot.services.outbox.pending, what="the record waiting for room")
        status, body = await healthz(port)
        assert (status, body["writes"], body["waiting_writes"]) == (503, False, 1)
        assert reply["text"].startswith("the lazy ")  # answered all the same

        filler.unlink()
        await wait_until(lambda: bot.services.outbox.pending == 0, timeout=30, what="the record written")
        assert (await healthz(port))[0] == 200
        assert [p.text for p in bot.prompts(ALICE)] == ["the lazy ", "the quick "]
