"""Settings, read once from CHUNGSUC_* environment variables and an optional TOML file."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

TELEGRAM_TOKEN_RE = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$")
LOCALES = ("vi", "en")


def _config_file() -> Path | None:
    path = os.environ.get("CHUNGSUC_CONFIG")
    return Path(path) if path else None


class Settings(BaseSettings):
    """Everything configurable, typed. Secrets are SecretStr so they never print."""

    model_config = SettingsConfigDict(env_prefix="CHUNGSUC_", extra="ignore")

    db_url: str = "sqlite+aiosqlite:///var/chungsuc.sqlite3"
    province: str = "19"
    default_locale: str = "vi"
    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    max_message_chars: int = Field(default=1000, ge=10)
    # The most one pledge may be, per kind, in base units (see bot/amounts.py).
    limit_workdays: int = 365
    limit_land_m2: int = 100_000  # 10 ha
    limit_money: int = 10_000_000_000
    limit_materials: int = 100_000
    # Digests and reminders, in Asia/Ho_Chi_Minh time; weekday 0 is Monday.
    digest_hour: int = Field(default=7, ge=0, le=23)
    digest_weekday: int = Field(default=0, ge=0, le=6)
    log_level: str = "INFO"
    # --- Zalo and the webhook server (bot/channels/zalo_*.py, bot/server.py) ---
    zalo_bot_token: SecretStr | None = None
    zalo_bot_api_url: str = "https://bot-api.zaloplatforms.com/bot"  # + token + "/<method>"
    zalo_bot_webhook_secret: SecretStr | None = None  # 8–256 characters
    telegram_webhook_secret: SecretStr | None = None  # 1–256 of A-Z a-z 0-9 _ -
    zalo_oa_app_id: str | None = None
    zalo_oa_secret_key: SecretStr | None = None  # signs OA webhook events
    zalo_oa_app_secret: SecretStr | None = None  # refreshes OA access tokens
    zalo_oa_refresh_token: SecretStr | None = None  # the first one; later ones are stored
    zalo_oa_api_url: str = "https://openapi.zalo.me"
    zalo_oa_oauth_url: str = "https://oauth.zaloapp.com"
    zalo_oa_max_clock_skew: int = Field(default=300, ge=1)  # seconds an OA event may be off

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in LOCALES:
            raise ValueError(f"must be one of {', '.join(LOCALES)}")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    def telegram_token_problem(self) -> str | None:
        """Why the Telegram token cannot be used, or None when it looks right."""
        if self.telegram_token is None or not self.telegram_token.get_secret_value():
            return "CHUNGSUC_TELEGRAM_TOKEN is not set"
        if not TELEGRAM_TOKEN_RE.match(self.telegram_token.get_secret_value().strip()):
            return "CHUNGSUC_TELEGRAM_TOKEN does not look like a bot token (digits:secret)"
        return None

    # --- Broadcasts (bot/broadcast/): Telegram's limits, the in-flight window, Zalo OA window ---
    broadcast_rate: float = Field(default=30, gt=0)  # messages/s overall (Telegram: ~30)
    broadcast_paid_rate: float = Field(default=1000, gt=0)  # with allow_paid_broadcast
    broadcast_per_chat_interval: float = Field(default=1.0, ge=0)  # seconds between two to a chat
    broadcast_group_per_minute: int = Field(default=20, ge=1)  # to one group chat
    broadcast_reply_reserve: float = Field(default=0.1, ge=0, lt=1)  # of the bucket, for replies
    broadcast_max_attempts: int = Field(default=5, ge=1)  # network errors and 5xx, then failed
    broadcast_in_flight: int = Field(default=16, ge=1)  # claimed, unrecorded: the duplicate bound
    zalo_oa_window_days: int = Field(default=7, ge=1)  # OA may message only this long after


def load_settings(**overrides: Any) -> Settings:
    """Read the settings once; overrides win (used by tests and the CLI)."""
    return Settings(**overrides)
