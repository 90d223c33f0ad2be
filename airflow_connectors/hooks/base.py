"""The interface every connector hook implements, so operators, sensors and triggers are API-agnostic.

Why a common interface: "create", "patch", "sync" and "wait" mean the same thing for every connector API
(DESIGN.md, decision 8). Each hook maps them onto its API; vendor-only options travel as typed keyword
arguments, validated before any request is sent.
"""

from __future__ import annotations

import enum
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from airflow.sdk import BaseHook

from airflow_connectors.lineage import Dataset, saas_datasets
from airflow_connectors.waiting import poll_schedule

# How long ``force`` waits for a cancelled sync to end before it starts the next one.
FORCE_CANCEL_TIMEOUT = 120.0


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SyncStatus:
        """The inverse of :meth:`to_dict` (a status travels through trigger events as JSON)."""
        return cls(
            state=SyncState(data["state"]),
            raw_state=str(data["raw_state"]),
            ref=SyncRef.from_dict(data["ref"]),
            message=data.get("message"),
            rows=data.get("rows"),
            lag_bytes=data.get("lag_bytes"),
            lag_seconds=data.get("lag_seconds"),
            tables=tuple(data.get("tables") or ()),
            details=dict(data.get("details") or {}),
        )

    @property
    def label(self) -> str:
        """How messages name the run: by its id where the API has run ids."""
        ref = self.ref
        return f"connector {ref.connector_id} run {ref.run_id}" if ref.run_id else f"connector {ref.connector_id} sync"

    def describe(self) -> str:
        """One log line per poll: run, state, rows, lag, tables (never a connection detail)."""
        text = f"{self.label}: {self.state.value} ({self.raw_state})"
        if self.rows is not None:
            text += f", rows {self.rows}"
        if self.lag_bytes is not None:
            text += f", lag {self.lag_bytes} bytes"
        if self.lag_seconds is not None:
            text += f", lag {self.lag_seconds:.1f} s"
        if self.tables:
            text += f", {len(self.tables)} tables"
        return text

    def failure(self, *, min_rows: int | None = None, max_lag_bytes: int | None = None) -> str | None:
        """Why this status fails the task, or ``None`` for a success (meeting the optional assertions): failed and
        cancelled runs are failures with the run's own error, and so is a run still going."""
        if self.state is SyncState.FAILED:
            return f"{self.label} failed: {self.message or self.raw_state}"
        if self.state is SyncState.CANCELLED:
            return f"{self.label} was cancelled" + (f": {self.message}" if self.message else "")
        if self.state is SyncState.RUNNING:
            return f"{self.label} is still running"
        if min_rows is not None and (self.rows is None or self.rows < min_rows):
            return f"{self.label} moved {self.rows} rows, fewer than min_rows={min_rows}"
        if max_lag_bytes is not None and self.lag_bytes is not None and self.lag_bytes > max_lag_bytes:
            return f"{self.label} ended {self.lag_bytes} bytes behind, more than max_lag_bytes={max_lag_bytes}"
        return None


