"""Every db test runs on SQLite and on PostgreSQL ($TEST_DATABASE_URL; skipped only when unset).

Isolation: tests that need real commits (migrations, concurrency, the CLI, the training recorder)
get a database of their own, created for the test and dropped after it. The others share one
migrated database per backend and run inside a transaction that is rolled back afterwards.
"""

from __future__ import annotations

import copy
import os
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from db.session import Database, resolve_url
from tests.helpers import new_postgres_database

POSTGRES_ENV = "TEST_DATABASE_URL"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def postgres_admin():
    """An AUTOCOMMIT engine on $TEST_DATABASE_URL, for CREATE/DROP DATABASE."""
    raw = os.environ.get(POSTGRES_ENV)
    if not raw:
        pytest.skip(f"{POSTGRES_ENV} is not set")
    engine = create_engine(resolve_url(raw), isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@contextmanager
def scratch_database(request, folder: Path):
    """The URL of a new, empty database on the requested backend, dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{folder / 'rnnbot.db'}"
        return
    with new_postgres_database(request.getfixturevalue("postgres_admin"), "rnnbot_test") as url:
        yield url


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path) -> str:
    """A new empty database for this test alone."""
    with scratch_database(request, tmp_path) as url:
        yield url


@pytest.fixture
def empty_db(database_url):
    """A Database of its own with no tables yet."""
    database = Database(database_url)
    yield database
    database.close()


@pytest.fixture
def fresh_db(empty_db):
    """A Database of its own, migrated to head; transactions really commit."""
    empty_db.upgrade()
    return empty_db


@pytest.fixture(scope="session", params=BACKENDS)
def shared_db(request, tmp_path_factory):
    with scratch_database(request, tmp_path_factory.mktemp("shared")) as url:
        database = Database(url)
        database.upgrade()
        yield database
        database.close()


@pytest.fixture
def db(shared_db):
    """The shared migrated database inside an outer transaction that is rolled back after the test.

    Each `with db.transaction()` in the test is a SAVEPOINT: released when the block succeeds,
    rolled back when it raises, exactly like a real transaction as far as the test can see.
    """
    with shared_db.engine.connect() as connection:
        outer = connection.begin()
        isolated = copy.copy(shared_db)
        isolated.sessions = sessionmaker(bind=connection, expire_on_commit=False,
                                         join_transaction_mode="create_savepoint")
        try:
            yield isolated
        finally:
            outer.rollback()
