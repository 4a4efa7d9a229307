"""Helpers shared by the tests: plain functions (every fixture is in tests/fixtures/)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
import zlib
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from bot.scheduler.candidates import normalise
from bot.scheduler.poster import parse_missed
from db import repositories as repo
from db.session import Database
from sandbox import DEFAULT_USER_ID

ROOT = Path(__file__).resolve().parents[1]
PERIODIC = "the quick brown fox jumps over the lazy dog.\n"

# Sandbox users and channels the tests act as and post to.
ALICE = DEFAULT_USER_ID  # SandboxClient's default user; her private chat has the same id
BOB = 1002
ADMIN_ID = 4242  # the bot tests' admin (ADMIN_USER_IDS)
CHANNEL = "@rnnbot_verses"
LOCKED_CHANNEL = "@not_admin_channel"  # the bot is not an admin there: posting gets 403


def free_port() -> int:
    """A loopback port nothing listens on now (for servers that need a port number up front)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tiny_config(tmp_path: Path, corpus: Path, **changes):
    from trainer.config import TrainConfig

    base = dict(corpus=str(corpus), run_dir=str(tmp_path / "run"), hidden=32, layers=1, seq_len=32,
                batch_size=8, lr=1e-2, warmup_steps=5, max_steps=60, eval_every=30, sample_chars=40,
                log_every=10, dropout=0.0, seed=3)
    base.update(changes)
    return TrainConfig(**base)


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 120):
    """Run the real `rnnbot` entry point in a subprocess."""
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=cwd or ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


# Headless Chromium for the web-page tests (Debian's packages; .ci/run installs them).
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@contextmanager
def new_postgres_database(admin, prefix: str):
    """The URL of a new, empty PostgreSQL database (through the AUTOCOMMIT engine `admin`),
    dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the CLI and processes ---------------------------------------------------------------------

def assert_clean_error(proc, *fragments):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("rnnbot: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


def bot_env(tmp_path, **values) -> dict:
    """The process's environment: nothing inherited that configures the bot, plus `values`; the
    default database (serve.db in tmp_path) is migrated, as `rnnbot db upgrade` would."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TELEGRAM_", "ADMIN_", "DATABASE_", "MODEL_", "CHANNEL_", "HEALTH_", "WEBHOOK_",
                                "LOG_"))}
    env.update(OMP_NUM_THREADS="1", DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}")
    migrate(env["DATABASE_URL"])
    env.update(values)
    return env


def migrate(url: str) -> None:
    """What `rnnbot db upgrade` does, in this process (services check the schema; they do not migrate)."""
    with Database(url) as database:
        database.upgrade()


async def start_process(*args: str, env: dict, cwd) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", *args, cwd=cwd, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def stop_process(process: asyncio.subprocess.Process, timeout: float = 10.0) -> tuple[int, str, str]:
    process.send_signal(signal.SIGTERM)
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.communicate()
        raise AssertionError(f"still running {timeout} s after SIGTERM") from None
    return process.returncode, out.decode(), err.decode()


def sandbox_env(env: dict, sandbox_server, **changes) -> dict:
    """A child process's environment pointed at the sandbox and its channel, plus `changes`."""
    return {**env, "TELEGRAM_BOT_TOKEN": sandbox_server.token, "TELEGRAM_API_BASE_URL": sandbox_server.bot_api_base_url,
            "CHANNEL_ID": CHANNEL, **changes}


async def start_cli(env: dict, cwd: Path, *args: str, log_name: str = "cli.log") -> asyncio.subprocess.Process:
    """A child `rnnbot` whose output goes to a file (a pipe nobody reads would block it)."""
    with open(cwd / log_name, "ab") as log:
        return await asyncio.create_subprocess_exec(sys.executable, "-m", "cli", *args, cwd=cwd,
                                                    env={**os.environ, **env}, stdout=log, stderr=log)


