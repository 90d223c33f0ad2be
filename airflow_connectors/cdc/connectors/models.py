"""The connector resource: the single source of truth for the API schema, the store and the engine.

Wire-compatible with Supermetal's connector API (seeds 000/001): same field names, same defaults. The shapes the
seeds leave as ``{}`` (catalog, migration_strategy, buffer, limits, schedule, status) are defined here and are
documented in the served OpenAPI document through these models' descriptions.
"""

from __future__ import annotations

import enum
import os
import unicodedata
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from psycopg.conninfo import make_conninfo
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from airflow_connectors.cdc.io_deadline import KEEPALIVES
from airflow_connectors.cdc.sink_naming import SinkNameClash, SourceTable, catalog_loc, check_explicit

# What responses show instead of a secret. Sending it back in a PATCH or a replace keeps the stored secret.
MASK = "********"
# The sink schema where the engine keeps its checkpoints (never a target schema).
STATE_SCHEMA = "_airflow_connectors"
# Keys whose values are secrets wherever they appear in a connector document.
SECRET_KEYS = frozenset({"password", "ssl_key"})


def _pg_identifier(value: str) -> str:
    """Any name PostgreSQL can store: we always quote identifiers, so quotes, spaces and unicode are fine."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if len(value.encode()) > 63:
        raise ValueError("must be at most 63 bytes (PostgreSQL's identifier limit)")
    return value


# Control, format (bidi overrides, zero-width), line/paragraph separators and surrogates: they forge log lines.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def has_control_characters(value: str) -> bool:
    return any(unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in value)


def _printable_id(value: str) -> str:
    if has_control_characters(value):
        raise ValueError("must not contain control or invisible formatting characters")
    return value


def _one_network_host(value: str) -> str:
    """libpq would also take a comma-separated list (each host its own timeout) or a Unix-socket directory on the
    service's machine (its own local servers): a connector names exactly one host on the network."""
    if "," in value:
        raise ValueError("one host name or IP address, not a comma-separated list")
    if value.startswith(("/", "@")) or "\\" in value:
        raise ValueError("a host name or IP address, not a Unix-socket path")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain whitespace or control characters")
    return value


PgIdentifier = Annotated[str, Field(min_length=1), AfterValidator(_pg_identifier)]
NonEmpty = Annotated[str, Field(min_length=1, max_length=1024)]


class _Model(BaseModel):
    """Unknown fields are rejected (a typo must not be silently ignored) and the error names them."""

    model_config = ConfigDict(extra="forbid")


def _reveal_or_mask(value: SecretStr | None, info: SerializationInfo) -> str | None:
    """Secrets are masked unless the caller (the store, the engine) asks with ``context={"reveal": True}``."""
    if value is None:
        return None
    if isinstance(info.context, dict) and info.context.get("reveal"):
        return value.get_secret_value()
    return MASK


class SslMode(enum.StrEnum):
    DISABLE = "Disable"
    ALLOW = "Allow"
    PREFER = "Prefer"
    REQUIRE = "Require"
    VERIFY_CA = "VerifyCa"
    VERIFY_FULL = "VerifyFull"

    @property
    def libpq(self) -> str:
        return {"VerifyCa": "verify-ca", "VerifyFull": "verify-full"}.get(self.value, self.value.lower())


class PostgresConnection(_Model):
    host: Annotated[NonEmpty, AfterValidator(_one_network_host)] = Field(
        description="One host name or IP address. Immutable after creation."
    )
    port: int = Field(5432, ge=1, le=65535, description="Immutable after creation.")
    user: NonEmpty
    password: SecretStr = Field(description=f'Write-only: responses show "{MASK}"; send it back to keep the secret.')
    database: NonEmpty = Field(description="Immutable after creation.")
    ssl_mode: SslMode = SslMode.PREFER
    ssl_cert: str | None = Field(None, description="Client certificate file path on the service host.")
    ssl_key: SecretStr | None = Field(None, description="Client key file path on the service host. Write-only.")
    ssl_root_cert: str | None = Field(None, description="CA certificate file path on the service host.")
    max_pool_size: int = Field(
        4, ge=0, le=64, description="Connections the engine may open (parallel snapshot); 0 means the default, 4."
    )
    operation_lock_timeout_seconds: int = Field(
        30, ge=0, le=3600, description="lock_timeout for DDL and slot operations on this server."
    )

    _serialize_secret = field_serializer("password", "ssl_key")(_reveal_or_mask)

    @property
    def pool_size(self) -> int:
        return self.max_pool_size or 4

    def conninfo(self, **extra: Any) -> str:
        """A libpq conninfo string (contains the password: never log it)."""
        params: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password.get_secret_value(),
            "dbname": self.database,
            "sslmode": self.ssl_mode.libpq,
            "connect_timeout": 10,
            "application_name": "airflow_connectors",
            # Never the service's own credentials (~/.pgpass) for a connector that gives an empty password.
            "passfile": os.devnull,
            **KEEPALIVES,
        }
        for key, value in (
            ("sslcert", self.ssl_cert),
            ("sslkey", self.ssl_key.get_secret_value() if self.ssl_key else None),
            ("sslrootcert", self.ssl_root_cert),
        ):
            if value:
                params[key] = value
        params.update(extra)
        return make_conninfo(**params)


