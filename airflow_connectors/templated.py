"""Values of templated operator and sensor fields: given as Python objects, or rendered by Jinja into strings.

A field rendered from a template arrives as text (``"{{ params.force }}"`` renders ``"True"``, a dict pulled from
XCom renders as a Python literal); these helpers accept both forms and name the field when neither fits.
"""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def load_json_object(value: dict[str, Any] | str, *, field: str, base_dir: Path | None = None) -> dict[str, Any]:
    """A dict as given, a JSON object (or a dict literal rendered from XCom) in a string, or a JSON file (relative
    paths: next to the DAG file)."""
    if isinstance(value, dict):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected a dict, a JSON string or a JSON file path, got {type(value).__name__}")
    text = value.strip()
    if not text.startswith("{"):
        path = Path(text)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise ValueError(f"{field}: file {path} not found")
        text = path.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        try:  # a dict rendered by Jinja from an XCom is a Python literal, not JSON
            data = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            raise ValueError(f"{field}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{field}: expected a JSON object")
    return data


def as_bool(value: bool | str, *, field: str) -> bool:
    """A flag that may arrive rendered from a template (``"{{ params.force }}"`` renders ``"True"``)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"{field}: expected true or false, got {value!r}")


def as_resync(value: bool | str | list[str] | dict[str, list[str]]) -> bool | list[str] | dict[str, list[str]]:
    """``resync`` as given, or rendered from a template: ``"True"`` / ``"False"`` / a JSON or Python list, or a
    ``{"schema": ["table", ...]}`` mapping (for schema names with dots)."""
    if isinstance(value, (bool, list, dict)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        try:
            parsed = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            parsed = None
        if isinstance(parsed, (list, tuple)) and all(isinstance(item, str) for item in parsed):
            return list(parsed)
        if isinstance(parsed, dict):
            return parsed
    raise ValueError(f"resync: expected true, false, a list of tables or a {{schema: [tables]}} map, got {value!r}")


def as_moment(value: datetime | str, *, field: str) -> datetime:
    """A point in time as given or rendered (``"{{ data_interval_end }}"`` renders ISO 8601); naive means UTC."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{field}: expected an ISO 8601 time, got {value!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"{field}: expected a datetime or an ISO 8601 string, got {type(value).__name__}")
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
