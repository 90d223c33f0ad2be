"""Connections made for other providers: fivetran-async's ``Fivetran`` type, generic ``http`` connections."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from airflow_connectors.hooks.fivetran import FivetranHook
from airflow_connectors.hooks.polytomic import PolytomicHook
from airflow_connectors.hooks.registry import get_hook, resolve_conn_type
from tests.fakes.fivetran import FakeFivetran


@pytest.mark.parametrize("conn_type", ["Fivetran", "fivetran"])  # JSON form / URI form (fivetran://key:secret@)
def test_a_fivetran_async_connection_is_accepted_with_its_extras(
    fake_fivetran: FakeFivetran, airflow_connection: Callable[..., str], conn_type: str
) -> None:
    conn_id = airflow_connection(
        "fivetran_default",
        conn_type=conn_type,
        host=fake_fivetran.url,  # fivetran-async leaves host empty (the public API); here: the fake
        login=fake_fivetran.api_key,
        password=fake_fivetran.api_secret,
        extra={"extra__Fivetran__read_timeout": 3, "max_retries": 1},
    )
    hook = get_hook(conn_id)
    assert type(hook) is FivetranHook
    connection = hook.create_connector({"group_id": "g", "service": "postgres", "config": {"schema": "s"}})
    assert hook.get_connector(connection["id"])["schema"] == "s"
    assert hook.test_connection() == (True, "Fivetran API reachable, credentials accepted")
    settings, _ = hook._prepare(hook.get_connection(conn_id))
    assert (settings.read_timeout, settings.retry.max_attempts) == (3.0, 2)


def test_a_generic_http_connection_is_told_by_its_connector_type_extra(
    fake_fivetran: FakeFivetran, airflow_connection: Callable[..., str]
) -> None:
    conn_id = airflow_connection(
        "ft_http",
        conn_type="http",
        host=fake_fivetran.url,
        login=fake_fivetran.api_key,
        password=fake_fivetran.api_secret,
        extra={"connector_type": "fivetran_api"},
    )
    hook = get_hook(conn_id)
    assert type(hook) is FivetranHook
    assert hook.list_connectors() == []


@pytest.mark.parametrize(
    ("host", "schema", "expected", "url"),
    [
        ("api.fivetran.com", None, FivetranHook, "https://api.fivetran.com"),
        ("https://api.fivetran.com", None, FivetranHook, "https://api.fivetran.com"),
        ("app.polytomic.com", "https", PolytomicHook, "https://app.polytomic.com"),
    ],
)
def test_a_generic_http_connection_to_a_public_api_host_is_told_by_the_host(
    airflow_connection: Callable[..., str], host: str, schema: str | None, expected: type, url: str
) -> None:
    conn_id = airflow_connection("vendor_http", conn_type="http", host=host, login="k", password="s")
    hook = get_hook(conn_id)
    assert type(hook) is expected
    settings, _ = hook._prepare(hook.get_connection(conn_id))
    assert settings.base_url == url


def test_a_generic_http_connection_the_hook_cannot_tell_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"cannot tell .*'cdc\.internal:8042'.*connector_type"):
        resolve_conn_type("http", "cdc.internal:8042", {})
    with pytest.raises(ValueError, match="extra.connector_type: 'airbyte'"):
        resolve_conn_type("http", "localhost:8000", {"connector_type": "airbyte"})
    assert resolve_conn_type("http", "cdc.internal:8042", {"connector_type": "cdc_core"}) == "cdc_core"
    with pytest.raises(ValueError, match="not a connector connection type"):
        resolve_conn_type("airbyte")