async def until(condition, timeout: float, what: str):
    """Poll a blocking condition (e.g. a database query) in a thread until it holds; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await asyncio.to_thread(condition)
        if result:
            return result
        await asyncio.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_dimensions(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]  # the IHDR chunk is intact
    assert data.endswith(b"IEND\xaeB`\x82")
    return width, height


# --- the bot and the scheduler -----------------------------------------------------------------

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


def all_posts(database: Database) -> list:
    with database.transaction() as session:
        return repo.recent_posts(session, limit=10_000)[::-1]  # oldest slot first


async def check_exactly_once(client, database: Database, step: timedelta = timedelta(seconds=1),
                             arrived_unrecorded: int = 0) -> list:
    """Every sent row is one message in the channel and every channel message is one sent row; no
    text went out twice; every slot (`step` apart) from the first row to the last has a row or is
    named by a "missed" row. Returns the rows.

    `arrived_unrecorded`: how many messages arrived although their process died before recording
    them; each must belong to a row failed as "may or may not be in the channel"."""
    messages = await client.channel_posts(CHANNEL)
    rows = all_posts(database)
    sent = [r for r in rows if r.status == "sent"]
    recorded = {r.message_id for r in sent}
    unrecorded = [m for m in messages if m["message_id"] not in recorded]
    uncertain = {r.generation.text for r in rows if r.status == "failed" and r.generation is not None
                 and "may or may not be in the channel" in (r.error or "")}
    assert len(unrecorded) == arrived_unrecorded and all(m["text"] in uncertain for m in unrecorded)
    messages = [m for m in messages if m["message_id"] in recorded]
    assert sorted(m["message_id"] for m in messages) == sorted(r.message_id for r in sent)
    assert {m["message_id"]: m["text"] for m in messages} == {r.message_id: r.generation.text for r in sent}
    messages += unrecorded
    assert len({normalise(m["text"]) for m in messages}) == len(messages)
    assert not [r for r in rows if r.status == "claimed"]
    covered = {r.slot for r in rows}
    for row in rows:
        missed = parse_missed(row.error)
        if missed:
            count, first, last = missed
            span = {first + step * i for i in range(int((last - first) / step) + 1)}
            assert len(span) == count
            covered |= span
    slots = sorted(r.slot for r in rows)
    every_slot = {slots[0] + step * i for i in range(int((slots[-1] - slots[0]) / step) + 1)}
    assert every_slot <= covered, f"slots neither posted nor recorded: {sorted(every_slot - covered)[:5]}"
    return rows


# --- faults: a database the test can stop, a lock held too long, a full disk ---------------------

def postgres_bin() -> Path | None:
    """The folder with PostgreSQL's initdb and pg_ctl (Debian keeps them off PATH), if installed."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


class OwnPostgres:
    """A PostgreSQL cluster of the test session's own, on its own port, that a test may stop and
    start (the shared server on 5432 is never touched). As root, it runs as the postgres user."""

    def __init__(self, bin_dir: Path):
        import tempfile

        self.bin, self.port = bin_dir, free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="rnnbot-pg-"))
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user:
            shutil.chown(self.folder, self.user)
        self._pg("initdb", "-D", str(self.folder / "data"), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8")

    @property
    def admin_url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._pg("pg_ctl", "-D", str(self.folder / "data"), "-o", options, "-l", str(self.folder / "log"), "-w",
                 "start")

    def stop(self) -> None:
        """Stop at once: open connections are cut, as when the server or its host goes down."""
        self._pg("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")

    @property
    def running(self) -> bool:
        return (self.folder / "data" / "postmaster.pid").exists()

    def remove(self) -> None:
        if self.running:
            self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _pg(self, program: str, *args: str) -> None:
        subprocess.run([str(self.bin / program), *args], check=True, capture_output=True, user=self.user,
                       cwd=self.folder, timeout=60)


@contextmanager
def sqlite_write_lock(path: Path):
    """Hold SQLite's write lock from another connection (as another process would) until the block ends."""
    import sqlite3

    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


@contextmanager
def small_disk(size: str = "4m"):
    """A tmpfs of `size` mounted for the block (root only: skips the test otherwise)."""
    import tempfile

    import pytest

    folder = Path(tempfile.mkdtemp(prefix="rnnbot-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    if not mounted:
        folder.rmdir()
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def fill_disk(folder: Path) -> Path:
    """Fill the file system of `folder` to the last byte; returns the filler file (delete it to free space)."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:  # unbuffered: nothing left to flush on close
        for chunk in (b"\0" * 65536, b"\0"):
            try:
                while True:
                    f.write(chunk)
            except OSError:
                pass
    return filler
