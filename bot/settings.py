"""Service configuration: flags (where a command has them), the environment, `.env`, defaults.

The order and the `.env` file are db/settings.py's SOURCES, which every command shares.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from bot.logs import LogSettings
from db.settings import SOURCES, DatabaseSettings
from models.bundled import DEFAULT_RUN_DIR
from models.choices import DEVICE_HELP

WEBHOOK_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class Settings(DatabaseSettings, LogSettings):
    """Everything `serve`, `scheduler`, `post` and `sandbox` read (database_url, retention_days and
    log_format are declared in the classes it extends, which commands that need only those use)."""

    model_config = SOURCES

    # Telegram
    telegram_bot_token: SecretStr = Field(SecretStr(""), description="bot token from @BotFather")
    telegram_api_base_url: str = Field("", description="empty = Telegram; else e.g. http://127.0.0.1:8081/bot")
    admin_user_ids: Annotated[frozenset[int], NoDecode] = Field(frozenset(), description="comma-separated")
    # model
    model_path: str = Field("", description="run directory or checkpoint file of the default model; empty = "
                                            "a trained run in MODEL_RUN_DIR, else the bundled KJV model")
    model_run_dir: str = Field(DEFAULT_RUN_DIR, description="where `rnnbot train` puts the model (used when "
                                                            "MODEL_PATH is empty and it holds a checkpoint)")
    # generation
    default_temperature: float = 0.8
    default_length: int = 280
    max_length: int = 1000
    max_prompt_chars: int = 4096
    queue_size: int = Field(64, description="pending generation requests before users are told to retry")
    max_batch: int = Field(64, description="requests the worker completes in one batched call")
    batch_wait_ms: float = Field(5.0, description="how long the worker waits to fill a batch")
    heavy_workers: int = Field(1, ge=1, le=64, description="threads for /neuron pictures and candidate scoring")
    heavy_queue_size: int = Field(8, ge=0, description="more such jobs that may wait before users are told to retry")
    device: str = Field("auto", description=f"where models generate: {DEVICE_HELP}")
    generation_precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "auto", description="weights generation steps run on; auto = int8 where it is faster for the batch")
    # per-user rate limit: at most rate_limit_count completions per rate_limit_window_s
    rate_limit_count: int = 5
    rate_limit_window_s: float = 30.0
    # webhook mode (several bot replicas behind a load balancer); empty WEBHOOK_URL = long polling
    webhook_url: str = Field("", description="public HTTPS URL Telegram sends updates to; empty = long polling")
    webhook_listen: str = Field("127.0.0.1", description="the webhook server's address; 0.0.0.0 in a container")
    webhook_port: int = Field(8443, ge=1, le=65535, description="port the bot's webhook server listens on")
    webhook_path: str = Field("", description="path it serves; empty = the path of WEBHOOK_URL")
    webhook_secret: SecretStr = Field(SecretStr(""), description="Telegram sends it with every update; required "
                                                                 "with WEBHOOK_URL (1-256 of A-Z a-z 0-9 _ -)")
    # writes that wait while the database is unavailable (db/outbox.py)
    outbox_dir: str = Field("data/outbox", description="where they are kept, so a restart still writes them")
    outbox_max_writes: int = Field(10_000, ge=1, description="at most this many wait; later ones are dropped")
    # health endpoint (bot/health.py): GET http://HEALTH_HOST:HEALTH_PORT/healthz
    health_port: int = Field(0, ge=0, le=65535, description="0 = no health endpoint")
    health_host: str = Field("127.0.0.1", description="0.0.0.0 to let a load balancer or orchestrator probe it")
    # scheduled posting to a channel (bot/scheduler)
    channel_id: str = Field("", description="channel to post to: numeric id or @name; empty = no posting")
    post_schedule: str = Field("0 */3 * * *", description="5-field cron (UTC) or an interval: 90s, 10m, 3h")
    post_in_bot: bool = Field(True, description="post from `rnnbot serve`; false when `rnnbot scheduler` runs")
    post_model: str = Field("", description="model name to post with; empty = the default model")
    post_corpus: str = Field("", description="corpus that posts must not copy; empty = the model's, none = off")
    post_temperature: float = Field(0.8, ge=0.0, le=5.0)
    post_min_chars: int = Field(40, ge=1, le=4096)
    post_max_chars: int = Field(280, ge=1, le=4096, description="tweet-sized by default; Telegram allows 4096")
    post_candidates: int = Field(16, ge=1, le=256, description="samples generated per round (K)")
    post_max_unknown_words: int = Field(0, ge=-1, description="words not in the training corpus a post (and "
                                                              "/verse) may contain; -1 = no limit")
    post_buffer_size: int = Field(4, ge=1, le=256, description="scored candidates kept ready")
    post_starved_rounds: int = Field(3, ge=1, description="rounds in a row without an acceptable candidate "
                                                          "before a warning (and the admins are told once)")
    post_misfire_grace_s: float = Field(600.0, ge=0.0, description="post a slot missed while down this late")
    post_retry_window_s: float = Field(300.0, ge=1.0, description="keep retrying a slot's send this long")
    post_send_timeout_s: float = Field(20.0, gt=0.0, description="connect/write/read timeout of one send")

    @field_validator("admin_user_ids", mode="before")
    @classmethod
    def _split_ids(cls, value):
        if isinstance(value, str):
            try:
                return frozenset(int(part) for part in value.replace(" ", "").split(",") if part)
            except ValueError:
                raise ValueError("ADMIN_USER_IDS must be comma-separated numeric Telegram user ids") from None
        return value

    @field_validator("webhook_url")
    @classmethod
    def _check_webhook_url(cls, value: str) -> str:
        value = value.strip()
        if value and not re.match(r"^https?://[^/\s]+(/\S*)?$", value):
            raise ValueError("WEBHOOK_URL must be an https:// URL, e.g. https://bot.example.com/telegram")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and not WEBHOOK_SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)")
        return value

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self) -> Settings:
        if self.webhook_url and not self.webhook_secret.get_secret_value():
            raise ValueError("WEBHOOK_SECRET must be set with WEBHOOK_URL: without it anyone who finds the URL "
                             "can send the bot fake updates (generate one: openssl rand -hex 32)")
        return self

    @property
    def webhook_url_path(self) -> str:
        """The path the webhook server serves (no leading slash, as PTB wants it)."""
        path = self.webhook_path or urlsplit(self.webhook_url).path
        return path.strip("/")

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.admin_user_ids
