"""The connector's patch rules (immutable and required fields, masked secrets) around JSON Merge Patch.

Why a separate module: the same rules are applied by the service and, before sending anything, by the Airflow
``CdcHook`` (so a DAG fails at the task that built the bad patch, with the same message the API would give).
"""

from __future__ import annotations

import types
import typing
from typing import Any, Union

from pydantic import BaseModel, SecretStr

from airflow_connectors.cdc.connectors.models import MASK, SECRET_KEYS, Connector, PostgresConnection, Sink, Source
from airflow_connectors.merge_patch import merge_patch

# Changing these would point an existing connector (its slot, its checkpoints) at another database.
IMMUTABLE_CONNECTION_FIELDS = ("host", "port", "database")
# A stored secret is only ever sent to the server it was stored for, over the TLS settings it was stored with.
SECRET_BOUND_FIELDS = (*IMMUTABLE_CONNECTION_FIELDS, "ssl_mode", "ssl_cert", "ssl_key", "ssl_root_cert")


class PatchError(ValueError):
    """A patch the connector cannot accept; ``field`` is the dotted path of the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def drop_masked_secrets(document: Any) -> Any:
    """Remove secret fields whose value is the mask, so sending a GET response back keeps the stored secret."""
    if isinstance(document, dict):
        return {
            key: drop_masked_secrets(value)
            for key, value in document.items()
            if not (key in SECRET_KEYS and value == MASK)
        }
    if isinstance(document, list):
        return [drop_masked_secrets(item) for item in document]
    return document


def restore_masked_secrets(document: Any, stored: Any) -> Any:
    """For a full replace: a secret sent back masked takes the stored value at the same place."""
    if isinstance(document, dict):
        return {
            key: (
                stored.get(key)
                if key in SECRET_KEYS and value == MASK and isinstance(stored, dict)
                else restore_masked_secrets(value, stored.get(key) if isinstance(stored, dict) else None)
            )
            for key, value in document.items()
        }
    return document


def has_masked_secret(document: Any) -> bool:
    if isinstance(document, dict):
        return any(
            (key in SECRET_KEYS and value == MASK) or has_masked_secret(value) for key, value in document.items()
        )
    if isinstance(document, list):
        return any(has_masked_secret(item) for item in document)
    return False


def check_secret_target(sent: PostgresConnection, stored: PostgresConnection, where: str) -> None:
    """Refuse to fill a masked secret into a connection that names another server (or weaker TLS) than the stored
    one: otherwise anyone with the token could have the service send a stored password to a host of their choice."""
    for name in SECRET_BOUND_FIELDS:
        mine, theirs = getattr(sent, name), getattr(stored, name)
        if isinstance(mine, SecretStr):
            if mine.get_secret_value() == MASK:
                continue  # the stored value itself
            mine = mine.get_secret_value()
        if isinstance(theirs, SecretStr):
            theirs = theirs.get_secret_value()
        if mine != theirs:
            raise PatchError(
                f"{where}.{name}",
                "differs from the stored connector's, so its stored secrets cannot be used: send the password "
                "itself (a stored secret is only sent to the server it was stored for)",
            )


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``X | None`` (or ``X`` itself); None for scalars, dicts and lists."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if (model := _model_of(arg)) is not None:
                return model
    return None


def check_required(model: type[BaseModel], patch: dict[str, Any], path: str) -> None:
    for key, value in patch.items():
        field = model.model_fields.get(key)
        if field is None:
            continue  # unknown fields are reported by the model validation after the merge
        where = f"{path}.{key}" if path else key
        if value is None and field.is_required():
            raise PatchError(where, "is required and cannot be removed")
        inner = _model_of(field.annotation)
        if inner is not None and isinstance(value, dict):
            check_required(inner, value, where)


def check_patch(current: Connector | None, patch: Any) -> None:
    """Reject what a merge patch may not do to an existing connector, naming the field.

    Without ``current`` (a client checking before it sends), only the rules that need no stored connector are
    applied: no unknown or removed source / sink type, no required field removed.
    """
    if not isinstance(patch, dict):
        raise PatchError("", "a merge patch of a connector must be a JSON object")
    if current is not None and "id" in patch and patch["id"] != current.id:
        raise PatchError("id", "is immutable")
    for side, model in (("source", Source), ("sink", Sink)):
        if side not in patch:
            continue
        sent = patch[side]
        if not isinstance(sent, dict):
            raise PatchError(side, "is required and must be an object with one variant key")
        allowed = (getattr(current, side).variant,) if current is not None else tuple(model.model_fields)
        for key, value in sent.items():
            if key not in allowed or value is None:
                now = f" (it is {allowed[0]!r})" if current is not None else ""
                raise PatchError(f"{side}.{key}", f"the {side} type cannot be changed{now}")
        if current is None:
            continue
        variant = allowed[0]
        body = sent.get(variant)
        connection = body.get("connection") if isinstance(body, dict) else None
        if not isinstance(connection, dict):
            continue
        stored = getattr(getattr(current, side), variant).connection
        for name in IMMUTABLE_CONNECTION_FIELDS:
            if name in connection and connection[name] != getattr(stored, name):
                raise PatchError(f"{side}.{variant}.connection.{name}", "is immutable after creation")
    check_required(Connector, patch, "")


def apply_patch(current: Connector, patch: Any) -> Connector:
    """Check, merge onto the stored document (secrets revealed) and validate the result."""
    check_patch(current, patch)
    merged = merge_patch(current.stored(), drop_masked_secrets(patch))
    return Connector.model_validate(merged)
