"""Settings, read once from CHUNGSUC_* environment variables and an optional TOML file."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.domain.i18n import LOCALES

TELEGRAM_TOKEN_RE = re.compile(r"^\d{5,}:[A-Za-z0-9_-]{30,}$")
TOKEN_APPENDED = ("telegram_api_url", "zalo_bot_api_url")  # base URLs the token is added to
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _config_file() -> Path | None:
    path = os.environ.get("CHUNGSUC_CONFIG")
    return Path(path) if path else None


class Settings(BaseSettings):
    """Everything configurable, typed. Secrets are SecretStr so they never print."""

    model_config = SettingsConfigDict(env_prefix="CHUNGSUC_", extra="ignore")

    db_url: str = "sqlite+aiosqlite:///var/chungsuc.sqlite3"
    # PostgreSQL connections each process keeps open (workers × this under max_connections).
    db_pool_size: int = Field(default=15, ge=1)
    province: str = "19"
    default_locale: str = "vi"
    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    max_message_chars: int = Field(default=1000, ge=10)
    # The most one pledge may be, per kind, in base units (see bot/domain/amounts.py).
    limit_workdays: int = 365
    limit_land_m2: int = 100_000  # 10 ha
    limit_money: int = 10_000_000_000
    limit_materials: int = 100_000
    # A status import is checked whole in memory (~20x a CSV's size): bigger files are refused.
    import_max_mb: float = Field(default=10, gt=0)
    # Digests and reminders, in Asia/Ho_Chi_Minh time; weekday 0 is Monday.
    digest_hour: int = Field(default=7, ge=0, le=23)
    digest_weekday: int = Field(default=0, ge=0, le=6)
    # Citizen reports (handlers/reports.py): days a report may stay open per category before
    # it shows as overdue, and how many open reports one person may have at once.
    report_due_days: dict[str, int] = Field(
        default_factory=lambda: {
            "roads": 15,
            "power": 7,
            "water": 7,
            "environment": 7,
            "security": 3,
            "services": 15,
            "money": 15,
            "criterion": 30,
            "other": 15,
        }
    )
    report_max_open: int = Field(default=5, ge=1)
    # A sender with this many reports marked spam in 30 days is refused new ones (kindly).
    report_max_spam: int = Field(default=3, ge=1)
    # Photos of project updates the site shows, fetched once from Telegram (bot/web/photos.py).
    photo_dir: str = "var/photos"
    log_level: str = "INFO"
    log_file: str | None = None  # append log lines here, not to stderr (chat: var/chungsuc.log)
    # --- Zalo and the webhook server (bot/channels/zalo_*.py, bot/interfaces/server.py) ---
    zalo_bot_token: SecretStr | None = None
    zalo_bot_api_url: str = "https://bot-api.zaloplatforms.com/bot"  # + token + "/<method>"
    zalo_bot_webhook_secret: SecretStr | None = None  # 8–256 characters
    telegram_webhook_secret: SecretStr | None = None  # 1–256 of A-Z a-z 0-9 _ -
    # Updates Telegram posts at once (setWebhook's max_connections): with several workers behind
    # one address, more than one keeps them all busy; a user's order is kept by the inbox.
    telegram_webhook_max_connections: int = Field(default=40, ge=1, le=100)
    zalo_oa_app_id: str | None = None
    zalo_oa_secret_key: SecretStr | None = None  # signs OA webhook events
    zalo_oa_app_secret: SecretStr | None = None  # refreshes OA access tokens
    zalo_oa_refresh_token: SecretStr | None = None  # the first one; later ones are stored
    zalo_oa_api_url: str = "https://openapi.zalo.me"
    zalo_oa_oauth_url: str = "https://oauth.zaloapp.com"
    zalo_oa_max_clock_skew: int = Field(default=300, ge=1)  # seconds an OA event may be off
    # Anyone can post to a webhook: a body is refused past this size (413) or this time (408).
    webhook_max_body: int = Field(default=256 * 1024, ge=1024)  # bytes
    webhook_body_timeout: float = Field(default=10.0, gt=0)  # seconds to receive a whole body

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in LOCALES:
            raise ValueError(f"must be one of {', '.join(LOCALES)}")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
        return value.upper()

    @field_validator("telegram_api_url", "zalo_bot_api_url", "zalo_oa_api_url", "zalo_oa_oauth_url")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        # Checked here, so a typo is one line at start-up, not a traceback from the HTTP client
        # (whose message would hold the token appended to the URL).
        if any(c.isspace() or not c.isprintable() for c in value):
            raise ValueError("must not contain spaces or control characters")
        try:
            parts = urlsplit(value)
            _ = parts.port  # ValueError for a port that is not a number in 0-65535
        except ValueError as error:
            raise ValueError(f"not a valid URL ({error})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must start with http:// or https:// and name a host")
        try:
            parts.hostname.encode("idna")
        except UnicodeError:
            raise ValueError("the host is not a valid name (an empty or too long label)") from None
        if info.field_name in TOKEN_APPENDED and not parts.path:
            raise ValueError("needs a path, e.g. /bot: the token is appended to it")
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

    def secret_values(self) -> dict[str, str]:
        """Every secret in these settings, by what to print in its place (for the logs)."""
        found: dict[str, str] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value().strip():
                found[f"<CHUNGSUC_{name.upper()}>"] = value.get_secret_value().strip()
        password = _db_password(self.db_url)
        if password:
            found["<CHUNGSUC_DB_URL password>"] = password
        return found

    # --- Broadcasts (bot/broadcast/): Telegram's limits, the in-flight window, Zalo OA window ---
    broadcast_rate: float = Field(default=30, gt=0)  # messages/s overall (Telegram: ~30)
    broadcast_paid_rate: float = Field(default=1000, gt=0)  # with allow_paid_broadcast
    broadcast_per_chat_interval: float = Field(default=1.0, ge=0)  # seconds between two to a chat
    broadcast_group_per_minute: int = Field(default=20, ge=1)  # to one group chat
    broadcast_reply_reserve: float = Field(default=0.1, ge=0, lt=1)  # of the bucket, for replies
    broadcast_max_attempts: int = Field(default=5, ge=1)  # network errors and 5xx, then failed
    broadcast_in_flight: int = Field(default=16, ge=1)  # claimed, unrecorded: the duplicate bound
    zalo_oa_window_days: int = Field(default=7, ge=1)  # OA may message only this long after


def _db_password(url: str) -> str | None:
    """The password in a database URL, as written there."""
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def load_settings(**overrides: Any) -> Settings:
    """Read the settings once; overrides win (used by tests and the CLI)."""
    return Settings(**overrides)
