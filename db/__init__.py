"""Storage: SQLAlchemy models, Alembic migrations, and the repository functions the rest calls.

    from db.session import Database
    from db import repositories as repo

    db = Database()            # DATABASE_URL (environment, then .env), default sqlite:///data/rnnbot.db
    db.upgrade()
    with db.transaction() as session:
        repo.upsert_user(session, user_id=42, username="ann")
"""

import logging

# Alembic logs its plugins (on import) and its context (on every call) at INFO; db.migrate logs one
# line per migration run instead. Left alone when configured explicitly or under --verbose.
if logging.getLogger("alembic").level == logging.NOTSET and logging.getLogger().getEffectiveLevel() > logging.DEBUG:
    logging.getLogger("alembic").setLevel(logging.WARNING)
