"""The connector schema: the seed's minimal body gets every documented default; bad input names the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pydantic import ValidationError

from airflow_connectors.cdc.connectors.models import MASK, Connector

# The create example of seed 001, verbatim.
SEED_MINIMAL_BODY: dict[str, Any] = {
    "id": "string",
    "source": {
        "postgres": {
            "connection": {"host": "example.com", "user": "string", "password": "pa$$word", "database": "string"},
            "replication_type": {"logical_replication": {}},
        }
    },
    "sink": {
        "postgres": {
            "connection": {"host": "example.com", "user": "string", "password": "pa$$word", "database": "string"}
        }
    },
}


# The response example of seed 001 (every field, placeholder values), sent back as a body by an echoing client.
SEED_FULL_EXAMPLE: dict[str, Any] = json.loads(
    """{"id": "string", "source": {"postgres": {"connection": {"host": "example.com", "port": 5432, "user": "string", "password": "pa$$word", "database": "string", "ssl_mode": "Prefer", "ssl_cert": "string", "ssl_key": "string", "ssl_root_cert": "string", "max_pool_size": 0, "operation_lock_timeout_seconds": 0}, "replication_type": {"logical_replication": {"retry_window_seconds": 0, "skip_snapshots": false}}, "parallel_snapshots_enabled": true, "partitions_as_root": false, "catalog": {}}}, "sink": {"postgres": {"connection": {"host": "example.com", "port": 5432, "user": "string", "password": "pa$$word", "database": "string", "ssl_mode": "Prefer", "ssl_cert": "string", "ssl_key": "string", "ssl_root_cert": "string", "max_pool_size": 0, "operation_lock_timeout_seconds": 0}, "target_schema": "string", "migration_strategy": {}}}, "buffer": {}, "limits": {}, "disabled": false, "schedule": {}, "name": "string"}"""  # noqa: E501
)


def test_the_seeds_full_example_is_accepted_as_a_body() -> None:
    connector = Connector.model_validate(SEED_FULL_EXAMPLE)
    assert connector.schedule is None  # "schedule": {} means none
    assert connector.source.postgres.connection.pool_size == 4  # "max_pool_size": 0 means the default
    assert connector.buffer is not None and connector.buffer.max_rows == 50_000
    assert connector.source.postgres.replication_type.logical_replication.retry_window_seconds == 0


def test_defaults_of_the_minimal_seed_body() -> None:
    document = Connector.model_validate(SEED_MINIMAL_BODY).model_dump(mode="json")
    source = document["source"]["postgres"]
    assert source["connection"] == {
        "host": "example.com",
        "port": 5432,
        "user": "string",
        "password": MASK,
        "database": "string",
        "ssl_mode": "Prefer",
        "ssl_cert": None,
        "ssl_key": None,
        "ssl_root_cert": None,
        "max_pool_size": 4,
        "operation_lock_timeout_seconds": 30,
    }
    assert source["replication_type"] == {"logical_replication": {"retry_window_seconds": 300, "skip_snapshots": False}}
    assert (source["parallel_snapshots_enabled"], source["partitions_as_root"], source["catalog"]) == (
        True,
        False,
        {"schemas": {}},
    )
    sink = document["sink"]["postgres"]
    assert sink["target_schema"] == "public"
    assert sink["migration_strategy"] == {
        "added_columns": "apply",
        "dropped_columns": "keep",
        "retyped_columns": "fail",
        "dropped_tables": "keep",
    }
    assert (document["disabled"], document["buffer"], document["limits"], document["schedule"]) == (
        False,
        None,
        None,
        None,
    )


@pytest.mark.parametrize("mode", ["Disable", "Allow", "Prefer", "Require", "VerifyCa", "VerifyFull"])
def test_the_six_ssl_modes(mode: str) -> None:
    body = copy.deepcopy(SEED_MINIMAL_BODY)
    body["sink"]["postgres"]["connection"]["ssl_mode"] = mode
    connection = Connector.model_validate(body).sink.postgres.connection
    assert f"sslmode={mode.lower().replace('verify', 'verify-')}" in connection.conninfo()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["source"].update({"mysql": {}}), "source"),
        (lambda b: b.update({"source": {"mysql": {}}}), "source"),
        (lambda b: b["source"]["postgres"]["connection"].update({"port": 70000}), "source.postgres.connection.port"),
        (lambda b: b["sink"]["postgres"]["connection"].update({"ssl_mode": "prefer"}), "ssl_mode"),
        (lambda b: b.update({"name": ""}), "name"),
        (lambda b: b.update({"schedule": {"interval_seconds": 60, "cron": "* * * * *"}}), "schedule"),
        (lambda b: b.update({"schedule": {"cron": "61 * * * *"}}), "schedule"),
        (lambda b: b.update({"schedule": {"cron": "* * * * *", "timezone": "Mars/Base"}}), "schedule"),
        (lambda b: b["sink"]["postgres"].update({"target_schema": "x" * 64}), "target_schema"),
        (lambda b: b["sink"]["postgres"].update({"target_schema": "_airflow_connectors"}), "target_schema"),
        (lambda b: b["sink"]["postgres"].update({"target_schema": "pg_catalog"}), "target_schema"),
        (lambda b: b["sink"]["postgres"].update({"migration_strategy": {"added_columns": "ignore"}}), "added_columns"),
        (lambda b: b.update({"buffer": {"max_rows": 0}}), "max_rows"),
        (lambda b: b.update({"unknown_field": 1}), "unknown_field"),
        (
            lambda b: b["source"]["postgres"].update(
                {
                    "catalog": {
                        "schemas": {"public": {"tables": {"t": {"include_columns": ["a"], "exclude_columns": []}}}}
                    }
                }
            ),
            "catalog",
        ),
    ],
)
def test_invalid_bodies_name_the_field(change: Any, field: str) -> None:
    body = copy.deepcopy(SEED_MINIMAL_BODY)
    change(body)
    with pytest.raises(ValidationError) as caught:
        Connector.model_validate(body)
    assert field in ".".join(str(part) for part in caught.value.errors()[0]["loc"])
    assert "pa$$word" not in str(caught.value.errors(include_input=False))


def test_catalog_selection() -> None:
    body = copy.deepcopy(SEED_MINIMAL_BODY)
    body["source"]["postgres"]["catalog"] = {
        "schemas": {"sales": {"tables": {"orders": {"exclude_columns": ["notes"]}}}, "hr": {}}
    }
    catalog = Connector.model_validate(body).source.postgres.catalog
    assert catalog.selects("sales", "orders") and not catalog.selects("sales", "other")
    assert catalog.selects("hr", "anything") and not catalog.selects("public", "orders")
    assert catalog.table("sales", "orders").columns(["id", "notes", "total"]) == ["id", "total"]
