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
    log_level: str = "INFO"

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


def load_settings(**overrides: Any) -> Settings:
    """Read the settings once; overrides win (used by tests and the CLI)."""
    return Settings(**overrides)