class LogicalReplication(_Model):
    retry_window_seconds: int = Field(
        300, ge=0, le=86400, description="How long transient source/sink errors are retried before the run fails."
    )
    skip_snapshots: bool = Field(False, description="Start from the stream alone: no initial copy of the tables.")


class ReplicationType(_Model):
    logical_replication: LogicalReplication = Field(default_factory=LogicalReplication)


class CatalogTable(_Model):
    """Columns of one table to replicate: all of them, only ``include_columns``, or all but ``exclude_columns``."""

    include_columns: list[PgIdentifier] | None = None
    exclude_columns: list[PgIdentifier] | None = None
    sink_table: PgIdentifier | None = Field(
        None,
        description="Name of its table in the sink's target_schema. Default: the table's name, or "
        "<schema>_<table> when tables of one name come from several schemas (a short hash when that is taken or "
        "over 63 bytes). Decided at the first run and kept; two tables may never share one.",
    )

    @model_validator(mode="after")
    def _one_list(self) -> CatalogTable:
        if self.include_columns is not None and self.exclude_columns is not None:
            raise ValueError("give include_columns or exclude_columns, not both")
        return self

    def columns(self, available: list[str]) -> list[str]:
        if self.include_columns is not None:
            return [name for name in available if name in self.include_columns]
        if self.exclude_columns is not None:
            return [name for name in available if name not in self.exclude_columns]
        return list(available)


class CatalogSchema(_Model):
    tables: dict[PgIdentifier, CatalogTable] = Field(
        default_factory=dict, description="Tables of this schema to replicate; empty means every table in it."
    )


class Catalog(_Model):
    """What to replicate: ``{"schemas": {"public": {"tables": {"orders": {"exclude_columns": ["notes"]}}}}}``.

    An empty catalog means every table of every non-system schema.
    """

    schemas: dict[PgIdentifier, CatalogSchema] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sink_names_unique(self) -> Catalog:
        """Two listed tables that would share a sink table are refused here, naming the ``sink_table`` field."""
        listed = [(schema, table) for schema, entry in self.schemas.items() for table in entry.tables]
        try:
            check_explicit(listed, self.sink_tables(), {})
        except SinkNameClash as exc:
            error = PydanticCustomError("sink_name_clash", "{message}", {"message": str(exc)})
            raise ValidationError.from_exception_data(
                "Catalog", [InitErrorDetails(type=error, loc=catalog_loc(exc.table), input=None)]
            ) from None
        return self

    def sink_tables(self) -> dict[SourceTable, str]:
        """The explicit ``sink_table`` names, by (schema, table)."""
        return {
            (schema, table): entry.sink_table
            for schema, tables in self.schemas.items()
            for table, entry in tables.tables.items()
            if entry.sink_table is not None
        }

    def selects(self, schema: str, table: str) -> bool:
        if not self.schemas:
            return True
        entry = self.schemas.get(schema)
        return entry is not None and (not entry.tables or table in entry.tables)

    def table(self, schema: str, table: str) -> CatalogTable:
        entry = self.schemas.get(schema)
        return (entry.tables.get(table) if entry else None) or CatalogTable()


class PostgresSource(_Model):
    connection: PostgresConnection
    replication_type: ReplicationType
    parallel_snapshots_enabled: bool = Field(True, description="Copy large tables in parallel CTID ranges.")
    partitions_as_root: bool = Field(
        False, description="Replicate partitioned tables as their root table (publish_via_partition_root)."
    )
    catalog: Catalog = Field(default_factory=Catalog)


class MigrationStrategy(_Model):
    """What a run does when a source table's columns change."""

    added_columns: Literal["apply", "fail"] = Field("apply", description="apply: add the column to the sink table.")
    dropped_columns: Literal["keep", "apply", "fail"] = Field(
        "keep", description="keep: the sink column stays (NULL in new rows); apply: drop it; fail: fail the run."
    )
    retyped_columns: Literal["fail", "apply"] = Field(
        "fail",
        description="fail: fail the run with a message; apply: ALTER the sink column type (the table is copied "
        "again when the change rewrote it, e.g. ALTER TYPE ... USING).",
    )
    dropped_tables: Literal["keep", "apply", "fail"] = Field(
        "keep",
        description="A source table no longer replicated (dropped, renamed, detached from a partitioned table "
        "replicated as its root, or left out of the catalog): keep: its sink table stays, marked 'orphaned' in "
        "_airflow_connectors.table_states and named in the run log; apply: drop the sink table; fail: fail the run.",
    )