class ConnectorHook(BaseHook, ABC):
    """Common interface of the four connector hooks (same names, same return types).

    Connectors are plain dicts as the API returns them (the API's own shape); the id is always under
    ``connector_id_key``. Every method raises :class:`airflow_connectors.hooks.http.ApiError` (or a subclass) for
    API errors and ``ValueError`` naming the field for input rejected locally before any request.
    """

    conn_type: ClassVar[str]
    default_conn_name: ClassVar[str]
    hook_name: ClassVar[str]
    conn_name_attr: ClassVar[str] = "conn_id"
    connector_id_key: ClassVar[str] = "id"
    # Poll failures a wait rides out until its deadline (the HTTP layer already spent its retries on them).
    transient_errors: ClassVar[tuple[type[Exception], ...]] = ()
    # Whether the API gives each sync an id. Without one (Fivetran) a sync is told apart from earlier ones only by
    # when it ended, so a sync this task did not start is referred to by a time (:meth:`sync_ended_after`).
    has_run_ids: ClassVar[bool] = True
    # Whether a run can compare the replica with its source (:meth:`verification_error` says how it went).
    can_verify: ClassVar[bool] = False

    def __init__(self, conn_id: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id or self.default_conn_name

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

    def sync_ended_after(self, connector_id: str, moment: datetime) -> SyncRef:
        """The first sync of ``connector_id`` to end after ``moment``, for APIs without run ids."""
        raise ValueError(f"completed_after: {self.conn_type} syncs have run ids; pass run_id or sync_ref instead")

    # -- waiting ----------------------------------------------------------------------------------------------
    def poll_sync(self, ref: SyncRef) -> SyncStatus | None:
        """One status read, logged; ``None`` when it failed transiently (see :attr:`transient_errors`)."""
        try:
            status = self.get_sync_status(ref)
        except self.transient_errors as exc:
            self.log.warning("polling run %s failed, will retry: %s", ref.run_id, exc)
            return None
        self.log.info("%s", status.describe())
        return status

    async def apoll_sync(self, ref: SyncRef) -> SyncStatus | None:
        """The async twin of :meth:`poll_sync`, for triggers."""
        try:
            status = await self.aget_sync_status(ref)
        except self.transient_errors as exc:
            self.log.warning("polling run %s failed, will retry: %s", ref.run_id, exc)
            return None
        self.log.info("%s", status.describe())
        return status

    def wait_for_sync(self, ref: SyncRef, *, deadline: float | None, poll_interval: float) -> SyncStatus | None:
        """Poll until the sync ends or the deadline (epoch seconds) passes, on :func:`~airflow_connectors.waiting.
        poll_schedule` (the trigger's async loop runs on the same schedule).

        Returns the last status read: ended, or still running (``None`` if no read succeeded) when the deadline
        came first, for the caller to cancel or fail. Errors other than transient ones propagate.
        """
        status: SyncStatus | None = None
        for pause in poll_schedule(deadline, poll_interval):
            time.sleep(pause)
            status = self.poll_sync(ref) or status
            if status is not None and status.state.terminal:
                break
        return status

    def wait_cancelled(self, ref: SyncRef, timeout: float = FORCE_CANCEL_TIMEOUT) -> None:
        """After :meth:`cancel_sync`: a cancellation is processed asynchronously (a worker's next heartbeat, an
        execution's next step), so ``force`` waits for the sync to end, boundedly, before starting the next one."""
        status = self.wait_for_sync(ref, deadline=time.time() + timeout, poll_interval=0.5)
        if status is None or not status.state.terminal:
            raise TimeoutError(f"sync {ref.run_id} did not end within {timeout:.0f}s of being cancelled")

    # -- lineage ----------------------------------------------------------------------------------------------
    def verification_error(self, ref: SyncRef) -> str | None:
        """Why sync ``ref`` does not prove its replica equal to the source (APIs that can verify: ``can_verify``)."""
        raise NotImplementedError(f"{self.conn_type} connections cannot verify a replica")

    def written_table_names(self, ref: SyncRef) -> tuple[str, ...]:
        """Tables (``schema.table``) a finished sync wrote, for APIs whose runs do not report them (asked of the
        API's configuration); none by default."""
        return ()

    def lineage_datasets(self, ref: SyncRef, tables: Sequence[str]) -> tuple[list[Dataset], list[Dataset]]:
        """OpenLineage inputs and outputs of a finished sync: by default the tables it wrote, under the
        connector (a SaaS API does not say where they live)."""
        return saas_datasets(self.conn_type, ref.connector_id, tables)

    # -- links ------------------------------------------------------------------------------------------------
    @abstractmethod
    def connector_url(self, connector_id: str) -> str | None: ...

    @abstractmethod
    def sync_url(self, ref: SyncRef) -> str | None: ...

    @abstractmethod
    def test_connection(self) -> tuple[bool, str]: ...
