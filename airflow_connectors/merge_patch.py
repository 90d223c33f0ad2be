"""JSON Merge Patch (RFC 7396), free of Airflow and of the CDC service: the service applies it to connectors, and
the Polytomic and B3OS hooks use it where their APIs replace a document instead of merging."""

from __future__ import annotations

import copy
from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 section 2: objects merge recursively, ``null`` deletes, anything else (arrays too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
