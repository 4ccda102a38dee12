"""Process settings, read from the environment with the ``ZHIXING_`` prefix."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# A known, public value: fine on a laptop, refused in production (see check below).
DEVELOPMENT_SECRET = "zhixing-development-secret-do-not-use-in-production"  # noqa: S105


class IceServer(BaseModel):
    """One RTCIceServer as the browser takes it."""

    model_config = ConfigDict(extra="forbid")

    urls: str | list[str] = Field(description="stun:, turn: or turns: URLs")
    username: str | None = None
    credential: str | None = None

    @field_validator("urls")
    @classmethod
    def _ice_urls(cls, value: str | list[str]) -> str | list[str]:
        for url in [value] if isinstance(value, str) else value:
            if not url.startswith(("stun:", "turn:", "turns:")):
                raise ValueError(f"an ICE server URL starts with stun:, turn: or turns: ({url!r})")
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ZHIXING_", env_file=".env", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///zhixing.db"
    # PostgreSQL connection pool of each process (SQLite opens a connection per use). A process
    # holds at most pool size + overflow connections: keep that sum over every API and worker
    # process below the server's max_connections.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout_seconds: float = Field(default=30, gt=0)
    # Connections older than this are replaced (firewalls between courts drop idle ones).
    db_pool_recycle_seconds: int = Field(default=1800, ge=60)
    # A request that finds the database unreachable before its first statement waits this
    # long for it (a restart or fail-over takes seconds), then answers 503. 0: answer at once.
    db_wait_seconds: float = Field(default=10, ge=0, le=60)
    secret_key: str = DEVELOPMENT_SECRET
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    timezone: str = "Asia/Shanghai"
    locale: Literal["zh_CN", "en"] = "zh_CN"
    # Sessions expire after this much inactivity; courts' desks are shared.
    session_idle_minutes: int = Field(default=30, ge=1)
    session_absolute_hours: int = Field(default=12, ge=1)
    # Cookies are Secure in production (TLS at the reverse proxy); plain HTTP works in development.
    secure_cookies: bool | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_upload_bytes: int = Field(default=50 * 1_048_576, ge=1024)
    data_dir: str = "data"  # uploaded documents and evidence, content-addressed
    login_max_failures: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)
    log_json: bool = True
    embedded_worker: bool = True
    job_lease_seconds: int = Field(default=60, ge=1)
    job_max_attempts: int = Field(default=8, ge=1)
    # How long an idle worker waits before looking for jobs again: the delay of a push to a
    # bank after an order (and of every job) is at most this. A look is one indexed query.
    job_poll_seconds: float = Field(default=0.1, gt=0, le=10)
    # STUN/TURN servers for the duty desks' video calls, as a JSON list of RTCIceServer
    # objects: '[{"urls": "turn:turn.court.example:3478", "username": "u", "credential": "p"}]'.
    # None by default: courts' networks are closed, and browsers on one LAN (or one machine)
    # connect through their host candidates.
    ice_servers: list[IceServer] = Field(default_factory=list, max_length=8)

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.env == "production" and (
            self.secret_key == DEVELOPMENT_SECRET or len(self.secret_key) < 32
        ):
            raise ValueError(
                "ZHIXING_SECRET_KEY must be set to a random value of at least 32 characters "
                "in production"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def cookies_secure(self) -> bool:
        if self.secure_cookies is not None:
            return self.secure_cookies
        return self.env == "production"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
