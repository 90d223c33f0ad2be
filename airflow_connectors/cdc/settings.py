"""Configuration of the CDC service, from the environment (``CDC_*``) with command-line overrides."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDC_", extra="ignore")

    state_dsn: SecretStr = Field(description="libpq DSN of the PostgreSQL state store (connectors, runs).")
    api_token: SecretStr | None = Field(None, description="Bearer token every API call must present.")
    secret_key: SecretStr = Field(description="Fernet key(s) encrypting stored secrets, comma-separated, newest first.")
    allow_unauthenticated: bool = Field(
        False, description="Serve without a token. Only accepted when listening on loopback."
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
    engine: str = Field("airflow_connectors.cdc.engine:execute_run", description="module:function executing runs.")
    pool_max_size: int = 10

    def dsn(self) -> str:
        return self.state_dsn.get_secret_value()
