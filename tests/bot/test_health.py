"""The health endpoint over real HTTP, with a real SQLite database and a real trained model."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from bot.health import CHECK_TIMEOUT_S, DATABASE_TIMEOUT_S, HealthServer, probe, service_check
from bot.worker import GenerationWorker, ModelStore
from db.session import Database
from tests.helpers import free_port


def get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture(scope="module")
def store(trained_run):
    return ModelStore({"kjv": str(trained_run)}, "kjv")


async def serve_and_get(check) -> tuple[int, dict]:
    async with HealthServer("127.0.0.1", 0, check) as server:
        assert server.port > 0
        # urllib blocks: run it in a thread so the server on this loop can answer
        return await asyncio.to_thread(get, f"http://127.0.0.1:{server.port}/healthz")


async def test_healthy_service_answers_200(sqlite_db, store):
    worker = GenerationWorker(store)
    status, body = await serve_and_get(service_check(sqlite_db, store, worker))
    assert status == 200
    assert body == {"ok": True, "database": True, "model": True, "models": ["kjv"], "queue": 0}


async def test_unreachable_database_answers_503(tmp_path, store):
    # a directory where the database file should be: SQLite cannot open it
    (tmp_path / "not-a-file.db").mkdir()
    broken = Database(f"sqlite:///{tmp_path / 'not-a-file.db'}")
    status, body = await serve_and_get(service_check(broken, store))
    assert status == 503
    assert body["ok"] is False and body["database"] is False and body["model"] is True
    assert body["error"] == "database: unable to open database file"


async def test_a_database_that_never_answers_is_named_before_the_probe_gives_up(store):
    """A stopped database's host can swallow the connection: the 503 names the database within
    DATABASE_TIMEOUT_S, well before the probe (4 s) and the HEALTHCHECK (5 s) time out."""
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never says a word
    try:
        port = silent.getsockname()[1]
        database = Database(f"postgresql+psycopg://rnnbot:secret-password@127.0.0.1:{port}/rnnbot")
        check = service_check(database, store)
        async with HealthServer("127.0.0.1", 0, check) as server:
            url = f"http://127.0.0.1:{server.port}/healthz"
            for _ in range(2):  # the second check waits for the same hanging probe
                started = time.monotonic()
                status, body = await asyncio.to_thread(get, url)
                took = time.monotonic() - started
                assert status == 503
                assert body["error"] == f"database: no answer within {DATABASE_TIMEOUT_S:g}s"
                assert body["database"] is False and body["model"] is True
                assert DATABASE_TIMEOUT_S <= took < CHECK_TIMEOUT_S < 4
        assert "secret-password" not in json.dumps(body)
        assert [t.name for t in threading.enumerate()].count("health-database") == 1
    finally:
        silent.close()


async def test_no_model_answers_503(sqlite_db):
    status, body = await serve_and_get(service_check(sqlite_db, store=None))
    assert status == 503
    assert body == {"ok": False, "database": True, "model": False}


async def test_a_failing_check_is_unhealthy_not_a_crash():
    def check():
        raise RuntimeError("boom")

    status, body = await serve_and_get(check)
    assert status == 503 and body == {"ok": False, "error": "RuntimeError"}


async def test_probe_and_the_container_healthcheck_command(sqlite_db, store):
    async with HealthServer("127.0.0.1", 0, service_check(sqlite_db, store)) as healthy:
        url = f"http://127.0.0.1:{healthy.port}/healthz"
        assert await asyncio.to_thread(probe, url) == 0
        # what the Dockerfile's HEALTHCHECK runs
        done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "bot.health", url],
                                       capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    async with HealthServer("127.0.0.1", 0, service_check(sqlite_db, None)) as unhealthy:
        done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "bot.health",
                                                        f"http://127.0.0.1:{unhealthy.port}/healthz"],
                                       capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and "HTTP 503" in done.stderr
    # nothing listening any more
    assert await asyncio.to_thread(probe, url, 2.0) == 1


def test_health_settings_come_from_the_environment(monkeypatch):
    from bot.settings import Settings

    monkeypatch.delenv("HEALTH_PORT", raising=False)
    assert Settings(_env_file=None).health_port == 0  # off unless asked for
    monkeypatch.setenv("HEALTH_PORT", "8090")
    monkeypatch.setenv("HEALTH_HOST", "0.0.0.0")
    settings = Settings(_env_file=None)
    assert (settings.health_port, settings.health_host) == (8090, "0.0.0.0")
    monkeypatch.setenv("HEALTH_PORT", "70000")
    with pytest.raises(ValueError):
        Settings(_env_file=None)


async def test_a_check_may_decide_ok_itself():
    status, body = await serve_and_get(lambda: {"ok": False, "database": "unreachable (OperationalError)",
                                                "model": "kjv"})
    assert status == 503 and body["database"].startswith("unreachable")
    status, body = await serve_and_get(lambda: {"ok": True, "database": "ok", "model": "kjv", "queued": 0})
    assert status == 200 and body == {"ok": True, "database": "ok", "model": "kjv", "queued": 0}


async def test_the_probe_reads_health_port_as_every_command_reads_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEALTH_")}

    def probe_in(**values) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot.health"], cwd=tmp_path, env={**env, **values},
                              capture_output=True, text=True, timeout=60)

    # HEALTH_PORT is 0 (off) unless set: nothing to probe, and it says so
    done = await asyncio.to_thread(probe_in)
    assert done.returncode == 1 and "HEALTH_PORT is 0" in done.stderr
    async with HealthServer("127.0.0.1", 0, lambda: {"ok": True}) as server:
        (tmp_path / ".env").write_text(f"HEALTH_PORT={server.port}\n", encoding="utf-8")
        assert (await asyncio.to_thread(probe_in)).returncode == 0  # .env's port
        # the environment wins over .env (the image sets HEALTH_PORT=8090): nothing listens there
        assert (await asyncio.to_thread(probe_in, HEALTH_PORT=str(free_port()))).returncode == 1
