"""Alembic is the only way the schema changes: migrations build exactly the models' schema."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import inspect

from db.migrate import current_revision, downgrade, head_revision, schema_diff
from db.models import target_metadata
from db.session import Database

TABLES = {table.name for table in target_metadata.sorted_tables}


def test_upgrade_from_empty_creates_every_table(empty_db):
    assert current_revision(empty_db.engine) is None
    empty_db.upgrade()
    assert current_revision(empty_db.engine) == head_revision()
    assert set(inspect(empty_db.engine).get_table_names()) == TABLES | {"alembic_version"}
    empty_db.upgrade()  # a second upgrade has nothing to do
    assert current_revision(empty_db.engine) == head_revision()


def test_models_and_migrations_agree(shared_db):
    """Autogenerate finds nothing to change after the migrations ran."""
    assert schema_diff(shared_db.engine) == []


def test_downgrade_to_base_and_back(fresh_db):
    downgrade(fresh_db.engine, "base")
    assert current_revision(fresh_db.engine) is None
    assert set(inspect(fresh_db.engine).get_table_names()) <= {"alembic_version"}
    # the comparison above can fail: with the tables gone, autogenerate wants every one back
    assert {op[1].name for op in schema_diff(fresh_db.engine) if op[0] == "add_table"} == TABLES
    fresh_db.upgrade()
    assert current_revision(fresh_db.engine) == head_revision()
    assert schema_diff(fresh_db.engine) == []


def test_concurrent_upgrades_both_succeed(database_url):
    """The bot and the scheduler may start together: one migrates, the other waits and finds head."""
    errors, barrier = [], threading.Barrier(2)

    def start_service():
        with Database(database_url) as database:
            barrier.wait()
            try:
                database.upgrade()
            except Exception as exc:  # collected: an exception in a thread would not fail the test
                errors.append(exc)

    threads = [threading.Thread(target=start_service) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Database(database_url) as database:
        assert current_revision(database.engine) == head_revision()


def test_0002_keeps_posts_and_its_downgrade_drops_only_verseless_rows(fresh_db):
    from datetime import UTC, datetime

    from db import repositories as repo
    from tests.db.helpers import CHANNEL, SAMPLING

    slot = datetime(2030, 1, 1, 9, tzinfo=UTC)
    with fresh_db.transaction() as session:
        verse = repo.add_generation(session, text="1:1 a verse.", model_name="kjv", params=SAMPLING)
        repo.claim_post_slot(session, channel_id=CHANNEL, slot=slot, generation_id=verse.id)
        repo.record_unposted_slot(session, channel_id=CHANNEL, slot=slot.replace(hour=10), error="missed")
    downgrade(fresh_db.engine, "0001")
    with fresh_db.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT generation_id, status FROM posts").all()
    assert rows == [(verse.id, "claimed")]
    fresh_db.upgrade()
    with fresh_db.transaction() as session:
        [post] = repo.recent_posts(session)
        assert (post.generation.text, post.status) == ("1:1 a verse.", "claimed")


def test_services_check_the_schema_instead_of_migrating(tmp_path):
    from db.errors import DatabaseConfigError
    from db.migrate import head_revision, require_head, upgrade

    url = f"sqlite:///{tmp_path / 'r.db'}"
    with Database(url) as database:
        with pytest.raises(DatabaseConfigError, match="has no rnnbot tables yet: run `rnnbot db upgrade` first"):
            require_head(database.engine)
        upgrade(database.engine, "0001")
        with pytest.raises(DatabaseConfigError, match=f"is at revision 0001, this rnnbot needs {head_revision()}"):
            require_head(database.engine)
        database.upgrade()
        require_head(database.engine)  # at head: nothing to say


def test_0004_retires_the_verses_of_failed_posts(fresh_db):
    """Rows written before 0004: a failed post's verse was left a candidate, to be posted again."""
    downgrade(fresh_db.engine, "0003")
    with fresh_db.engine.begin() as connection:
        for n, post_status in ((1, "failed"), (2, "claimed"), (3, None)):
            connection.exec_driver_sql(
                "INSERT INTO generations (id, text, status, model_name, temperature, max_chars, created_at) "
                f"VALUES ({n}, '{n}:1 a verse.', 'candidate', 'kjv', 0.8, 80, CURRENT_TIMESTAMP)")
            if post_status:
                connection.exec_driver_sql("INSERT INTO chats (id, type, first_seen_at) VALUES "
                                           f"({-n}, 'channel', CURRENT_TIMESTAMP)")
                connection.exec_driver_sql("INSERT INTO posts (channel_id, slot, generation_id, status, claimed_at) "
                                           f"VALUES ({-n}, CURRENT_TIMESTAMP, {n}, '{post_status}', CURRENT_TIMESTAMP)")
    fresh_db.upgrade()
    with fresh_db.engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT id, status, reject_reason FROM generations ORDER BY id").all()
    assert rows == [(1, "rejected", "its post failed"), (2, "claimed", None), (3, "candidate", None)]
