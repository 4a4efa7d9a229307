"""Engines and sessions: DATABASE_URL resolution, SQLite pragmas, one transaction per operation."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker

from db.errors import DatabaseConfigError
from db.settings import DEFAULT_DATABASE_URL, DatabaseSettings

T = TypeVar("T")

SQLITE_BUSY_TIMEOUT_MS = 10_000
POSTGRES_DRIVER = "postgresql+psycopg"


def resolve_url(url: str | URL | None = None) -> URL:
    """The given URL, else DATABASE_URL (environment, then .env), else the SQLite default;
    postgresql:// means psycopg 3."""
    raw = url if url is not None else DatabaseSettings().database_url
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise DatabaseConfigError(f"not a database URL: {str(raw)!r} "
                                  f"(expected e.g. {DEFAULT_DATABASE_URL} or postgresql://user@host/db)") from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername=POSTGRES_DRIVER)
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise DatabaseConfigError(f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL")
    return parsed


def safe_url(url: str | URL | None = None) -> str:
    """The URL with its password hidden, for messages and logs."""
    return resolve_url(url).render_as_string(hide_password=True)


def create_db_engine(url: str | URL | None = None, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
                     **kwargs) -> Engine:
    """`busy_timeout_ms`: how long a SQLite writer waits for another process's lock."""
    parsed = resolve_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, **kwargs)
        event.listen(engine, "connect", lambda dbapi_connection, _: _sqlite_on_connect(dbapi_connection,
                                                                                     busy_timeout_ms))
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


def _sqlite_on_connect(dbapi_connection, busy_timeout_ms: int) -> None:
    # We emit BEGIN ourselves (below), so sqlite3's legacy implicit transactions are switched off.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    _enable_wal(cursor, busy_timeout_ms)
    cursor.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL, much faster
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()


def _enable_wal(cursor, busy_timeout_ms: int) -> None:
    """WAL: readers do not block the writer, so the bot and the scheduler can share the file.

    The mode is stored in the file. Switching needs an exclusive lock and does not wait for it
    (busy_timeout does not apply), so a connection opened while another sets up a new file retries.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _sqlite_begin(connection) -> None:
    # IMMEDIATE takes the write lock up front, waiting up to busy_timeout for it. A deferred BEGIN
    # that reads first and writes later fails at once with "database is locked" when another
    # process committed in between; this way every operation is one real, serialised transaction
    # (DDL included, so a failed migration leaves nothing behind).
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def unavailable_reason(exc: BaseException) -> str | None:
    """One line saying why the database could not take a call when `exc` means it is unreachable,
    stopped, locked or full (worth trying again later); None for any other error (bad data, a bug).

    The line is the driver's first line: it names the host or file, never a password or a value."""
    if isinstance(exc, PoolTimeout):
        return "no database connection became free in time"
    if not isinstance(exc, OperationalError | InterfaceError) and not (
            isinstance(exc, DBAPIError) and exc.connection_invalidated):
        return None
    text = str(exc.orig or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextmanager
def database_errors(url: str | URL | None = None) -> Iterator[None]:
    """Turn "cannot connect" / "database is locked" into one clear line for the user."""
    try:
        yield
    except OperationalError as exc:
        raise DatabaseConfigError(f"database {safe_url(url)}: {unavailable_reason(exc)}") from exc


class Database:
    """An engine plus a session factory. Repository functions take the session it hands out:

        db = Database()                      # DATABASE_URL (env, .env) or sqlite:///data/rnnbot.db
        db.upgrade()                         # apply migrations (`rnnbot db upgrade` does)
        with db.transaction() as session:    # commits on success, rolls back on any error
            upsert_user(session, user_id=42, username="ann")
    """

    def __init__(self, url: str | URL | None = None, **engine_kwargs):
        self.url = resolve_url(url)
        self.engine = create_db_engine(self.url, **engine_kwargs)
        # Objects stay readable after the commit, once the `with` block has closed the session.
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._running = 0  # run() calls on worker threads; close() lets them finish
        self._idle = threading.Condition()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.sessions.begin() as session:
            yield session

    async def run(self, work: Callable[[Session], T]) -> T:
        """`work(session)` in one transaction on a worker thread: a SQLite writer may wait up to its
        busy timeout for another process's lock, and PostgreSQL is a network round trip; neither may
        stall an event loop that serves everyone else."""
        def in_transaction() -> T:
            with self._idle:
                self._running += 1
            try:
                with self.transaction() as session:
                    return work(session)
            finally:
                with self._idle:
                    self._running -= 1
                    self._idle.notify_all()

        # A cancelled caller stops waiting, not the thread: close() waits for it.
        return await asyncio.to_thread(in_transaction)

    def upgrade(self, revision: str = "head") -> None:
        from db.migrate import upgrade

        upgrade(self.engine, revision)

    def close(self, timeout: float = 10.0) -> None:
        """Close the connections, once calls still running on worker threads are done (a connection
        they hand back after the pool is gone would never be closed)."""
        with self._idle:
            self._idle.wait_for(lambda: self._running == 0, timeout)
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"
