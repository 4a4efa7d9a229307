"""Alembic, driven from Python: no alembic.ini, the scripts ship inside the package."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from db.base import UTCDateTime
from db.models import target_metadata

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Serialises concurrent upgrades (bot and scheduler starting together) on PostgreSQL;
# on SQLite, BEGIN IMMEDIATE already does.
ADVISORY_LOCK_KEY = 0x726E6E626F74  # "rnnbot"


def render_item(type_: str, obj, autogen_context):
    """Autogenerate writes our UTCDateTime as the plain type it stands for."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


# Shared by env.py and schema_diff, so the test that compares models and migrations sees what
# `rnnbot db revision` would.
CONTEXT_OPTIONS = {
    "target_metadata": target_metadata,
    "compare_type": True,
    "render_as_batch": True,  # SQLite cannot ALTER most things: batch mode rebuilds the table
    "render_item": render_item,
}


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """One connection and one transaction for a whole migration run."""
    with engine.connect() as connection:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            # Batch mode drops and recreates tables; with foreign keys on, that would cascade.
            # The pragma is ignored inside a transaction, so it goes straight to the driver first.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
        try:
            with connection.begin():
                if engine.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
                yield connection
        finally:
            if sqlite:
                connection.connection.driver_connection.execute("PRAGMA foreign_keys = ON")


def _migrate(engine: Engine, step, revision: str) -> None:
    before = current_revision(engine)
    with migration_connection(engine) as connection:
        step(alembic_config(connection), revision)
    after = current_revision(engine)
    if after != before:
        log.info("database migrated from %s to %s", before or "empty", after or "empty")


def upgrade(engine: Engine, revision: str = "head") -> None:
    _migrate(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    _migrate(engine, command.downgrade, revision)


def new_revision(engine: Engine, message: str) -> Path:
    """Autogenerate a migration from the difference between the models and the database."""
    cfg = alembic_config()
    rev_id = f"{len(list(ScriptDirectory.from_config(cfg).walk_revisions())) + 1:04d}"  # 0001, 0002, ...
    with migration_connection(engine) as connection:
        cfg.attributes["connection"] = connection
        script = command.revision(cfg, message=message, autogenerate=True, rev_id=rev_id)
    return Path(script.path)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def require_head(engine: Engine) -> None:
    """Raise DatabaseConfigError unless the schema is at the newest revision. Services check instead
    of migrating: one `rnnbot db upgrade` migrates (compose's migrate service), replicas never race."""
    from db.errors import DatabaseConfigError

    current, head = current_revision(engine), head_revision()
    if current == head:
        return
    where = engine.url.render_as_string(hide_password=True)
    state = "has no rnnbot tables yet" if current is None else f"is at revision {current}, this rnnbot needs {head}"
    raise DatabaseConfigError(f"database {where} {state}: run `rnnbot db upgrade` first")


def schema_diff(engine: Engine) -> list:
    """What autogenerate would change: empty when models and the migrated database agree."""
    with engine.connect() as connection:
        options = {k: v for k, v in CONTEXT_OPTIONS.items() if k != "target_metadata"}
        context = MigrationContext.configure(connection, opts=options)
        return compare_metadata(context, target_metadata)
