"""The hard cases of CDC, each on real servers: TOAST, TRUNCATE, partitions, types, catalog, drift, identifiers,
re-delivery after a crash, resync of some tables, and a large transaction in bounded memory."""

from __future__ import annotations

import json
import subprocess
import sys

import psycopg
import pytest

from airflow_connectors.cdc.engine.interface import EngineError
from tests.cdc.engine.conftest import Pair, checksum

RANDOM_TEXT = "(SELECT string_agg(md5(random()::text), '') FROM generate_series(1, 200))"  # ~6 kB, incompressible


def test_toasted_values_survive_updates_that_do_not_change_them(pair: Pair) -> None:
    pair.on_source(
        "CREATE TABLE public.docs (id int PRIMARY KEY, body text, n int)",
        f"INSERT INTO public.docs SELECT i, {RANDOM_TEXT}, 0 FROM generate_series(1, 50) i",
    )
    pair.run()
    pair.on_source(
        "UPDATE public.docs SET n = n + 1",  # body arrives as 'unchanged TOAST'
        f"BEGIN; INSERT INTO public.docs VALUES (100, {RANDOM_TEXT}, 0);"
        " UPDATE public.docs SET n = 5 WHERE id = 100; COMMIT",
    )
    pair.run()
    assert checksum(pair.source, "public.docs") == checksum(pair.sink, "replica.docs")
    with psycopg.connect(pair.sink) as sink:
        assert sink.execute("SELECT count(*) FROM replica.docs WHERE body IS NULL").fetchone() == (0,)


def test_truncate_in_order(pair: Pair) -> None:
    pair.on_source(
        "CREATE TABLE public.t (id int PRIMARY KEY, v text)",
        "INSERT INTO public.t SELECT i, 'a' FROM generate_series(1, 100) i",
    )
    pair.run()
    pair.on_source(
        "BEGIN; INSERT INTO public.t VALUES (500, 'before'); TRUNCATE public.t;"
        " INSERT INTO public.t VALUES (1, 'after'); COMMIT"
    )
    pair.run()
    assert (
        checksum(pair.source, "public.t") == checksum(pair.sink, "replica.t")
        and checksum(pair.sink, "replica.t")[0] == 1
    )


@pytest.mark.parametrize("as_root", [True, False])
def test_partitioned_tables(pair: Pair, as_root: bool) -> None:
    pair.on_source(
        "CREATE TABLE public.events (id int, day date, v text, PRIMARY KEY (id, day)) PARTITION BY RANGE (day)",
        "CREATE TABLE public.events_a PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2026-07-01')",
        "CREATE TABLE public.events_b PARTITION OF public.events FOR VALUES FROM ('2026-07-01') TO ('2027-01-01')",
        "INSERT INTO public.events SELECT i, date '2026-01-01' + i % 300, 'x' FROM generate_series(1, 1000) i",
    )
    pair = pair.with_changes(source__postgres__partitions_as_root=as_root)
    pair.run()
    pair.on_source(
        "INSERT INTO public.events VALUES (5000, '2026-12-01', 'late')",
        "DELETE FROM public.events WHERE id < 10",
        "UPDATE public.events SET v = 'y' WHERE id % 3 = 0",
    )
    pair.run()
    if as_root:
        assert checksum(pair.source, "public.events") == checksum(pair.sink, "replica.events")
    else:
        for leaf in ("events_a", "events_b"):
            assert checksum(pair.source, f"public.{leaf}") == checksum(pair.sink, f"replica.{leaf}")


