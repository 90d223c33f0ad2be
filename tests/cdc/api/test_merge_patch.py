"""RFC 7396 merge patch, table-driven from the RFC's own Appendix A, plus the connector's patch rules."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_connectors.cdc.connectors.models import MASK, Connector
from airflow_connectors.cdc.connectors.patch import PatchError, apply_patch
from airflow_connectors.merge_patch import merge_patch

RFC7396_APPENDIX_A: list[tuple[Any, Any, Any]] = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7396_APPENDIX_A)
def test_rfc7396_appendix_a(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


def test_merge_does_not_mutate_its_inputs() -> None:
    target, patch = {"a": {"b": 1}}, {"a": {"c": [1]}}
    merged = merge_patch(target, patch)
    merged["a"]["c"].append(2)
    assert target == {"a": {"b": 1}} and patch == {"a": {"c": [1]}}


def _connector() -> Connector:
    connection = {"host": "db.example", "user": "u", "password": "s3cret", "database": "app"}
    return Connector.model_validate(
        {
            "id": "c1",
            "name": "orders",
            "source": {"postgres": {"connection": connection, "replication_type": {"logical_replication": {}}}},
            "sink": {"postgres": {"connection": {**connection, "password": "sink-s3cret"}}},
            "schedule": {"interval_seconds": 60},
        }
    )


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"source": {"postgres": {"connection": {"host": "other"}}}}, "source.postgres.connection.host"),
        ({"sink": {"postgres": {"connection": {"port": 6432}}}}, "sink.postgres.connection.port"),
        ({"sink": {"postgres": {"connection": {"database": "x"}}}}, "sink.postgres.connection.database"),
        ({"source": {"mysql": {}}}, "source.mysql"),
        ({"source": {"postgres": None}}, "source.postgres"),
        ({"sink": None}, "sink"),
        ({"source": {"postgres": {"connection": {"user": None}}}}, "source.postgres.connection.user"),
        ({"source": {"postgres": {"replication_type": None}}}, "source.postgres.replication_type"),
        ({"id": "other"}, "id"),
    ],
)
def test_rejected_patches_name_the_field(patch: dict[str, Any], field: str) -> None:
    with pytest.raises(PatchError) as caught:
        apply_patch(_connector(), patch)
    assert caught.value.field == field


def test_patch_semantics_on_a_connector() -> None:
    current = _connector()
    patched = apply_patch(
        current,
        {
            "name": None,  # optional: cleared
            "schedule": {"interval_seconds": None, "cron": "*/5 * * * *"},  # objects merge, null deletes
            "source": {"postgres": {"connection": {"host": "db.example", "password": MASK, "port": 5432}}},
            "sink": {"postgres": {"target_schema": "replica"}},
        },
    )
    assert patched.name is None
    assert patched.schedule is not None and patched.schedule.cron == "*/5 * * * *"
    assert patched.schedule.interval_seconds is None
    assert patched.source.postgres.connection.password.get_secret_value() == "s3cret"  # masked value keeps it
    assert patched.sink.postgres.target_schema == "replica"
    assert patched.sink.postgres.connection.password.get_secret_value() == "sink-s3cret"
    assert apply_patch(current, {}) == current
