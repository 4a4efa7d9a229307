"""Alembic environment: models from db.models, the connection from db.migrate."""

from alembic import context

from db.migrate import CONTEXT_OPTIONS, migration_connection
from db.session import create_db_engine, resolve_url


def run_offline() -> None:
    """`--sql` mode: print the DDL instead of running it."""
    url = resolve_url(context.config.get_main_option("sqlalchemy.url") or None)
    context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **CONTEXT_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:  # db.migrate opened it, inside one transaction
        context.configure(connection=connection, **CONTEXT_OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        return
    # A plain `alembic` command line: sqlalchemy.url from its ini file, else $DATABASE_URL.
    engine = create_db_engine(context.config.get_main_option("sqlalchemy.url") or None)
    try:
        with migration_connection(engine) as connection:
            context.configure(connection=connection, **CONTEXT_OPTIONS)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
