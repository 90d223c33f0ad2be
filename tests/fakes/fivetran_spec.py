"""Fivetran's own OpenAPI document as a validator of requests and responses, for the fake and for the tests.

The document is reference data outside the project (``shared/contracts/fivetran-openapi.json`` beside a checkout,
or ``$FIVETRAN_OPENAPI``); without it, the checks that need it are skipped. Read as the API behaves, not to the
letter, in three documented places:

- integer enums are written as strings (``sync_frequency``: ``"15"``): they are read as integers;
- maps keyed by a name (schemas, tables, columns, the table-resync body) are written as an object with one
  placeholder property (``"schema"``, ``"table"``): they are read as maps whose values have that property's schema;
- no field is marked nullable, yet the API sends ``null`` for "never" (``succeeded_at``): responses are validated
  without their nulls.
The per-service create schemas (``postgres_NewConnectorRequestV1``, ...) are not applied: they contradict the API
(``update_method`` typed object with string values), so only the common ``NewConnectorRequestV1`` is.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import jsonschema

RELATIVE = Path("shared") / "contracts" / "fivetran-openapi.json"


def find_spec() -> Path | None:
    """``$FIVETRAN_OPENAPI``, else ``shared/contracts/`` beside the checkout or any folder above it (a worktree
    lives deeper than the main checkout)."""
    if os.environ.get("FIVETRAN_OPENAPI"):
        return Path(os.environ["FIVETRAN_OPENAPI"])
    for folder in Path(__file__).resolve().parents[2].parents:
        if (folder / RELATIVE).is_file():
            return folder / RELATIVE
    return None


SPEC_PATH = find_spec()


def _as_read(node: Any) -> Any:
    """The document as the API behaves (see the module docstring)."""
    if isinstance(node, list):
        return [_as_read(item) for item in node]
    if not isinstance(node, dict):
        return node
    fixed = {key: _as_read(value) for key, value in node.items()}
    if fixed.get("type") == "integer" and isinstance(fixed.get("enum"), list):
        fixed["enum"] = [int(value) for value in fixed["enum"]]
    properties = fixed.get("properties")
    if fixed.get("type") == "object" and isinstance(properties, dict) and len(properties) == 1:
        (only,) = properties.values()
        keyed = "each key" in str(fixed.get("description", "")).lower()
        if keyed or (isinstance(only, dict) and only.get("title") == "Schema name"):
            fixed = {key: value for key, value in fixed.items() if key != "properties"}
            fixed["additionalProperties"] = only
    return fixed


def without_nulls(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: without_nulls(value) for key, value in node.items() if value is not None}
    if isinstance(node, list):
        return [without_nulls(item) for item in node]
    return node


class FivetranSpec:
    """Request and response schemas of the document (``$ref`` resolved against the whole file)."""

    def __init__(self, path: Path) -> None:
        self.document = _as_read(json.loads(path.read_text()))

    @cached_property
    def _templates(self) -> list[tuple[re.Pattern[str], str]]:
        templates = []
        for template in self.document["paths"]:
            pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
            templates.append((re.compile(f"^{pattern}$"), template))
        # Literal segments win over parameters (``/schemas/tables/resync`` before ``/schemas/{schemaName}``).
        return sorted(templates, key=lambda item: item[1].count("{"))

    def operation(self, method: str, path: str) -> dict[str, Any] | None:
        """The operation serving ``method path`` (a concrete path), or None when the document has none."""
        for pattern, template in self._templates:
            if pattern.match(path) and method.lower() in self.document["paths"][template]:
                return dict(self.document["paths"][template][method.lower()])
        return None

    def errors(self, schema: dict[str, Any], instance: Any) -> list[str]:
        wrapped = {**schema, "components": self.document["components"]}
        found = sorted(jsonschema.Draft7Validator(wrapped).iter_errors(instance), key=lambda e: list(e.path))
        return [f"at {list(error.path)}: {error.message}" for error in found]

    def request_errors(self, method: str, path: str, body: Any) -> list[str]:
        """What is wrong with a request body (``[]`` when it is valid or the operation takes none)."""
        operation = self.operation(method, path)
        if operation is None:
            return [f"{method} {path} is not an operation of Fivetran's API"]
        schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        if schema is None or body is None:
            return []
        return self.errors(schema, body)

    def response_errors(self, schema_name: str, data: Any) -> list[str]:
        return self.errors({"$ref": f"#/components/schemas/{schema_name}"}, without_nulls(data))

    def request_fields(self, schema_name: str) -> dict[str, Any]:
        """The properties a request schema declares (resolved one ``$ref`` deep)."""
        properties = self.document["components"]["schemas"][schema_name].get("properties", {})
        resolved = {}
        for name, schema in properties.items():
            ref = schema.get("$ref", "")
            resolved[name] = self.document["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema
        return resolved


@cache
def load_spec() -> FivetranSpec | None:
    """The document, read once per process (3 MB), or None when it is not there."""
    return FivetranSpec(SPEC_PATH) if SPEC_PATH is not None else None
