"""Sink table names on real servers: tables of one name never share a sink table, and names stay put."""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import pytest

from airflow_connectors.cdc.engine import checkpoint
from airflow_connectors.cdc.engine.interface import EngineError
from tests.cdc.engine.conftest import Pair, checksum


def sink_tables(pair: Pair) -> dict[str, str]:
    with psycopg.connect(pair.sink) as conn:
        rows = conn.execute(
            "SELECT source_schema || '.' || source_table, sink_table FROM _airflow_connectors.sink_names"
            " WHERE connector_id = %s AND sink_schema = 'replica'",
            (pair.connector.id,),
        ).fetchall()
    return dict(rows)


def test_q1_w_q2_w_and_q3_q1_w_land_in_three_sink_tables(pair: Pair) -> None:
    statements = []
    for schema, table, value in (("q1", "w", 1), ("q2", "w", 2), ("q3", "q1_w", 3)):
        statements += [
            f"CREATE SCHEMA IF NOT EXISTS {schema}",
            f"CREATE TABLE {schema}.{table} (v int, note text)",  # keyless: rows were mixed silently before
            f"ALTER TABLE {schema}.{table} REPLICA IDENTITY FULL",
            f"INSERT INTO {schema}.{table} SELECT {value}, 'row ' || i FROM generate_series(1, 50) i",
        ]
    pair.on_source(*statements)
    result, _ = pair.run()
    names = sink_tables(pair)
    assert names["q3.q1_w"] == "q1_w" and names["q2.w"] == "q2_w"
    assert names["q1.w"].startswith("q1_w_") and len(set(names.values())) == 3
    assert {name: (table.target_schema, table.table) for name, table in result.sink_tables.items()} == {
        name: ("replica", sink) for name, sink in names.items()
    }
    pair.on_source("UPDATE q1.w SET note = 'changed' WHERE note = 'row 1'", "DELETE FROM q2.w WHERE note = 'row 2'")
    pair.run()
    for source, sink in names.items():
        assert checksum(pair.source, source) == checksum(pair.sink, f"replica.{sink}")


def test_a_table_keeps_its_sink_table_when_a_namesake_appears(pair: Pair) -> None:
    pair.on_source("CREATE SCHEMA a", "CREATE TABLE a.t (id int PRIMARY KEY)", "INSERT INTO a.t VALUES (1)")
    pair.run()
    assert sink_tables(pair) == {"a.t": "t"}
    pair.on_source("CREATE SCHEMA b", "CREATE TABLE b.t (id int PRIMARY KEY)", "INSERT INTO b.t VALUES (2)")
    pair.run()
    assert sink_tables(pair) == {"a.t": "t", "b.t": "b_t"}
    assert checksum(pair.source, "a.t") == checksum(pair.sink, "replica.t")
    assert checksum(pair.source, "b.t") == checksum(pair.sink, "replica.b_t")


def test_long_schema_names_that_truncate_alike_get_their_own_sink_tables(pair: Pair) -> None:
    one, two = "s" * 61 + "a", "s" * 61 + "b"
    pair.on_source(
        *(
            statement
            for schema, value in ((one, 1), (two, 2))
            for statement in (
                f'CREATE SCHEMA "{schema}"',
                f'CREATE TABLE "{schema}".t (id int PRIMARY KEY, v int)',
                f'INSERT INTO "{schema}".t SELECT i, {value} FROM generate_series(1, 20) i',
            )
        )
    )
    pair.run()
    names = sink_tables(pair)
    assert len(set(names.values())) == 2 and all(len(name.encode()) <= 63 for name in names.values())
    for source, sink in names.items():
        assert checksum(pair.source, source) == checksum(pair.sink, f"replica.{sink}")


def test_an_explicit_sink_table_is_used_and_a_changed_one_renames_the_sink_table(pair: Pair) -> None:
    pair.on_source("CREATE TABLE public.orders (id int PRIMARY KEY)", "INSERT INTO public.orders VALUES (1), (2)")
    catalog = {"schemas": {"public": {"tables": {"orders": {"sink_table": "orders_v1"}}}}}
    named = pair.with_changes(source__postgres__catalog=catalog)
    named.run()
    assert sink_tables(named) == {"public.orders": "orders_v1"}
    catalog["schemas"]["public"]["tables"]["orders"]["sink_table"] = "orders_v2"
    renamed = named.with_changes(source__postgres__catalog=catalog)
    pair.on_source("INSERT INTO public.orders VALUES (3)")
    renamed.run()
    assert sink_tables(renamed) == {"public.orders": "orders_v2"}
    assert checksum(pair.source, "public.orders") == checksum(pair.sink, "replica.orders_v2")


def test_an_explicit_name_taken_by_another_table_fails_the_run_naming_the_field(pair: Pair) -> None:
    pair.on_source("CREATE TABLE public.a (id int PRIMARY KEY)", "CREATE TABLE public.b (id int PRIMARY KEY)")
    pair.run()
    # The catalog lists only public.b, so the model cannot see public.a: the run refuses instead.
    catalog = {"schemas": {"public": {"tables": {"b": {"sink_table": "a"}}}}}
    with pytest.raises(EngineError, match=r"catalog\.schemas\.public\.tables\.b\.sink_table: 'a' is already"):
        pair.with_changes(source__postgres__catalog=catalog).run()


def test_connectors_creating_the_state_schema_at_once_do_not_race(make_database: Callable[[str], str]) -> None:
    sink = make_database("race")
    errors: list[Exception] = []
    start = threading.Barrier(6)

    def first_run() -> None:
        with psycopg.connect(sink, autocommit=True) as conn:
            start.wait()
            try:
                checkpoint.ensure_state_schema(conn)
            except psycopg.Error as exc:
                errors.append(exc)

    threads = [threading.Thread(target=first_run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
