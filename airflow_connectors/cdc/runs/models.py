"""Wire schemas of replication runs (the single source of truth for the runs API and its OpenAPI document)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from airflow_connectors.cdc.engine.interface import RunMode, RunRequest
from airflow_connectors.cdc.runs.state_machine import RunState
from airflow_connectors.cdc.verification import Verification

_TABLE_NAME = re.compile(r"^[^.]+\.[^.]+$")


class RunCreate(BaseModel):
    """Body of ``POST /connectors/{id}/runs``."""

    model_config = ConfigDict(extra="forbid")

    mode: RunMode = RunMode.CATCH_UP
    resync: bool | list[str] = Field(
        default=False, description='false, true (every table) or a list of "schema.table" to re-snapshot'
    )
    verify: bool = Field(
        default=False,
        description="Catch up to a consistent point, then compare every table's source and sink there; "
        "the run fails, with a report in `verification`, when one differs (catch_up runs only).",
    )

    @field_validator("resync")
    @classmethod
    def _tables_are_qualified(cls, value: bool | list[str]) -> bool | list[str]:
        if isinstance(value, list):
            if not value:
                raise ValueError("resync: give at least one table, or true / false")
            bad = [name for name in value if not _TABLE_NAME.match(name)]
            if bad:
                raise ValueError(f'resync: tables must be written "schema.table": {bad}')
        return value

    @field_validator("verify")
    @classmethod
    def _verify_needs_a_fence(cls, value: bool, info: ValidationInfo) -> bool:
        if value and info.data.get("mode") is RunMode.CONTINUOUS:
            raise ValueError("only a catch_up run can verify (a continuous run never holds still)")
        return value


class TableStats(BaseModel):
    rows: int = 0
    bytes: int = 0
    inserts: int = 0
    updates: int = 0
    deletes: int = 0


class SinkTableName(BaseModel):
    target_schema: str
    table: str


class Run(BaseModel):
    run_id: str
    connector_id: str
    state: RunState
    mode: RunMode
    resync: bool | list[str]
    verify: bool = False
    trigger: Literal["api", "schedule"]
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    start_lsn: str | None = None
    fence_lsn: str | None = None
    applied_lsn: str | None = None
    tables: dict[str, TableStats] = Field(default_factory=dict)
    rows_total: int = 0
    lag_bytes: int | None = None
    wal_status: str | None = None
    error: str | None = None
    sink_tables: dict[str, SinkTableName] = Field(
        default_factory=dict, description='Where each table ("schema.table" of the source) was written'
    )
    verification: Verification | None = Field(default=None, description="The report of a verifying run")

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Run:
        return cls.model_validate({name: row[name] for name in cls.model_fields})

    def to_request(self) -> RunRequest:
        resync = tuple(self.resync) if isinstance(self.resync, list) else self.resync
        return RunRequest(run_id=self.run_id, mode=self.mode, resync=resync, verify=self.verify)


class RunPage(BaseModel):
    items: list[Run]
    next_cursor: str | None = None
