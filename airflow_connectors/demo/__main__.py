"""``make demo``: the example DAG replicating an embedded PostgreSQL into another, end to end, in one command.

It starts two embedded PostgreSQL 18 servers (a source shop with ``wal_level=logical`` and a warehouse), the CDC core
service on loopback, and runs the ``cdc_postgres_sync`` DAG with ``airflow dags test``: the first run snapshots the
shop, then rows change in the source and the second run carries the changes over. It prints what happened and the
console's address, and stops everything it started; with ``DEMO_KEEP=1`` (``make demo KEEP=1``) it keeps the
databases and the service up until Ctrl-C, to look around in the console. Running it again starts from scratch.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import requests

from airflow_connectors.cdc.connectors.secrets import SecretBox
from airflow_connectors.cdc.embedded_pg import EmbeddedPostgres, free_port
from airflow_connectors.demo import sample_shop

ROOT = Path(__file__).resolve().parents[2]
WORK = Path(os.environ.get("DEMO_DIR", ROOT / ".demo"))
KEEP = os.environ.get("DEMO_KEEP", "").strip().lower() in ("1", "true", "yes")
DAG_ID = "cdc_postgres_sync"
SINK_SCHEMA = "shop_replica"


def say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def postgres_connection(server: EmbeddedPostgres, database: str) -> str:
    """An Airflow connection (JSON form, for an ``AIRFLOW_CONN_*`` variable) to ``database``."""
    return json.dumps(
        {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": server.port,
            "login": "postgres",
            "password": server.password,
            "schema": database,
        }
    )


class Service:
    """The CDC core service process (``airflow-connectors-cdc serve``)."""

    def __init__(self, state_dsn: str, log: Path) -> None:
        self.port = free_port()
        self.token = SecretBox.generate_key()[:32]
        env = {
            **os.environ,
            "CDC_STATE_DSN": state_dsn,
            "CDC_API_TOKEN": self.token,
            "CDC_SECRET_KEY": SecretBox.generate_key(),
        }
        command = [sys.executable, "-m", "airflow_connectors.cdc.cli", "serve", "--port", str(self.port)]
        self.log = log
        self.process = subprocess.Popen(command, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"the CDC service exited; see {log}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise SystemExit(f"the CDC service did not start; see {log}")

    def get(self, path: str) -> dict:
        response = requests.get(
            f"{self.url}/api/v1{path}", headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )
        response.raise_for_status()
        return dict(response.json())

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def airflow(env: dict[str, str], *args: str, log: Path) -> None:
    with log.open("ab") as out:
        result = subprocess.run([sys.executable, "-m", "airflow", *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        raise SystemExit(f"`airflow {' '.join(args)}` failed ({result.returncode}); last lines of {log}:\n{tail}")


def main() -> int:
    started = time.monotonic()
    if WORK.exists():
        shutil.rmtree(WORK)  # a re-run starts from scratch
    WORK.mkdir(parents=True)
    logs = WORK / "logs"
    logs.mkdir()
    with ExitStack() as stack:
        say("starting two embedded PostgreSQL 18 servers (source: wal_level=logical)")
        source = stack.enter_context(EmbeddedPostgres(WORK / "pg-source"))
        sink = stack.enter_context(EmbeddedPostgres(WORK / "pg-sink"))
        shop = source.create_database("shop")
        sink.create_database("warehouse")
        state = sink.create_database("cdc_state")
        sample_shop.create(shop)
        counts = sample_shop.table_fingerprints(shop, sample_shop.TABLES)
        say("source shop: " + ", ".join(f"{table} {rows} rows" for table, (rows, _) in counts.items()))

        say("starting the CDC core service")
        service = Service(state, logs / "cdc-service.log")
        stack.callback(service.stop)
        token_file = WORK / "api-token"
        token_file.touch(mode=0o600)
        token_file.write_text(service.token)  # the console's sign-in asks for it; never printed
        say(f"CDC core service on {service.url} (OpenAPI: {service.url}/openapi.json)")

        env = {
            **os.environ,
            "AIRFLOW_HOME": str(WORK / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW_CONN_CDC_CORE_DEFAULT": json.dumps(
                {"conn_type": "cdc_core", "host": service.url, "password": service.token}
            ),
            "AIRFLOW_CONN_CDC_SOURCE_DB": postgres_connection(source, "shop"),
            "AIRFLOW_CONN_CDC_SINK_DB": postgres_connection(sink, "warehouse"),
        }
        say("preparing Airflow (airflow db migrate)")
        airflow(env, "db", "migrate", log=logs / "airflow.log")

        runs = []
        for round_number, what in ((1, "initial snapshot"), (2, "changes since the first run")):
            say(f"run {round_number}: airflow dags test {DAG_ID} ({what})")
            round_started = time.monotonic()
            airflow(env, "dags", "test", DAG_ID, log=logs / f"dags-test-{round_number}.log")
            connector = service.get("/connectors?name=demo-shop")["items"][0]
            run = service.get(f"/connectors/{connector['connector']['id']}/runs/{connector['run_id']}")
            runs.append(run)
            say(
                f"run {round_number}: {run['state']} in {time.monotonic() - round_started:.1f}s,"
                f" run id {run['run_id']}, "
                + ", ".join(f"{table} {stats['rows']} rows" for table, stats in sorted(run["tables"].items()))
            )
            console_run = f"{service.url}/console/connectors/{run['connector_id']}/runs/{run['run_id']}"
            say(f"run {round_number} in the console: {console_run}")
            if round_number == 1:
                sample_shop.change(shop)
                say("changed the source: 150 orders inserted, orders shipped and deleted, customers and prices updated")

        source_prints = sample_shop.table_fingerprints(shop, sample_shop.TABLES)
        sink_prints = sample_shop.table_fingerprints(
            sink.conninfo("warehouse"),
            sample_shop.TABLES,
            {table: f"{SINK_SCHEMA}.{table.split('.', 1)[1]}" for table in sample_shop.TABLES},
        )
        say("source vs sink (rows, checksum):")
        equal = True
        for table in sample_shop.TABLES:
            same = source_prints[table] == sink_prints[table]
            equal &= same
            print(
                f"    {table:<18} {source_prints[table][0]:>6} rows -> {SINK_SCHEMA}.{table.split('.')[1]:<10} "
                f"{sink_prints[table][0]:>6} rows  {'equal' if same else 'DIFFERENT'}"
            )
        say(f"done in {time.monotonic() - started:.0f}s. Logs: {logs}; Airflow home: {WORK / 'airflow'}")
        say(f"console: {service.url}/console/ (sign in with the API token in {token_file})")
        say(f'metrics: curl -H "Authorization: Bearer $(cat {token_file})" {service.url}/metrics')
        if not equal:
            say("the sink differs from the source: see the logs above")
            return 1
        if KEEP:
            say("KEEP=1: the service and both databases stay up; press Ctrl-C to stop them")
            try:
                service.process.wait()
            except KeyboardInterrupt:
                say("stopping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
