"""Create, patch and sync connectors on any connector API; the hook is chosen from the connection's type.

The sync operator is built around what users of the Fivetran / Airbyte / dbt Cloud providers hit: it tracks the
run by the API's own reference, re-attaches to the run an earlier try started instead of starting a duplicate,
cancels the external run when ``timeout`` or ``execution_timeout`` passes (also while deferred), and treats a
cancelled run as a failure.

Re-attaching uses Airflow 3.3's task state store (the store behind ``ResumableJobMixin``; the mixin's
submit-then-block flow fits neither deferral nor runs this task does not own): the run a try started is kept
there, and the next try waits for it while it is still going. When the store has nothing (a worker lost between
starting the run and recording it), the API's refusal to start a second run (CDC core 409 ``run_active``) leads to
:meth:`ConnectorHook.find_active_sync` and that run is awaited instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from airflow.sdk import AssetAlias, BaseOperator, conf
from airflow.sdk.exceptions import AirflowException

from airflow_connectors.assets import emit_table_assets
from airflow_connectors.hooks.base import ConnectorHook, SyncRef, SyncState, SyncStatus
from airflow_connectors.hooks.http import ApiConflict, ApiError, ApiNotFound
from airflow_connectors.hooks.registry import get_hook, hook_for
from airflow_connectors.links import CONNECTOR_URL_KEY, RUN_URL_KEY, ConnectorLink, ConnectorRunLink
from airflow_connectors.templated import as_bool, as_resync, load_json_object
from airflow_connectors.triggers.sync import SyncEvent, SyncTrigger
from airflow_connectors.waiting import defer_timeout, wait_deadline

IfExists = Literal["fail", "reuse", "update"]


def _dag_dir(context: Any) -> Path | None:
    dag = context.get("dag")
    return Path(dag.fileloc).parent if dag is not None and dag.fileloc else None


def _push_url(context: Any, key: str, url: str | None) -> None:
    if url:
        context["ti"].xcom_push(key=key, value=url)


class CreateConnectorOperator(BaseOperator):
    """Create a connector from ``body``; idempotent by name.

    :param conn_id: Airflow connection of the connector API (its type picks the hook).
    :param body: the connector in the API's own shape: a dict, a JSON string, or a JSON file path (templated).
    :param if_exists: when a connector with this name (or, for APIs where the body carries the id, this id)
        exists: ``fail``, ``reuse`` it as is, or ``update`` it with ``body`` (merge patch, validated locally first).
    :param name: the name to look up; defaults to ``body["name"]``.
    :return: the connector id (XCom ``return_value``).
    """

    template_fields: Sequence[str] = ("conn_id", "body", "name")
    template_fields_renderers = {"body": "json"}
    operator_extra_links = (ConnectorLink(),)

    def __init__(
        self,
        *,
        conn_id: str,
        body: dict[str, Any] | str,
        if_exists: IfExists = "fail",
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if if_exists not in ("fail", "reuse", "update"):
            raise ValueError(f"if_exists: expected fail, reuse or update, got {if_exists!r}")
        self.conn_id = conn_id
        self.body = body
        self.if_exists = if_exists
        self.name = name

    def execute(self, context: Any) -> str:
        hook = get_hook(self.conn_id)
        body = load_json_object(self.body, field="body", base_dir=_dag_dir(context))
        existing = self._existing(hook, body)
        if existing is None:
            created = hook.create_connector(body, idempotency_key=self._idempotency_key(context))
            connector_id = str(created[hook.connector_id_key])
            self.log.info("created connector %s", connector_id)
        else:
            connector_id = str(existing[hook.connector_id_key])
            if self.if_exists == "fail":
                raise AirflowException(f"connector {connector_id} already exists (if_exists='fail')")
            if self.if_exists == "update":
                patch = {key: value for key, value in body.items() if key != hook.connector_id_key}
                hook.validate_patch(patch, existing)
                hook.patch_connector(connector_id, patch)
                self.log.info("updated existing connector %s", connector_id)
            else:
                self.log.info("reusing existing connector %s", connector_id)
        _push_url(context, CONNECTOR_URL_KEY, hook.connector_url(connector_id))
        return connector_id

    def _existing(self, hook: ConnectorHook, body: dict[str, Any]) -> dict[str, Any] | None:
        name = self.name or body.get("name")
        if name:
            try:
                found = hook.find_connector_by_name(str(name))
            except ValueError:
                if self.if_exists != "fail":
                    raise  # reuse / update need the lookup; the hook says why it cannot
                self.log.info("this API cannot look connectors up by name: creating without checking")
                found = None
            if found is not None:
                return found
        own_id = body.get(hook.connector_id_key)
        if own_id:
            try:
                return hook.get_connector(str(own_id))
            except ApiNotFound:
                return None
        return None

    def _idempotency_key(self, context: Any) -> str:
        """The same key on every try of this task instance: a retried create does not create twice."""
        ti = context["ti"]
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}"))


class PatchConnectorOperator(BaseOperator):
    """Merge-patch a connector, after checking locally what the API would reject (immutable fields, value sets).

    :param patch: RFC 7396 merge patch: a dict, a JSON string or a JSON file path (templated).
    :return: the connector id.
    """

    template_fields: Sequence[str] = ("conn_id", "connector_id", "patch")
    template_fields_renderers = {"patch": "json"}
    operator_extra_links = (ConnectorLink(),)

    def __init__(self, *, conn_id: str, connector_id: str, patch: dict[str, Any] | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.connector_id = connector_id
        self.patch = patch

    def execute(self, context: Any) -> str:
        hook = get_hook(self.conn_id)
        patch = load_json_object(self.patch, field="patch", base_dir=_dag_dir(context))
        hook.validate_patch(patch, hook.get_connector(self.connector_id))
        hook.patch_connector(self.connector_id, patch)
        self.log.info("patched connector %s (fields: %s)", self.connector_id, ", ".join(sorted(patch)))
        _push_url(context, CONNECTOR_URL_KEY, hook.connector_url(self.connector_id))
        return self.connector_id


class SyncConnectorOperator(BaseOperator):
    """Trigger a sync / replication run and, unless ``wait_for_completion=False``, wait for it.

    :param conn_id: Airflow connection of the connector API (its type picks the hook).
    :param connector_id: the connector (templated; Polytomic: the bulk sync's id, or the model sync's id with
        ``sync_options={"sync_kind": "model"}``).
    :param resync: ``False``, ``True`` for a full historical resync, or the tables to resync: ``["schema.table"]``
        or ``{"schema": ["table"]}`` (Fivetran, for names with dots).
    :param force: start even if a sync is in progress (Fivetran ``force``; CDC core and Polytomic: the active run
        is cancelled and this one started once it has ended).
    :param schedule: set the connector's schedule first (CDC core: ``interval_seconds`` / ``cron``; Polytomic: the
        bulk sync's default schedule, ``frequency`` / ``minute`` / ``hour`` / ``day_of_week`` / ``day_of_month`` /
        ``month``; Fivetran: ``sync_frequency`` / ``daily_sync_time`` / ``schedule_type``), validated by the hook.
    :param unpause: resume a paused connector first.
    :param sync_options: vendor-only options passed to the hook's ``trigger_sync`` (e.g. CDC ``mode``,
        Polytomic ``fetch_mode``).
    :param poll_interval: seconds between status polls.
    :param timeout: seconds (or timedelta) to wait; then the run is cancelled and the task fails. The task's
        ``execution_timeout`` does the same, deferred or not.
    :param deferrable: wait in the triggerer (default: ``[operators] default_deferrable``).
    :param wait_for_completion: ``False`` returns as soon as the run started.
    :param verify: CDC core: the run also compares every table's source and sink at one consistent point; the
        task fails (naming tables and keys) unless the run verified the replica equal.
    :param emit_assets: on success, add an asset event per table written, through the outlet alias
        ``airflow_connectors:<conn_id>:<task_id>`` (URIs: :func:`airflow_connectors.assets.table_asset_uri`).
    :return: the run reference (:meth:`SyncRef.to_dict`); pushes ``run_url`` and ``connector_url``; the last
        status summary goes to XCom ``sync_result``.
    """

    template_fields: Sequence[str] = (
        "conn_id",
        "connector_id",
        "resync",
        "force",
        "unpause",
        "schedule",
        "sync_options",
        "verify",
    )
    operator_extra_links = (ConnectorRunLink(), ConnectorLink())
    # Key of the started run in the task state store: a retry re-attaches to it while it is still going.
    state_key = "sync_ref"

    def __init__(
        self,
        *,
        conn_id: str,
        connector_id: str,
        resync: bool | list[str] | dict[str, list[str]] | str = False,
        force: bool | str = False,
        schedule: dict[str, Any] | None = None,
        unpause: bool | str = False,
        sync_options: dict[str, Any] | None = None,
        poll_interval: float = 30.0,
        timeout: float | timedelta | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        wait_for_completion: bool = True,
        verify: bool | str = False,
        emit_assets: bool = True,
        **kwargs: Any,
    ) -> None:
        self.asset_alias = f"airflow_connectors:{conn_id}:{kwargs.get('task_id')}"
        if emit_assets:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), AssetAlias(self.asset_alias)]
        super().__init__(**kwargs)
        if poll_interval <= 0:
            raise ValueError("poll_interval: must be > 0")
        self.conn_id = conn_id
        self.connector_id = connector_id
        self.resync = resync
        self.force = force
        self.schedule = schedule
        self.unpause = unpause
        self.sync_options = sync_options or {}
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.deferrable = deferrable
        self.wait_for_completion = wait_for_completion
        self.verify = verify
        self.emit_assets = emit_assets
        self._owned: SyncRef | None = None  # the run this try started or re-attached to (cancelled by on_kill)

    # -- execute ----------------------------------------------------------------------------------------------
    def execute(self, context: Any) -> dict[str, Any]:
        hook = get_hook(self.conn_id)
        ti = context["ti"]
        deadline = wait_deadline(
            timeout=self.timeout, execution_timeout=self.execution_timeout, started_at=ti.start_date
        )
        ref, owned = self._resume_or_start(hook, context)
        _push_url(context, RUN_URL_KEY, hook.sync_url(ref))
        _push_url(context, CONNECTOR_URL_KEY, hook.connector_url(ref.connector_id))
        if not self.wait_for_completion:
            return ref.to_dict()
        if owned:
            self._owned = ref
        if self.deferrable:
            status = hook.poll_sync(ref)
            if status is None or not status.state.terminal:
                self._defer(ref, deadline, owned)
        else:
            status = hook.wait_for_sync(ref, deadline=deadline, poll_interval=self.poll_interval)
        if status is None or not status.state.terminal:
            outcome = self._cancel(hook, ref) if self._owned is not None else "run left running"
            raise AirflowException(
                f"connector {ref.connector_id} run {ref.run_id} still running at the deadline; {outcome}"
            )
        return self._finish(context, status)

    def execute_complete(
        self, context: Any, event: dict[str, Any], awaited: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume from the trigger: check the event is for the awaited run, then succeed or fail with its error.

        ``awaited`` comes from the defer kwargs; ``dag.test()`` drops those, so the task state store (where the
        run this task started is kept) is the fallback."""
        known = SyncRef.from_dict(awaited) if awaited else self._stored_ref(context)
        expected = known or SyncRef.from_dict((event or {}).get("ref") or {"conn_type": "", "connector_id": ""})
        ended = SyncEvent.from_payload(event, expected)
        if ended.status == "timeout":
            raise AirflowException(f"connector {expected.connector_id} run {expected.run_id}: {ended.message}")
        if ended.sync is None:  # polling failed for good (an error event without a final state)
            raise AirflowException(ended.message)
        return self._finish(context, ended.sync)

    def on_kill(self) -> None:
        """Killed, or ``execution_timeout`` passed while polling: do not leave the run behind."""
        if self._owned is not None:
            self._cancel(hook_for(self._owned.conn_type, self.conn_id), self._owned)

    # -- steps ------------------------------------------------------------------------------------------------
    def _resume_or_start(self, hook: ConnectorHook, context: Any) -> tuple[SyncRef, bool]:
        """The run to wait for and whether this task owns it: the still-running run of an earlier try, else a
        new one (or, when the API refuses because a run is active, that run)."""
        stored = self._stored_ref(context)
        if stored is not None:
            status = hook.get_sync_status(stored)
            if status.state is SyncState.RUNNING:
                self.log.info("re-attaching to run %s started by an earlier try", stored.run_id)
                return stored, True
            self.log.info("run %s of an earlier try ended %s: starting a new one", stored.run_id, status.raw_state)
        resync, force = as_resync(self.resync), as_bool(self.force, field="force")
        if isinstance(resync, dict) and not getattr(hook, "resync_takes_schema_map", False):
            raise ValueError(
                f'resync: {type(hook).__name__} takes ["schema.table", ...], not a {{schema: [tables]}} map'
            )
        if self.schedule:
            hook.set_schedule(self.connector_id, self.schedule)
            self.log.info("schedule of connector %s set", self.connector_id)
        if as_bool(self.unpause, field="unpause"):
            hook.resume_connector(self.connector_id)
            self.log.info("connector %s resumed", self.connector_id)
        owned = True
        try:
            verify = {"verify": True} if self._verifying(hook) else {}
            ref = hook.trigger_sync(
                self.connector_id,
                resync=resync,  # type: ignore[arg-type]  # a schema map only reaches hooks that take one (above)
                force=force,
                **self.sync_options,
                **verify,
            )
            self.log.info("started run %s of connector %s", ref.run_id, self.connector_id)
        except ApiConflict as exc:
            active = hook.find_active_sync(self.connector_id)
            if active is None:
                raise
            if resync:
                raise AirflowException(
                    f"connector {self.connector_id} has an active run {active.run_id}; the requested resync "
                    "cannot start before it ends"
                ) from exc
            self.log.warning(
                "connector %s already has an active run %s: waiting for it instead of starting another",
                self.connector_id,
                active.run_id,
            )
            ref, owned = active, False
        store = context.get("task_state_store")
        if store is not None and owned:  # only a run this task started is re-attached to (and cancelled) later
            store.set(self.state_key, ref.to_dict())
        return ref, owned

    def _verifying(self, hook: ConnectorHook) -> bool:
        if not as_bool(self.verify, field="verify"):
            return False
        if not hook.can_verify:
            raise ValueError(f"verify: only CDC core connections can verify a replica ({self.conn_id} is not one)")
        return True

    def _stored_ref(self, context: Any) -> SyncRef | None:
        store = context.get("task_state_store")
        stored = store.get(self.state_key) if store is not None else None
        return SyncRef.from_dict(stored) if isinstance(stored, dict) else None

    def _defer(self, ref: SyncRef, deadline: float | None, owned: bool) -> None:
        trigger = SyncTrigger(
            conn_id=self.conn_id,
            ref=ref.to_dict(),
            deadline=deadline,
            poll_interval=self.poll_interval,
            owns_run=owned,
        )
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            kwargs={"awaited": ref.to_dict()},
            timeout=defer_timeout(deadline),
        )

    def _cancel(self, hook: ConnectorHook, ref: SyncRef) -> str:
        try:
            cancelled = hook.cancel_sync(ref)
        except Exception as exc:
            self.log.warning("cancelling run %s failed: %s", ref.run_id, exc)
            return f"cancelling the run failed: {exc}"
        self._owned = None
        self.log.info("run %s cancelled" if cancelled else "run %s: this API cannot cancel it", ref.run_id)
        return "run cancelled" if cancelled else "this API cannot cancel the run"

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Source tables -> sink tables of the finished sync, for the OpenLineage provider (when installed)."""
        status = getattr(self, "_finished", None)
        if status is None or not status.tables:
            return None
        from airflow_connectors.lineage import operator_lineage

        return operator_lineage(*get_hook(self.conn_id).lineage_datasets(status.ref, status.tables))

    def _with_written_tables(self, status: SyncStatus) -> SyncStatus:
        """A SaaS sync's tables come from the API's configuration, not the run: asked once it succeeded. Not
        knowing them costs the assets and lineage of this run, never the run's success."""
        try:
            return replace(status, tables=get_hook(self.conn_id).written_table_names(status.ref))
        except ApiError as exc:
            self.log.warning("the tables this sync wrote are unknown (no assets, no lineage): %s", exc)
            return status

    def _finish(self, context: Any, status: SyncStatus) -> dict[str, Any]:
        self._owned = None
        error = status.failure()
        if not error and self._verifying(hook := get_hook(self.conn_id)):
            error = hook.verification_error(status.ref)
        if error:
            raise AirflowException(error)
        if status.state is SyncState.SUCCESS and not status.tables:
            status = self._with_written_tables(status)
        summary = {k: v for k, v in status.to_dict().items() if k not in ("details", "ref")}
        context["ti"].xcom_push(key="sync_result", value=summary)
        self._finished = status  # what get_openlineage_facets_on_complete reports
        if self.emit_assets and status.tables:
            uris = emit_table_assets(context, self.asset_alias, status)
            self.log.info("asset events for %d tables", len(uris))
        self.log.info("%s", status.describe())
        return status.ref.to_dict()
