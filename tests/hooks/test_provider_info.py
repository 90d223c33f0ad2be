"""Provider registration: valid against Airflow's own schema, every class importable, seen by Airflow."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import airflow
import jsonschema
import pytest

from airflow_connectors import get_provider_info

INFO = get_provider_info()


def test_valid_against_airflows_provider_info_schema() -> None:
    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(INFO, schema)


def _import(path: str) -> object:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def test_every_declared_class_and_module_imports() -> None:
    for conn in INFO["connection-types"]:
        hook = _import(conn["hook-class-name"])
        assert hook.conn_type == conn["connection-type"]
    for section in ("hooks", "operators", "sensors", "triggers"):
        for entry in INFO[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for link in INFO["extra-links"]:
        _import(link)


def test_connection_types_are_ours_and_secrets_are_password_fields() -> None:
    types = {conn["connection-type"] for conn in INFO["connection-types"]}
    assert types == {"cdc_core", "fivetran_api", "polytomic", "b3os"}
    for conn in INFO["connection-types"]:
        for name, field in conn["conn-fields"].items():
            if any(word in name for word in ("secret", "token", "key")) and name != "key_type":
                assert field["schema"].get("format") == "password", name


def test_the_connection_form_is_defined_once_in_the_provider_info() -> None:
    for conn in INFO["connection-types"]:
        hook = _import(conn["hook-class-name"])
        for cls in hook.__mro__:
            if cls.__module__.startswith("airflow_connectors."):
                assert not {"get_ui_field_behaviour", "get_connection_form_widgets"} & set(vars(cls)), cls
        if hook.default_url:  # the form shows the URL the hook uses when the host is left empty
            assert conn["ui-field-behaviour"]["placeholders"]["host"] == hook.default_url


def test_saas_hooks_merge_patches_without_the_cdc_service() -> None:
    code = (
        "import sys, airflow_connectors.hooks.polytomic, airflow_connectors.hooks.b3os;"
        "print(sorted(m for m in sys.modules if m.startswith('airflow_connectors.cdc')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"


@pytest.mark.slow
def test_airflow_shows_the_provider_info_form(airflow_env) -> None:  # type: ignore[no-untyped-def]
    from airflow.providers_manager import ProvidersManager

    behaviour = ProvidersManager().field_behaviours["cdc_core"]
    assert behaviour["relabeling"] == {"host": "Service URL", "password": "API token"}


@pytest.mark.slow
def test_airflow_providers_list_shows_the_provider(airflow_env) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "--output", "json"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=240,
        check=True,
    )
    listed = {item["package_name"]: item for item in json.loads(result.stdout[result.stdout.index("[") :])}
    assert listed["airflow-connectors"]["version"] == INFO["versions"][0]
