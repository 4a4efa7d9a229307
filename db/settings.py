"""Where every `rnnbot` command reads its settings, and the database settings they share.

One order everywhere: a command-line flag, then the environment, then `.env` in the working
directory, then the default. pydantic-settings gives that order: values passed to the class
(the flags) beat the environment, which beats the `.env` file.

    DatabaseSettings().database_url                       # env, .env or the default
    DatabaseSettings(database_url=args.database_url)      # a flag wins
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Shared by every settings class (bot/settings.py; cli/options.py builds `train`'s from its dataclass).
# An empty value counts as unset (compose writes ${X:-} for an unset X), so the next source or the
# default applies. validate_by_name: a field with an env alias (RNNBOT_RETENTION_DAYS) still takes
# its own name as a flag's value.
SOURCES = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True,
                             validate_by_name=True)
DEFAULT_DATABASE_URL = "sqlite:///data/rnnbot.db"


class DatabaseSettings(BaseSettings):
    """What the `db` commands need; the bot's Settings extend it, so each is declared once."""

    model_config = SOURCES

    database_url: str = Field(DEFAULT_DATABASE_URL, description="SQLite file or PostgreSQL URL")
    retention_days: float | None = Field(
        None, gt=0, validation_alias="RNNBOT_RETENTION_DAYS",
        description="`rnnbot db prune` deletes prompts and completions older than this")

