"""DATABASE_URL resolution, SQLite settings, timestamps, and one transaction per operation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from db import repositories as repo
from db.errors import DatabaseConfigError
from db.models import User
from db.session import DEFAULT_DATABASE_URL, Database, resolve_url
from models.errors import RnnbotError


def test_url_defaults_to_sqlite_in_data_dir(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert resolve_url().render_as_string() == DEFAULT_DATABASE_URL == "sqlite:///data/rnnbot.db"
    monkeypatch.setenv("DATABASE_URL", "sqlite:////srv/bot.db")
    assert resolve_url().database == "/srv/bot.db"
    assert resolve_url("sqlite:///given.db").database == "given.db"  # an explicit URL wins
    monkeypatch.delenv("DATABASE_URL")
    (tmp_path / ".env").write_text("DATABASE_URL=sqlite:////srv/from-dot-env.db\n", encoding="utf-8")
    assert resolve_url().database == "/srv/from-dot-env.db"  # .env, as every command reads it


@pytest.mark.parametrize("raw", ["postgresql://u:pw@db/rnnbot", "postgres://u:pw@db/rnnbot"])
def test_plain_postgres_urls_use_psycopg3(raw):
    url = resolve_url(raw)
    assert url.drivername == "postgresql+psycopg"
    assert (url.username, url.password, url.host, url.database) == ("u", "pw", "db", "rnnbot")


@pytest.mark.parametrize("raw, fragment", [("mysql://u@h/d", "unsupported database 'mysql'"),
                                           ("not a url", "not a database URL")])
def test_bad_urls_are_refused_clearly(raw, fragment):
    with pytest.raises(DatabaseConfigError, match=fragment) as info:
        resolve_url(raw)
    assert isinstance(info.value, RnnbotError)


def test_sqlite_file_and_folder_are_created_on_first_use(tmp_path):
    path = tmp_path / "deep" / "er" / "rnnbot.db"
    with Database(f"sqlite:///{path}") as database:
        database.upgrade()
    assert path.is_file()


def test_sqlite_connections_use_wal_busy_timeout_and_foreign_keys(tmp_path):
    with Database(f"sqlite:///{tmp_path / 'x.db'}") as database, database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_timestamps_come_back_as_aware_utc(db):
    seen = datetime(2031, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=3)))
    with db.transaction() as session:
        repo.upsert_user(session, user_id=7, now=seen)
    with db.transaction() as session:
        user = session.get(User, 7)
        assert user.first_seen_at.tzinfo == UTC
        assert user.first_seen_at == seen and user.first_seen_at.hour == 4


def test_naive_datetimes_are_refused(db):
    with pytest.raises(Exception, match="naive datetime"), db.transaction() as session:
        repo.upsert_user(session, user_id=7, now=datetime(2031, 1, 1))


def test_a_failed_operation_leaves_nothing_behind(db):
    with pytest.raises(ZeroDivisionError), db.transaction() as session:
        repo.upsert_user(session, user_id=1, username="ann")
        repo.upsert_chat(session, chat_id=1, type="private")
        raise ZeroDivisionError
    with db.transaction() as session:
        assert repo.get_user(session, user_id=1) is None
        assert session.execute(text("SELECT count(*) FROM chats")).scalar() == 0
