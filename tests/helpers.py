"""Helpers shared by the tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PERIODIC = "the quick brown fox jumps over the lazy dog.\n"


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
