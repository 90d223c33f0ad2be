"""Encryption at rest of connector secrets (``password``, ``ssl_key``), Fernet as Airflow does.

``CDC_SECRET_KEY`` holds one Fernet key or several, comma-separated, newest first: old keys still decrypt, so a key
can be rotated without downtime (Airflow's ``fernet_key`` rotation works the same way).
"""

from __future__ import annotations

import re
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import BaseModel, SecretStr

from airflow_connectors.cdc.connectors.models import MASK, SECRET_KEYS

PREFIX = "fernet:"


class SecretKeyError(ValueError):
    """The configured key cannot be used (malformed) or cannot decrypt what is stored (wrong key)."""


WRONG_KEY = (
    "CDC_SECRET_KEY cannot decrypt the stored secrets: it is not the key they were written with. Set the old key "
    "back, or rotate keys with CDC_SECRET_KEY=new,old (comma-separated, newest first: old secrets still decrypt, "
    "new ones use the new key)"
)


class SecretBox:
    def __init__(self, keys: str) -> None:
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys.split(",") if key.strip()])
        except (ValueError, TypeError) as exc:
            raise SecretKeyError(
                "CDC_SECRET_KEY must be Fernet keys (32 url-safe base64 bytes each), comma-separated; generate one "
                "with `airflow-connectors-cdc generate-key`"
            ) from exc

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode()

    def encrypt(self, document: Any) -> Any:
        """A copy of a connector document with every secret value encrypted."""
        return self._walk(document, lambda value: PREFIX + self._fernet.encrypt(value.encode()).decode())

    def decrypt(self, document: Any) -> Any:
        return self._walk(document, self._decrypt_value)

    def _decrypt_value(self, value: str) -> str:
        if not value.startswith(PREFIX):
            raise SecretKeyError("a stored secret is not encrypted: the state store was written by something else")
        try:
            return self._fernet.decrypt(value[len(PREFIX) :].encode()).decode()
        except InvalidToken:
            raise SecretKeyError(WRONG_KEY) from None

    def _walk(self, document: Any, convert: Any) -> Any:
        if isinstance(document, dict):
            return {
                key: convert(value) if key in SECRET_KEYS and isinstance(value, str) else self._walk(value, convert)
                for key, value in document.items()
            }
        if isinstance(document, list):
            return [self._walk(item, convert) for item in document]
        return document


def secret_values(model: Any) -> list[str]:
    """Every SecretStr value inside a pydantic model, to scrub from unexpected error messages."""
    if isinstance(model, SecretStr):
        value = model.get_secret_value()
        return [value] if value else []
    if isinstance(model, BaseModel):
        return [s for name in type(model).model_fields for s in secret_values(getattr(model, name))]
    if isinstance(model, dict):
        return [s for item in model.values() for s in secret_values(item)]
    if isinstance(model, list | tuple):
        return [s for item in model for s in secret_values(item)]
    return []


SCRUB_ANYWHERE_LENGTH = 8  # shorter secrets would match inside ordinary words ("x" in "syntax")


def scrub(message: str, secrets: list[str]) -> str:
    """Mask every occurrence of a secret of meaningful length; a short one only where it stands as a whole token
    (``password=x``, ``user:x@host``, ``'x'``), so words around it are never mangled."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= SCRUB_ANYWHERE_LENGTH:
            message = message.replace(secret, MASK)
        else:
            message = re.sub(rf"(?<![\w]){re.escape(secret)}(?![\w])", MASK, message)
    return message
