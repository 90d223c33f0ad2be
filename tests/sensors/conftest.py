"""Fixtures of the sensors tests (shared with the other Airflow-side tests)."""

from tests.operators.cdc_support import cdc_conn, fake_cdc, runs  # noqa: F401
