"""What a verification found: per table, source and sink compared at one consistent point (wire schema of runs).

Produced by the engine (``engine/verify.py``), stored on the run, read by the hook, the operator and the sensor.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

SAMPLE_KEYS = 10  # differing keys reported per table


Issue = Literal["missing_in_sink", "extra_in_sink", "different"]


class DifferingKey(BaseModel):
    key: dict[str, str | None] = Field(description="Key columns and their values as text (keyless: the row's md5).")
    issue: Issue


class TableVerification(BaseModel):
    status: Literal["equal", "differing"]
    sink_table: str = Field(description='"schema.table" of the sink table compared')
    source_rows: int = 0
    sink_rows: int = 0
    source_checksum: str = Field(default="0", description="Sum of the rows' 64-bit md5 prefixes (order-independent)")
    sink_checksum: str = "0"
    chunks: int = Field(default=0, description="Key ranges (or key hash buckets) compared one by one")
    differing_chunks: int = 0
    differing_keys: list[DifferingKey] = Field(default_factory=list, description=f"Up to {SAMPLE_KEYS}")
    reason: str | None = Field(
        default=None, description="Why the table could not be compared row by row (e.g. no sink table)"
    )


class Verification(BaseModel):
    status: Literal["equal", "differing"]
    lsn: str = Field(description="Source position both sides were compared at (the sink's checkpoint equals it)")
    seconds: float
    tables: dict[str, TableVerification] = Field(description='By "schema.table" of the source')

    def differing(self) -> list[str]:
        return [name for name, table in self.tables.items() if table.status != "equal"]
