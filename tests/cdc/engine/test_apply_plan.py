"""How the sink runs a batch: by probing the key index per staged row, never by hashing the whole sink table."""

from __future__ import annotations

import uuid

import psycopg
from psycopg import sql

from airflow_connectors.cdc.engine import apply_sql
from airflow_connectors.cdc.engine.apply import Applier
from airflow_connectors.cdc.engine.plan import ColumnPlan, TablePlan
from tests.cdc.engine.conftest import PgServer


def test_a_batch_probes_the_key_index_of_a_large_sink_table(versioned_pg_server: PgServer) -> None:
    database = f"t_plan_{uuid.uuid4().hex[:8]}"
    dsn = versioned_pg_server.create_database(database)
    columns = tuple(ColumnPlan(name, "bigint", "bigint", 20, name == "id") for name in ("id", "a"))
    plan = TablePlan("public", "big", "public", "big", columns, ("id",), "d", "r", True)
    stage = apply_sql.stage_name(plan, binary=True)
    try:
        with psycopg.connect(dsn) as conn:
            conn.execute("CREATE TABLE public.big (id bigint PRIMARY KEY, a bigint)")
            conn.execute("INSERT INTO public.big SELECT i, i FROM generate_series(1, 300000) i")
            conn.execute("ANALYZE public.big")
            conn.execute(apply_sql.create_stage(plan, stage, binary=True))
            conn.execute(
                sql.SQL("INSERT INTO {} SELECT 'U', i, i + 1, false, false FROM generate_series(1, 50000) i").format(
                    stage
                )
            )
            # without it: a hash of all 300,000 rows (the stage is never analyzed)
            conn.execute(apply_sql.PROBE_BY_KEY, (True,))
            for statement in apply_sql.keyed_apply(plan, stage, True, conn.info.server_version):
                explained = "\n".join(row[0] for row in conn.execute(sql.SQL("EXPLAIN {}").format(statement)))
                assert "Index Scan using big_pkey" in explained or "Index Only Scan using big_pkey" in explained, (
                    explained
                )
                assert "Hash" not in explained and "Seq Scan on big" not in explained, explained
    finally:
        versioned_pg_server.drop_database(database)


def test_the_key_index_is_found_only_where_it_serves_the_key(versioned_pg_server: PgServer) -> None:
    """Without it, PROBE_BY_KEY would leave a scan of the whole table per staged row: it is set only where it exists."""
    database = f"t_key_{uuid.uuid4().hex[:8]}"
    dsn = versioned_pg_server.create_database(database)

    def found(key: list[str]) -> bool:
        row = conn.execute(apply_sql.KEY_INDEX_EXISTS, ("public", "t", sorted(key))).fetchone()
        return bool(row and row[0])

    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE public.t (id bigint, a bigint, b text, CONSTRAINT t_key PRIMARY KEY (id, a))")
            assert found(["id", "a"]) and not found(["id"]) and not found(["a"])
            conn.execute("ALTER TABLE public.t DROP CONSTRAINT t_key")
            assert not found(["id", "a"])  # the key dropped by hand: the planner chooses alone
            conn.execute("CREATE UNIQUE INDEX ON public.t (id) WHERE b IS NOT NULL")
            conn.execute("CREATE UNIQUE INDEX ON public.t (id, lower(b))")
            conn.execute("CREATE INDEX ON public.t (a)")
            assert not found(["id"]) and not found(["a"])  # partial, with an expression, not unique
            conn.execute("CREATE UNIQUE INDEX ON public.t (a) INCLUDE (b)")
            assert found(["a"])
    finally:
        versioned_pg_server.drop_database(database)


def test_a_table_without_its_key_index_is_not_probed_after_one_with_it(versioned_pg_server: PgServer) -> None:
    """Both batches in one sink transaction: the setting made for the first table must not reach the second."""
    database = f"t_two_{uuid.uuid4().hex[:8]}"
    dsn = versioned_pg_server.create_database(database)
    columns = tuple(ColumnPlan(name, "bigint", "bigint", 20, name == "id") for name in ("id", "a"))
    keyed, lost = (TablePlan("public", name, "public", name, columns, ("id",), "d", "r", True) for name in "kl")
    probes: list[str] = []
    try:
        with psycopg.connect(dsn) as conn:
            conn.execute("CREATE TABLE public.k (id bigint PRIMARY KEY, a bigint)")
            conn.execute("CREATE TABLE public.l (id bigint, a bigint)")  # its key dropped by hand
            applier = Applier(conn)

            def submit(job: object, rows: int) -> None:
                job()  # type: ignore[operator]
                probes.append(str(conn.execute("SHOW enable_hashjoin").fetchone()[0]))  # type: ignore[index]

            applier.submit = submit
            for plan in (keyed, lost, keyed):
                applier.change(plan, "I", None, (b"1", b"2"))
                applier.write_pending()
            assert probes == ["off", "on", "off"]
            assert conn.execute("SELECT count(*) FROM public.l").fetchone() == (1,)
    finally:
        versioned_pg_server.drop_database(database)
