"""The migration page's examples use parameters our operator and sensor really take (docs cannot drift)."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from airflow.sdk import BaseOperator, BaseSensorOperator

from airflow_connectors.operators.connector import SyncConnectorOperator
from airflow_connectors.sensors.sync import ConnectorSyncSensor

PAGE = Path(__file__).resolve().parents[1] / "docs" / "migrating.md"
OURS = {"SyncConnectorOperator": SyncConnectorOperator, "ConnectorSyncSensor": ConnectorSyncSensor}


def parameters(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in (cls, BaseSensorOperator if issubclass(cls, BaseSensorOperator) else BaseOperator, BaseOperator):
        names |= set(inspect.signature(klass.__init__).parameters)
    return names - {"self", "kwargs"}


def after_examples() -> list[str]:
    """The ``# after`` half of every python example on the page."""
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), re.DOTALL)
    return [block.split("# after", 1)[1].split("\n", 1)[1] for block in blocks if "# after" in block]


def test_the_examples_use_our_parameters() -> None:
    examples = after_examples()
    assert len(examples) == 3  # fivetran-async, Airbyte, dbt Cloud
    calls = 0
    for example in examples:
        for node in ast.walk(ast.parse(example)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in OURS:
                unknown = {k.arg for k in node.keywords} - parameters(OURS[node.func.id])
                assert not unknown, f"{node.func.id} takes no {sorted(unknown)} (docs/migrating.md)"
                calls += 1
    assert calls >= 5


def test_the_examples_conn_ids_are_default_ids() -> None:
    from airflow_connectors.hooks.registry import HOOK_CLASSES, hook_class

    defaults = {hook_class(conn_type).default_conn_name for conn_type in HOOK_CLASSES}
    for example in after_examples():
        for conn_id in re.findall(r'conn_id="([^"]+)"', example):
            assert conn_id in defaults, conn_id
