"""The sink's apply SQL and the walsender command, built without a database (the generators are pure)."""

from __future__ import annotations

import pytest

from airflow_connectors.cdc.engine import apply_sql
from airflow_connectors.cdc.engine.plan import ColumnPlan, TablePlan
from airflow_connectors.cdc.engine.replication import start_replication


def _plan(key: tuple[str, ...] = ("id",), *names: str) -> TablePlan:
    columns = tuple(
        ColumnPlan(name, "text", "bigint" if name == "id" else "text", 25, name in key) for name in ("id", *names)
    )
    return TablePlan("src", 'we"ird', "replica", 'we"ird', columns, key, "d", "r", True)


def _sql(composed: object) -> str:
    return composed.as_string(None)  # type: ignore[attr-defined]


def test_merge_on_15_one_statement_keeps_unchanged_toast_and_quotes_names() -> None:
    plan = _plan(("id",), "body")
    stage = apply_sql.stage_name(plan, binary=True)
    [merge] = apply_sql.keyed_apply(plan, stage, binary=True, server_version=150004)
    text = _sql(merge)
    assert text.startswith('MERGE INTO "replica"."we""ird" AS t USING "stage_')
    assert "WHEN MATCHED AND s.op = 'D' THEN DELETE" in text
    assert '"body" = CASE WHEN s."u1" THEN t."body" ELSE s."v1" END' in text
    assert 't."id" = s."v0"' in text


def test_text_staging_casts_to_the_sink_type() -> None:
    plan = _plan(("id",), "body")
    [merge] = apply_sql.keyed_apply(plan, apply_sql.stage_name(plan, binary=False), binary=False, server_version=160000)
    assert 's."v0"::bigint' in _sql(merge)


def test_before_15_delete_update_then_upsert() -> None:
    plan = _plan(("id",), "body")
    statements = [_sql(s) for s in apply_sql.keyed_apply(plan, apply_sql.stage_name(plan, True), True, 140010)]
    assert [s.split()[0] for s in statements] == ["DELETE", "UPDATE", "INSERT"]
    assert 'ON CONFLICT ("id") DO UPDATE SET "body" = excluded."body"' in statements[2]


def test_key_only_table_has_nothing_to_update() -> None:
    plan = _plan(("id",))
    [merge] = apply_sql.keyed_apply(plan, apply_sql.stage_name(plan, True), True, 150000)
    assert "WHEN MATCHED THEN DO NOTHING" in _sql(merge)
    older = [_sql(s) for s in apply_sql.keyed_apply(plan, apply_sql.stage_name(plan, True), True, 130000)]
    assert [s.split()[0] for s in older] == ["DELETE", "INSERT"] and older[1].endswith("DO NOTHING")


def test_stage_name_follows_the_shape() -> None:
    plan = _plan(("id",), "body")
    assert apply_sql.stage_name(plan, True) == apply_sql.stage_name(_plan(("id",), "body"), True)
    assert apply_sql.stage_name(plan, True) != apply_sql.stage_name(plan, False)
    assert apply_sql.stage_name(plan, True) != apply_sql.stage_name(_plan(("id",), "body", "extra"), True)
    create = _sql(apply_sql.create_stage(plan, apply_sql.stage_name(plan, False), binary=False))
    assert create.endswith('(op "char", "v0" text, "v1" text, "u0" boolean, "u1" boolean)')


def test_unkeyed_statements_match_one_whole_row() -> None:
    plan = _plan((), "body")
    delete = _sql(apply_sql.unkeyed_delete(plan))
    assert delete.count("%s") == 2 and "LIMIT 1" in delete and "IS NOT DISTINCT FROM" in delete
    assert _sql(apply_sql.unkeyed_update(plan)).count("%s") == 4


def test_start_replication_quotes_the_slot_and_publication_and_accepts_only_an_lsn() -> None:
    command = _sql(start_replication('sl"ot', "0/16B3748", "pub'x", binary=True))
    assert command == (
        'START_REPLICATION SLOT "sl""ot" LOGICAL 0/16B3748'
        " (proto_version '1', publication_names 'pub''x', messages 'true', binary 'true')"
    )
    with pytest.raises(ValueError):
        start_replication("s", "0/1) ; DROP", "p", binary=False)


def test_start_replication_with_streaming_asks_for_protocol_2() -> None:
    command = _sql(start_replication("s", "0/0", "p", binary=False, streaming=True))
    assert "proto_version '2'" in command and "streaming 'on'" in command