def test_type_coverage_value_for_value(pair: Pair) -> None:
    pair.on_source(
        "CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy')",
        "CREATE DOMAIN public.positive AS integer CHECK (VALUE > 0)",
        """CREATE TABLE public.kinds (
            id int PRIMARY KEY, n numeric(20, 6), t text, b bytea, u uuid, j json, jb jsonb, ints int[], texts text[],
            m public.mood, moods public.mood[], p public.positive, ts timestamptz, iv interval, f float8,
            bo boolean)""",
        """INSERT INTO public.kinds VALUES
            (1, 12345678901234.123456, E'tab\\there\\nnewline \\\\ back', '\\x00ff10', gen_random_uuid(),
             '{"a": [1, 2]}', '{"b": {"c": null}}', '{1,NULL,3}', '{"x y","q\\"uote",NULL}', 'happy', '{sad,ok}', 7,
             '2026-11-24 10:00:00.123456+02', '1 year 2 days 03:04:05', 1.5e-300, true),
            (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
    )
    pair.run()
    pair.on_source(
        "INSERT INTO public.kinds SELECT 3, n * -1, t || 'é', b || '\\x01', gen_random_uuid(), j, jb, ints || 4, texts,"
        " 'sad', moods || 'happy'::public.mood, p + 1, ts + interval '1 day', iv * 2, -f, NOT bo"
        " FROM public.kinds WHERE id = 1",
        "UPDATE public.kinds SET jb = '{\"updated\": true}', t = NULL WHERE id = 1",
    )
    _, reporter = pair.run()
    assert any("text format" in line for line in reporter.logs)  # an array of an enum embeds its type's oid
    assert checksum(pair.source, "public.kinds") == checksum(pair.sink, "replica.kinds")


def test_catalog_column_exclusion_and_table_selection(pair: Pair) -> None:
    pair.on_source(
        "CREATE TABLE public.users (id int PRIMARY KEY, email text, password_hash text)",
        "CREATE TABLE public.other (id int PRIMARY KEY)",
        "INSERT INTO public.users SELECT i, 'u' || i, md5(i::text) FROM generate_series(1, 100) i",
    )
    catalog = {"schemas": {"public": {"tables": {"users": {"exclude_columns": ["password_hash"]}}}}}
    pair = pair.with_changes(source__postgres__catalog=catalog)
    pair.run()
    pair.on_source("UPDATE public.users SET email = email || '!', password_hash = 'new' WHERE id < 50")
    pair.run()
    assert checksum(pair.source, "public.users", "id, email") == checksum(pair.sink, "replica.users")
    with pytest.raises(Exception, match="other"):
        checksum(pair.sink, "replica.other")


def test_schema_drift_per_migration_strategy(pair: Pair) -> None:
    pair.on_source(
        "CREATE TABLE public.d (id int PRIMARY KEY, a text, gone text NOT NULL, typed int)",
        "INSERT INTO public.d VALUES (1, 'x', 'g', 1)",
    )
    pair.run()
    pair.on_source(
        "ALTER TABLE public.d ADD COLUMN added jsonb",
        "ALTER TABLE public.d DROP COLUMN gone",
        "INSERT INTO public.d VALUES (2, 'y', 2, '{\"k\": 1}')",
    )
    pair.run()  # defaults: added -> apply, dropped -> keep
    assert checksum(pair.source, "public.d", "id, a, typed, added") == checksum(
        pair.sink, "replica.d", "id, a, typed, added"
    )
    assert checksum(pair.sink, "replica.d", "gone")[0] == 2  # kept: old value stays, new row NULL
    pair.on_source(
        "ALTER TABLE public.d ALTER COLUMN typed TYPE bigint", "INSERT INTO public.d VALUES (3, 'z', 3, NULL)"
    )
    with pytest.raises(EngineError, match="typed.*changed type.*retyped_columns"):
        pair.run()
    applying = pair.with_changes(
        sink__postgres__migration_strategy={"retyped_columns": "apply", "dropped_columns": "apply"}
    )
    applying.run()
    assert checksum(pair.source, "public.d", "id, a, typed, added") == checksum(
        pair.sink, "replica.d", "id, a, typed, added"
    )


def test_hostile_identifiers_are_replicated_not_executed(pair: Pair) -> None:
    schema, table, column = 'we"ird sch', "tab le; DROP TABLE x; --", 'naïve "col" 表'
    quoted = {"s": schema.replace('"', '""'), "t": table.replace('"', '""'), "c": column.replace('"', '""')}
    pair.on_source(
        "CREATE TABLE public.x (id int PRIMARY KEY)",
        'CREATE SCHEMA "{s}"'.format(**quoted),
        'CREATE TABLE "{s}"."{t}" (id int PRIMARY KEY, "{c}" text)'.format(**quoted),
        "INSERT INTO \"{s}\".\"{t}\" VALUES (1, '''; DROP TABLE public.x; --')".format(**quoted),
    )
    hostile = pair.with_changes(sink__postgres__target_schema='tgt "; DROP')
    hostile.run()
    hostile.on_source('UPDATE "{s}"."{t}" SET "{c}" = \'ok\''.format(**quoted))
    hostile.run()
    assert checksum(pair.source, f"{schema}.{table}") == checksum(pair.sink, f'tgt "; DROP.{table}')
    assert checksum(pair.source, "public.x")[0] == 0  # still there


def test_changes_resent_after_a_crash_are_not_applied_twice(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_connectors.cdc.engine.replication import ReplicationStream

    pair.on_source("CREATE TABLE public.log (v int)", "ALTER TABLE public.log REPLICA IDENTITY FULL")
    pair.run()
    pair.on_source("INSERT INTO public.log SELECT generate_series(1, 100)")
    with monkeypatch.context() as patch:  # the process "dies" after the sink commit, before telling the slot
        patch.setattr(ReplicationStream, "confirm", lambda self, lsn: None)
        patch.setattr(ReplicationStream, "close", lambda self: self.conn.close())
        pair.run()
    pair.on_source("INSERT INTO public.log VALUES (1000)")
    pair.run()  # the server re-sends the 100 rows: the sink checkpoint says they are in
    assert (
        checksum(pair.source, "public.log") == checksum(pair.sink, "replica.log")
        and checksum(pair.sink, "replica.log")[0] == 101
    )


def test_resync_some_tables_while_the_others_keep_streaming(pair: Pair) -> None:
    pair.on_source(
        "CREATE TABLE public.a (id int PRIMARY KEY, v int)",
        "CREATE TABLE public.b (id int PRIMARY KEY, v int)",
        "INSERT INTO public.a SELECT i, 0 FROM generate_series(1, 100) i",
        "INSERT INTO public.b SELECT i, 0 FROM generate_series(1, 100) i",
    )
    pair.run()
    with psycopg.connect(pair.sink, autocommit=True) as sink:
        sink.execute("DELETE FROM replica.a WHERE id <= 50")  # someone damaged the replica of a
    pair.on_source("UPDATE public.a SET v = 1", "UPDATE public.b SET v = 1")
    result, reporter = pair.run(resync=("public.a",))
    assert result.tables["public.a"].rows == 100  # copied again (its older changes skipped)
    for table in ("a", "b"):
        assert checksum(pair.source, f"public.{table}") == checksum(pair.sink, f"replica.{table}")
    pair.on_source("UPDATE public.a SET v = 2 WHERE id < 10", "DELETE FROM public.b WHERE id < 5")
    pair.run()
    for table in ("a", "b"):
        assert checksum(pair.source, f"public.{table}") == checksum(pair.sink, f"replica.{table}")


BIG_TRANSACTION = """
import json, resource, sys, uuid
from airflow_connectors.cdc.engine import execute_run
from airflow_connectors.cdc.engine.interface import RunRequest
from airflow_connectors.cdc.connectors.models import Connector
from tests.cdc.engine.conftest import RecordingReporter
connector = Connector.model_validate_json(sys.stdin.read())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
result = execute_run(connector, RunRequest(run_id=str(uuid.uuid4())), RecordingReporter(), lambda: False)
print(json.dumps({"rows": result.tables["public.big"].rows, "before_kb": before,
                  "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


@pytest.mark.slow
def test_a_million_row_transaction_in_bounded_memory(pair: Pair) -> None:
    pair.on_source("CREATE TABLE public.big (id int PRIMARY KEY, v text)")
    pair.run()
    pair.on_source("INSERT INTO public.big SELECT i, md5(i::text) FROM generate_series(1, 1000000) i")
    big = pair.with_changes(buffer={"max_rows": 50000, "max_bytes": 64 * 1024 * 1024, "flush_interval_ms": 1000})
    document = json.dumps(big.connector.stored())
    out = subprocess.run(
        [sys.executable, "-c", BIG_TRANSACTION], input=document, capture_output=True, text=True, check=True, timeout=600
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["rows"] == 1_000_000
    assert (report["peak_kb"] - report["before_kb"]) < 300 * 1024, report
    assert checksum(pair.source, "public.big") == checksum(pair.sink, "replica.big")


def test_binary_format_type_coverage(pair: Pair) -> None:
    """Without arrays of user types, the stream runs in pgoutput binary: values are spliced, never re-parsed."""
    pair.on_source(
        "CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy')",
        "CREATE DOMAIN public.positive AS integer CHECK (VALUE > 0)",
        """CREATE TABLE public.kinds (
            id int PRIMARY KEY, n numeric(20, 6), t text, b bytea, u uuid, j json, jb jsonb, ints int[], texts text[],
            m public.mood, p public.positive, ts timestamptz, iv interval, f float8, bo boolean, big text)""",
        "INSERT INTO public.kinds (id) VALUES (0)",
    )
    pair.run()
    pair.on_source(
        f"""INSERT INTO public.kinds VALUES
            (1, -12345678901234.123456, E'tab\\there', '\\x00ff', gen_random_uuid(), '[1, {{"a": null}}]', '{{"b": 2}}',
             '{{1,NULL}}', '{{"x y",NULL}}', 'ok', 3, '2026-11-24 10:00:00.5+05:30', '-1 day 02:00', 'NaN', false,
             {RANDOM_TEXT}),
            (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)""",
        "UPDATE public.kinds SET n = n * 2, m = 'happy' WHERE id = 1",  # big arrives unchanged (TOAST)
        "DELETE FROM public.kinds WHERE id = 0",
    )
    _, reporter = pair.run()
    assert any("binary format" in line for line in reporter.logs), reporter.logs
    assert checksum(pair.source, "public.kinds") == checksum(pair.sink, "replica.kinds")


def test_a_column_added_with_a_type_binary_cannot_carry_switches_to_text(pair: Pair) -> None:
    import time

    from airflow_connectors.cdc.engine.interface import RunMode, TransientEngineError

    pair.on_source(
        "CREATE TYPE public.tag AS ENUM ('a', 'b')",
        "CREATE TABLE public.t (id int PRIMARY KEY, v int)",
        "INSERT INTO public.t VALUES (1, 1)",
    )
    pair.run()
    calls, deadline = [0], time.monotonic() + 30

    def alter_while_streaming() -> bool:
        calls[0] += 1
        if calls[0] == 3:  # the stream is running, in binary: nothing in the table needed text so far
            pair.on_source(
                "ALTER TABLE public.t ADD COLUMN tags public.tag[]", "INSERT INTO public.t VALUES (2, 2, '{a,b}')"
            )
        return time.monotonic() > deadline

    with pytest.raises(TransientEngineError, match="needs the text format"):
        pair.run(mode=RunMode.CONTINUOUS, should_stop=alter_while_streaming)  # what the worker retries...
    _, reporter = pair.run()  # ...and the retry re-plans and streams as text
    assert any("text format" in line for line in reporter.logs)
    assert checksum(pair.source, "public.t") == checksum(pair.sink, "replica.t")
