"""Alembic environment and revisions; run them with `rnnbot db upgrade` (see db/migrate.py)."""