class PostgresSink(_Model):
    connection: PostgresConnection
    target_schema: PgIdentifier = Field("public", description="Schema of the sink tables (created if missing).")
    migration_strategy: MigrationStrategy = Field(default_factory=MigrationStrategy)

    @field_validator("target_schema")
    @classmethod
    def _not_ours(cls, value: str) -> str:
        if value == STATE_SCHEMA or value.startswith("pg_") or value == "information_schema":
            raise ValueError(f"{value!r} is reserved (the engine's bookkeeping or PostgreSQL's own)")
        return value


class _Variant(_Model):
    """A tagged union written as an object with exactly one key (``{"postgres": {...}}``)."""

    kind: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _exactly_one_variant(cls, data: Any) -> Any:
        if isinstance(data, dict):
            supported = ", ".join(cls.model_fields)
            if len(data) != 1:
                raise ValueError(f"{cls.kind} must have exactly one variant key, one of: {supported}")
            (key,) = data
            if key not in cls.model_fields:
                raise ValueError(f"{cls.kind} type {key!r} is not supported (supported: {supported})")
        return data

    @property
    def variant(self) -> str:
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)


class Source(_Variant):
    kind: ClassVar[str] = "source"
    postgres: PostgresSource


class Sink(_Variant):
    kind: ClassVar[str] = "sink"
    postgres: PostgresSink


class Buffer(_Model):
    """Batching between source and sink: a batch is applied when any bound is reached."""

    max_rows: int = Field(50_000, ge=1, le=10_000_000)
    max_bytes: int = Field(64 * 1024 * 1024, ge=1024, le=4 * 1024**3)
    flush_interval_ms: int = Field(1000, ge=10, le=3_600_000)


class Limits(_Model):
    """Safety limits of one run."""

    max_run_duration_seconds: int | None = Field(
        None, ge=1, description="A catch-up run still running after this fails; a continuous run ends successfully."
    )
    max_rows_per_run: int | None = Field(None, ge=1, description="A run stops (successfully) after this many rows.")


class Schedule(_Model):
    """Runs started automatically: every ``interval_seconds``, or at ``cron`` times in ``timezone``."""

    interval_seconds: int | None = Field(None, ge=10, le=31 * 86400)
    cron: str | None = Field(None, description='Five-field cron expression, e.g. "*/15 * * * *".')
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _check(self) -> Schedule:
        if (self.interval_seconds is None) == (self.cron is None):
            raise ValueError("give exactly one of interval_seconds or cron")
        if self.cron is not None and (len(self.cron.split()) != 5 or not croniter.is_valid(self.cron)):
            raise ValueError(f"cron: {self.cron!r} is not a valid five-field cron expression")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"timezone: unknown time zone {self.timezone!r}") from None
        return self


class Connector(_Model):
    @model_validator(mode="before")
    @classmethod
    def _empty_schedule_is_none(cls, data: Any) -> Any:
        """Supermetal's examples show ``"schedule": {}`` for a connector without one: accept it as "no schedule"."""
        if isinstance(data, dict) and data.get("schedule") == {}:
            return {**data, "schedule": None}
        return data

    id: Annotated[str, AfterValidator(_printable_id)] = Field(
        min_length=1,
        max_length=128,
        description="Required by the schema; ignored by POST /connectors (server-generated), "
        "overridden by the path in POST /connectors/{id}.",
    )
    source: Source
    sink: Sink
    buffer: Buffer | None = None
    limits: Limits | None = None
    disabled: bool = Field(False, description="A disabled connector starts no runs (scheduled or requested).")
    schedule: Schedule | None = None
    name: str | None = Field(None, min_length=1, max_length=256, description="Display name")

    def stored(self) -> dict[str, Any]:
        """The document with secrets revealed (the store encrypts them before writing)."""
        return self.model_dump(mode="json", context={"reveal": True})


class LastRun(BaseModel):
    run_id: str
    state: str
    finished_at: datetime | None = None


class ConnectorStatus(BaseModel):
    """Live state of a connector: derived from its flags and its latest run."""

    state: Literal["idle", "running", "paused", "disabled"] = "idle"
    paused: bool = False
    last_run: LastRun | None = None
    runs_total: int = 0
    runs_failed: int = 0
    lag_bytes: int | None = Field(None, description="Source WAL not yet confirmed by the slot, as last measured.")
    wal_status: str | None = Field(None, description="pg_replication_slots.wal_status of the slot (lost = resync).")


class ConnectorResponse(BaseModel):
    connector: Connector
    status: ConnectorStatus
    run_id: str | None = Field(None, description="The latest run's id, if any.")
    created_at: datetime


class ConnectorPage(BaseModel):
    items: list[ConnectorResponse]
    next_cursor: str | None = None
