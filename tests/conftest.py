"""Test-wide settings; every fixture lives in tests/fixtures/ and is loaded here."""

from __future__ import annotations

import os

import pytest
import torch

pytest_plugins = ["tests.fixtures.runs", "tests.fixtures.databases", "tests.fixtures.sandbox", "tests.fixtures.bot"]

# PTB 22 gives RetryAfter.retry_after as a timedelta when this is set, and warns otherwise (and
# warnings are errors here). The service sets it too (cli/main.py).
os.environ.setdefault("PTB_TIMEDELTA", "1")


@pytest.fixture(autouse=True, scope="session")
def _small_thread_count():
    # Tiny models run faster on one thread, and tests then leave the other core to a second process.
    torch.set_num_threads(1)
