"""Service configuration, from the environment (and an optional .env file)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite:///data/rnnbot.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Telegram
    telegram_bot_token: SecretStr = Field(SecretStr(""), description="bot token from @BotFather")
    telegram_api_base_url: str = Field("", description="empty = Telegram; else e.g. http://127.0.0.1:8081/bot")
    admin_user_ids: Annotated[frozenset[int], NoDecode] = Field(frozenset(), description="comma-separated")
    # storage and model
    database_url: str = DEFAULT_DATABASE_URL
    model_path: str = Field("runs/kjv", description="run directory or checkpoint file of the default model")
    # generation
    default_temperature: float = 0.8
    default_length: int = 280
    max_length: int = 1000
    max_prompt_chars: int = 4096
    queue_size: int = Field(64, description="pending generation requests before users are told to retry")
    max_batch: int = Field(64, description="requests the worker completes in one batched call")
    batch_wait_ms: float = Field(5.0, description="how long the worker waits to fill a batch")
    # per-user rate limit: at most rate_limit_count completions per rate_limit_window_s
    rate_limit_count: int = 5
    rate_limit_window_s: float = 30.0

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _split_ids(cls, value):
        if isinstance(value, str):
            try:
                return frozenset(int(part) for part in value.replace(" ", "").split(",") if part)
            except ValueError:
                raise ValueError("ADMIN_USER_IDS must be comma-separated numeric Telegram user ids") from None
        return value

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.admin_user_ids
