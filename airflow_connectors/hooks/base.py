"""The interface every connector hook implements, so operators, sensors and triggers are API-agnostic.

Why a common interface: "create", "patch", "sync" and "wait" mean the same thing for every connector API
(DESIGN.md, decision 8). Each hook maps them onto its API; vendor-only options travel as typed keyword
arguments, validated before any request is sent.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from airflow.sdk import BaseHook


class SyncState(enum.StrEnum):
    """One normalised status of a sync / replication run across APIs."""

    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self is not SyncState.RUNNING


@dataclass(frozen=True)
class SyncRef:
    """What identifies one sync / run. JSON-serialisable: it travels through XCom and trigger kwargs.

    ``run_id`` is the API's own run / execution id where it has one (CDC core, Polytomic). ``baseline`` holds
    what an API without run ids needs to decide completion (Fivetran: ``succeeded_at`` / ``failed_at`` recorded
    just before the sync was triggered).
    """

    conn_type: str
    connector_id: str
    run_id: str | None = None
    baseline: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyncRef:
        return cls(
            conn_type=data["conn_type"],
            connector_id=data["connector_id"],
            run_id=data.get("run_id"),
            baseline=dict(data.get("baseline") or {}),
        )


@dataclass(frozen=True)
class SyncStatus:
    """The state of one sync, normalised, with the API's raw state kept for logs and errors.

    ``rows`` (total rows moved, when the API reports it), ``lag_bytes`` / ``lag_seconds`` (CDC core) and
    ``tables`` (sink tables touched, for Assets and lineage) are optional: ``None`` means unknown.
    """

    state: SyncState
    raw_state: str
    ref: SyncRef
    message: str | None = None
    rows: int | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    tables: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        data["tables"] = list(self.tables)
        return data


class ConnectorHook(BaseHook, ABC):
    """Common interface of the four connector hooks (same names, same return types).

    Connectors are plain dicts as the API returns them (the API's own shape); the id is always under
    ``connector_id_key``. Every method raises :class:`airflow_connectors.hooks.http.ApiError` (or a subclass) for
    API errors and ``ValueError`` naming the field for input rejected locally before any request.
    """

    conn_name_attr: ClassVar[str] = "conn_id"
    connector_id_key: ClassVar[str] = "id"

    # -- connectors -------------------------------------------------------------------------------------------
    @abstractmethod
    def create_connector(self, body: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]: ...

    @abstractmethod
    def get_connector(self, connector_id: str) -> dict[str, Any]: ...

    @abstractmethod
    def find_connector_by_name(self, name: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def patch_connector(self, connector_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch semantics on every API (read, merge and send where the API replaces)."""

    @abstractmethod
    def validate_patch(self, patch: dict[str, Any], current: dict[str, Any] | None = None) -> None:
        """Raise ``ValueError`` naming the field for what the API would reject; sends no request."""

    @abstractmethod
    def delete_connector(self, connector_id: str) -> None: ...

    @abstractmethod
    def set_schedule(self, connector_id: str, schedule: dict[str, Any]) -> dict[str, Any]: ...

    @abstractmethod
    def pause_connector(self, connector_id: str) -> None: ...

    @abstractmethod
    def resume_connector(self, connector_id: str) -> None: ...

    # -- syncs ------------------------------------------------------------------------------------------------
    @abstractmethod
    def trigger_sync(
        self, connector_id: str, *, resync: bool | list[str] = False, force: bool = False, **options: Any
    ) -> SyncRef: ...

    @abstractmethod
    def get_sync_status(self, ref: SyncRef) -> SyncStatus: ...

    @abstractmethod
    async def aget_sync_status(self, ref: SyncRef) -> SyncStatus:
        """Async twin for triggers: connection via ``BaseHook.aget_connection``, never blocks the loop."""

    @abstractmethod
    def cancel_sync(self, ref: SyncRef) -> bool:
        """Cancel the sync; ``False`` where the API cannot cancel."""

    @abstractmethod
    async def acancel_sync(self, ref: SyncRef) -> bool: ...

    @abstractmethod
    def find_active_sync(self, connector_id: str) -> SyncRef | None:
        """The sync still running for this connector, if any: lets a retried task re-attach to it."""

    # -- links ------------------------------------------------------------------------------------------------
    @abstractmethod
    def connector_url(self, connector_id: str) -> str | None: ...

    @abstractmethod
    def sync_url(self, ref: SyncRef) -> str | None: ...

    @abstractmethod
    def test_connection(self) -> tuple[bool, str]: ...
