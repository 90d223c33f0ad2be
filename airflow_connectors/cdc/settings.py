"""Configuration of the CDC service, from the environment (``CDC_*``) with command-line overrides."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_ENGINE = "airflow_connectors.cdc.engine:execute_run"


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDC_", extra="ignore")

    state_dsn: SecretStr = Field(description="libpq DSN of the PostgreSQL state store (connectors, runs).")
    api_token: SecretStr | None = Field(None, description="Bearer token every API call must present.")
    secret_key: SecretStr = Field(description="Fernet key(s) encrypting stored secrets, comma-separated, newest first.")
    allow_unauthenticated: bool = Field(
        False, description="Serve without a token. Only accepted when listening on loopback."
    )
    docs_need_token: bool = Field(
        False, description="/docs, /redoc and /openapi.json need the token too (by default they do not: no data)."
    )
    host: str = "127.0.0.1"
    port: int = 8042
    console_session_seconds: int = Field(
        8 * 3600, ge=60, le=30 * 86400, description="How long a console sign-in lasts before the token is asked again."
    )
    metrics_public: bool = Field(False, description="Serve /metrics without the token (e.g. to a private scraper).")
    max_body_bytes: int = Field(1024 * 1024, description="Larger request bodies get 413.")
    worker_processes: int = Field(2, ge=0, description="Run worker processes of this service process (0: API only).")
    lease_seconds: float = Field(
        15.0, gt=0, description="A run whose worker stopped heartbeating this long is taken over by another worker."
    )
    engine: str = Field(DEFAULT_ENGINE, description="module:function executing runs.")
    pool_max_size: int = Field(
        10, ge=1, description="State-store connections of the API (and as many handler threads)."
    )
    pool_wait_seconds: float = Field(
        30.0, gt=0, description="A request waits this long for a state-store connection, then gets 503 Retry-After."
    )
    validation_deadline_seconds: float = Field(
        15.0,
        gt=0,
        le=300,
        description="Connect plus checks of one validation (or a delete's slot drop), whatever the server does.",
    )
    max_concurrent_validations: int = Field(
        4, ge=1, description="Validations and deletes connecting out at once; more get 429 Retry-After."
    )
    allow_ssl_files: bool = Field(
        False, description="Let validation read ssl_cert / ssl_key / ssl_root_cert files on the service host."
    )

    @field_validator("api_token")
    @classmethod
    def _blank_token_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        """``CDC_API_TOKEN=${UNSET}`` expands to "": that is a missing token, never "authentication off"."""
        if value is None or not value.get_secret_value().strip():
            return None
        return SecretStr(value.get_secret_value().strip())

    def dsn(self) -> str:
        return self.state_dsn.get_secret_value()
