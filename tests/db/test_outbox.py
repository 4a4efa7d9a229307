"""The outbox: writes that wait while the database is unavailable, in order, bounded, in a file.

The outage here is SQLite's write lock held by another connection past a short busy timeout."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from db.outbox import Outbox
from db.session import Database
from tests.helpers import sqlite_write_lock, wait_until


@pytest.fixture
def locked_db(tmp_path):
    """A SQLite database whose writers give up after 0.1 s; `path` is its file."""
    database = Database(f"sqlite:///{tmp_path / 'outbox.db'}", busy_timeout_ms=100)
    with database.transaction() as session:
        session.execute(text("CREATE TABLE notes (id INTEGER PRIMARY KEY, n INTEGER UNIQUE, body TEXT NOT NULL)"))
    database.path = tmp_path / "outbox.db"
    yield database
    database.close()


def add_note(session, data: dict) -> None:
    """Idempotent, as an applier must be: a replayed note is written once."""
    session.execute(text("INSERT INTO notes (n, body) VALUES (:n, :body) ON CONFLICT (n) DO NOTHING"), data)


def notes(database) -> list[tuple]:
    with database.transaction() as session:
        return [tuple(row) for row in session.execute(text("SELECT n, body FROM notes ORDER BY id"))]


def outbox_for(database, path, **options) -> Outbox:
    outbox = Outbox(database, path=path, retry_s=0.05, **options)
    outbox.register("note", add_note)
    return outbox


async def test_writes_wait_in_order_while_the_database_is_locked(locked_db, tmp_path):
    outbox = outbox_for(locked_db, tmp_path / "box" / "serve.jsonl")
    assert await outbox.write("note", {"n": 1, "body": "now"}) is True
    with sqlite_write_lock(locked_db.path):
        assert await outbox.write("note", {"n": 3, "body": "late"}) is False
        assert not outbox.writes_ok
        # Behind a waiting write, a new one waits too (applied in order, never before it).
        assert await outbox.write("note", {"n": 2, "body": "later"}) is False
        lines = (tmp_path / "box" / "serve.jsonl").read_text().splitlines()
        assert [json.loads(line)["data"]["n"] for line in lines] == [3, 2]
    await wait_until(lambda: outbox.pending == 0, what="the waiting writes applied")
    assert notes(locked_db) == [(1, "now"), (3, "late"), (2, "later")]
    assert outbox.writes_ok and (tmp_path / "box" / "serve.jsonl").read_text() == ""
    await outbox.stop()
    outbox.close()


async def test_other_errors_are_the_callers_and_refused_waiting_writes_are_dropped(locked_db, tmp_path):
    outbox = outbox_for(locked_db, None)
    with pytest.raises(IntegrityError):  # NOT NULL
        await outbox.write("note", {"n": 1, "body": None})
    with sqlite_write_lock(locked_db.path):
        await outbox.write("note", {"n": 1, "body": None})  # waits: the lock refused it first
        await outbox.write("note", {"n": 2, "body": "fine"})
    assert await outbox.flush() == 1  # the bad one is dropped, the next goes through
    assert notes(locked_db) == [(2, "fine")] and outbox.pending == 0
    await outbox.stop()


async def test_at_most_max_writes_wait_and_a_user_can_be_forgotten(locked_db, tmp_path):
    outbox = outbox_for(locked_db, tmp_path / "serve.jsonl", max_writes=2)
    with sqlite_write_lock(locked_db.path):
        for n in (1, 2, 3):
            await outbox.write("note", {"n": n, "body": f"user {n % 2}"})
        assert (outbox.pending, outbox.dropped) == (2, 1)
        assert await outbox.discard(lambda w: w.data["body"] == "user 1") == 1
        assert len((tmp_path / "serve.jsonl").read_text().splitlines()) == 1
    await outbox.flush()
    assert notes(locked_db) == [(2, "user 0")]
    await outbox.stop()
    outbox.close()


async def test_a_restart_applies_what_waited_and_takes_over_a_stopped_processs_file(locked_db, tmp_path):
    box = tmp_path / "box"
    first, second = outbox_for(locked_db, box / "serve.jsonl"), outbox_for(locked_db, box / "serve.jsonl")
    assert (first.path.name, second.path.name) == ("serve.jsonl", "serve-2.jsonl")  # two live processes
    with sqlite_write_lock(locked_db.path):
        await first.write("note", {"n": 1, "body": "first's"})
        await second.write("note", {"n": 2, "body": "second's"})
        await first.stop(timeout=0.5)
        await second.stop(timeout=0.5)
    first.close()
    second.close()
    with (box / "serve.jsonl").open("a") as spill:
        spill.write('{"kind": "note", "data": {"n": 9')  # a line cut short by a crash

    restarted = outbox_for(locked_db, box / "serve.jsonl")  # both files are free now: it takes both
    assert [w.data["n"] for w in restarted.waiting()] == [1, 2]
    assert not (box / "serve-2.jsonl").exists()
    await restarted.flush()
    again = outbox_for(locked_db, box / "other.jsonl")
    await again.write("note", {"n": 1, "body": "first's"})  # applied twice by a crash: still one row
    assert notes(locked_db) == [(1, "first's"), (2, "second's")]
    for outbox in (restarted, again):
        await outbox.stop()
        outbox.close()
