"""Every setting Mandate reads from the environment, in one place."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("mandate.config")

DEV_KEY_FILE = ".mandate-secret-key"


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _secret_keys() -> list[str]:
    """MANDATE_SECRET_KEY: comma-separated; the first encrypts, all decrypt."""
    raw = os.environ.get("MANDATE_SECRET_KEY", "")
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if keys:
        return keys
    path = Path(DEV_KEY_FILE)
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    log.warning(
        "MANDATE_SECRET_KEY is not set: using a development key kept in %s. "
        "Set MANDATE_SECRET_KEY in production.",
        path.resolve(),
    )
    return [path.read_text().strip()]


@dataclass(frozen=True)
class Settings:
    # "development" (the default) or "production": production refuses to serve without
    # MANDATE_SECRET_KEY and hides field suggestions from error messages.
    env: str = field(default_factory=lambda: os.environ.get("MANDATE_ENV", "development").strip().lower())
    database_url: str = field(
        default_factory=lambda: os.environ.get("DATABASE_URL", "sqlite://mandate.sqlite3")
    )
    introspection: bool = field(default_factory=lambda: _flag("MANDATE_INTROSPECTION", True))
    playground: bool = field(default_factory=lambda: _flag("MANDATE_PLAYGROUND", True))
    # Minutes a password-only or enrolment-only token lives; hours a full session lives.
    partial_token_minutes: int = field(default_factory=lambda: _int("MANDATE_PARTIAL_TOKEN_MINUTES", 10))
    session_hours: int = field(default_factory=lambda: _int("MANDATE_SESSION_HOURS", 12))
    # argon2id cost: the defaults follow RFC 9106's second recommendation; tests lower them.
    argon2_time_cost: int = field(default_factory=lambda: _int("MANDATE_ARGON2_TIME_COST", 3))
    argon2_memory_kib: int = field(default_factory=lambda: _int("MANDATE_ARGON2_MEMORY_KIB", 65536))
    max_body_bytes: int = field(default_factory=lambda: _int("MANDATE_MAX_BODY_BYTES", 262144))

    @property
    def development(self) -> bool:
        return self.env == "development"

    _keys: list[str] | None = field(default=None, repr=False, compare=False)

    @property
    def secret_keys(self) -> list[str]:
        if self._keys is None:
            object.__setattr__(self, "_keys", _secret_keys())
        return self._keys  # type: ignore[return-value]


_settings: Settings | None = None


def get_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = Settings()
    return _settings


def reload_settings() -> Settings:
    """Read the environment again (the CLI and tests change it)."""
    global _settings
    _settings = Settings()
    return _settings
