"""One default connection id per connection type, the same in hooks, README, docs, example DAGs and the demo.

Why: the CDC hook said ``cdc_core_default`` while the README and the DAGs said ``cdc_default``; a user following
the README got a hook that looked for a connection nobody had made.
"""

from __future__ import annotations

import re
from pathlib import Path

from airflow_connectors.hooks.registry import CONN_TYPE_ALIASES, HOOK_CLASSES, hook_class

ROOT = Path(__file__).resolve().parents[1]
# Other providers' connection ids, named where docs/migrating.md shows the "before".
FOREIGN = {"airbyte_default", "dbt_cloud_default"}
# A conn id in code (``conn_id="x"``, ``CONN_ID = "x"``), in prose (`x`) or as an environment variable.
MENTIONS = (
    re.compile(r"""conn_id\s*=\s*["']([\w.-]+_default)["']""", re.IGNORECASE),
    re.compile(r"`([\w.-]+_default)`"),
    re.compile(r"\bAIRFLOW_CONN_([A-Z0-9_]+_DEFAULT)\b"),
)


def documented_files() -> list[Path]:
    return [
        ROOT / "README.md",
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "dags").glob("*.py"),
        *(ROOT / "airflow_connectors" / "demo").glob("*.py"),
    ]


def defaults() -> dict[str, str]:
    """conn type -> the hook's default connection id."""
    return {conn_type: hook_class(conn_type).default_conn_name for conn_type in HOOK_CLASSES}


def test_default_ids_follow_the_type_default_convention() -> None:
    for conn_type, default in defaults().items():
        types = {conn_type, *(alias for alias, canonical in CONN_TYPE_ALIASES.items() if canonical == conn_type)}
        assert default.removesuffix("_default") in types, (conn_type, default)
    assert defaults()["cdc_core"] == "cdc_core_default"


def test_every_default_id_mentioned_is_a_hooks_default() -> None:
    known = set(defaults().values()) | FOREIGN
    wrong = {}
    for path in documented_files():
        text = path.read_text()
        for pattern in MENTIONS:
            for found in pattern.findall(text):
                if found.lower() not in known:
                    wrong.setdefault(str(path.relative_to(ROOT)), set()).add(found)
    assert not wrong, f"default connection ids no hook uses: {wrong} (hooks use {sorted(known)})"
