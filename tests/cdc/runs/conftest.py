"""Fixtures of the runs tests: a real state database with the store's migrations applied."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

import airflow_connectors.cdc as cdc_package


@pytest.fixture
def state_dsn(make_database: Callable[[str], str]) -> str:
    """A fresh state database with the runs table."""
    dsn = make_database("state")
    migration = Path(cdc_package.__file__).parent / "store_migrations" / "002_runs.sql"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(migration.read_text())
    return dsn


@pytest.fixture
def state_conn(state_dsn: str) -> psycopg.Connection:
    with psycopg.connect(state_dsn, autocommit=True) as conn:
        yield conn
