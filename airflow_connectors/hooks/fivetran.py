"""Hook of the Fivetran REST API (connection type ``fivetran_api``): connections, syncs, resyncs, setup tests.

Connection: API key in ``login``, API secret in ``password`` (HTTP Basic); ``host`` empty for
https://api.fivetran.com. Fivetran has no sync ids, so a sync is tracked the way its API allows: ``succeeded_at``
and ``failed_at`` are recorded just before triggering (``SyncRef.baseline``) and the sync has ended when one of
them moves past that baseline. ``rescheduled`` syncs (waiting for source quota) keep running until
``rescheduled_for``; a manual connection is then triggered again, since nothing else would start it.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from airflow_connectors.hooks.base import SyncRef, SyncState, SyncStatus
from airflow_connectors.hooks.http import ApiNotFound, HttpApiHook
from airflow_connectors.lineage import Dataset, fivetran_datasets

log = logging.getLogger(__name__)
API = "/v1/connections"
SYNC_FREQUENCIES = frozenset({1, 5, 15, 30, 60, 120, 180, 360, 480, 720, 1440})
# The fields of Fivetran's OpenAPI (UpdateConnectorRequest, NewConnectorRequestV1 with the per-service config /
# auth / external_secrets_keys_config) by type; tests/hooks/test_fivetran_openapi.py holds them to the document.
ENUMS: dict[str, frozenset[str]] = {
    "schedule_type": frozenset({"auto", "manual"}),
    "data_delay_sensitivity": frozenset({"LOW", "NORMAL", "HIGH", "CUSTOM", "SYNC_FREQUENCY"}),
    "networking_method": frozenset({"Directly", "PrivateLink", "SshTunnel", "ProxyAgent"}),
    "schema_status": frozenset({"blocked_on_capture", "ready"}),
    "destination_schema_names": frozenset({"FIVETRAN_NAMING", "SOURCE_NAMING"}),
}
BOOLEANS = frozenset(
    {"paused", "pause_after_trial", "is_historical_sync", "trust_certificates", "trust_fingerprints", "run_setup_tests"}
)
STRINGS = frozenset(
    {
        "group_id",
        "service",
        "daily_sync_time",
        "hybrid_deployment_agent_id",
        "proxy_agent_id",
        "private_link_id",
        "external_secrets_manager_id",
    }
)
# Service-specific objects (checked by Fivetran against the service), and the two with a fixed shape.
OBJECTS = frozenset(
    {"config", "auth", "external_secrets_keys_config", "destination_configuration", "connect_card_config"}
)
# Setup-test switches: they are not stored, so a PATCH made only of them changes nothing (Fivetran rejects it).
SETUP_TEST_SWITCHES = frozenset({"trust_certificates", "trust_fingerprints", "run_setup_tests"})
COMMON_FIELDS = frozenset(
    {*BOOLEANS, *STRINGS, *OBJECTS, *ENUMS, "sync_frequency", "data_delay_threshold"}
    - {"group_id", "service", "connect_card_config", "destination_schema_names", "is_historical_sync", "schema_status"}
)
PATCH_FIELDS = COMMON_FIELDS | {"is_historical_sync", "schema_status"}
CREATE_FIELDS = COMMON_FIELDS | {"group_id", "service", "connect_card_config", "destination_schema_names"}
SCHEDULE_FIELDS = frozenset({"sync_frequency", "daily_sync_time", "schedule_type"})
DAILY_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def _moment(value: Any, field: str) -> datetime | None:
    """A timestamp of the API, or None for "never". Recorded payloads carry ``"null"`` strings and worse: an
    unreadable value is taken as unknown (with a warning) instead of failing the status read that met it."""
    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        log.warning("Fivetran %s %r is not an ISO 8601 timestamp: taken as unknown", field, value)
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def validate_fields(fields: dict[str, Any], current: dict[str, Any] | None = None, *, creating: bool = False) -> None:
    """What Fivetran would refuse in a create / PATCH body, as ``ValueError`` naming the field."""
    if not isinstance(fields, dict):
        raise ValueError("body: expected a JSON object")
    allowed = CREATE_FIELDS if creating else PATCH_FIELDS
    for key, value in fields.items():
        if key not in allowed:
            what = "a field of new Fivetran connections" if creating else "a field Fivetran's PATCH accepts"
            raise ValueError(f"{key}: not {what} ({', '.join(sorted(allowed))})")
        if key in BOOLEANS and not isinstance(value, bool):
            raise ValueError(f"{key}: expected true or false")
        if key in ENUMS and value not in ENUMS[key]:
            raise ValueError(f"{key}: {value!r} is not one of {', '.join(sorted(ENUMS[key]))}")
        if key in STRINGS and not isinstance(value, str):
            raise ValueError(f"{key}: expected a string")
        if key in OBJECTS and not isinstance(value, dict):
            raise ValueError(f"{key}: expected an object")
    card = fields.get("connect_card_config")
    if card is not None and not isinstance(card.get("redirect_uri"), str):
        raise ValueError("connect_card_config.redirect_uri: required (the https URL to return to after setup)")
    if "sync_frequency" in fields:
        frequency = fields["sync_frequency"]
        if isinstance(frequency, bool) or frequency not in SYNC_FREQUENCIES:
            raise ValueError(f"sync_frequency: {frequency!r} is not one of {sorted(SYNC_FREQUENCIES)} (minutes)")
    if "data_delay_threshold" in fields:
        threshold = fields["data_delay_threshold"]
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise ValueError("data_delay_threshold: expected a non-negative integer (minutes)")
    if "daily_sync_time" in fields:
        if not DAILY_TIME.match(fields["daily_sync_time"]):
            raise ValueError(f"daily_sync_time: {fields['daily_sync_time']!r} is not HH:MM")
        frequency = fields.get("sync_frequency", (current or {}).get("sync_frequency"))
        if frequency != 1440:
            raise ValueError("daily_sync_time: only allowed with sync_frequency 1440 (daily syncs)")
    if not creating:
        if fields and set(fields) <= SETUP_TEST_SWITCHES:
            raise ValueError(
                f"{', '.join(sorted(fields))}: setup-test switches alone change nothing; use run_setup_tests()"
            )
        trusts = {"trust_certificates", "trust_fingerprints"} & set(fields)
        if trusts and fields.get("run_setup_tests") is not True:
            raise ValueError(f"{sorted(trusts)[0]}: only meaningful together with run_setup_tests=true")


def sync_status(ref: SyncRef, connection: dict[str, Any], now: datetime | None = None) -> SyncStatus:
    """Where the sync started at ``ref`` stands, from the connection details alone (pure: easy to test)."""
    status = connection.get("status") or {}
    raw = str(status.get("sync_state", "unknown"))
    succeeded = _moment(connection.get("succeeded_at"), "succeeded_at")
    failed = _moment(connection.get("failed_at"), "failed_at")
    base_succeeded = _moment(ref.baseline.get("succeeded_at"), "succeeded_at")
    base_failed = _moment(ref.baseline.get("failed_at"), "failed_at")
    moved_success = succeeded is not None and (base_succeeded is None or succeeded > base_succeeded)
    moved_failure = failed is not None and (base_failed is None or failed > base_failed)
    details = {
        "sync_state": raw,
        "succeeded_at": connection.get("succeeded_at"),
        "failed_at": connection.get("failed_at"),
    }
    if failed is not None and moved_failure and (not moved_success or (succeeded is not None and failed >= succeeded)):
        warnings = "; ".join(str(w.get("message", w)) for w in status.get("warnings") or [] if w)
        tasks = "; ".join(str(t.get("message", t)) for t in status.get("tasks") or [] if t)
        reason = tasks or warnings or "see the connection's logs in the Fivetran dashboard"
        return SyncStatus(
            SyncState.FAILED, "failed", ref, f"Fivetran sync failed at {failed.isoformat()}: {reason}", details=details
        )
    if moved_success:
        return SyncStatus(SyncState.SUCCESS, "succeeded", ref, details=details)
    if connection.get("paused") or raw == "paused":
        return SyncStatus(
            SyncState.FAILED, raw, ref, "the connection was paused before the sync finished", details=details
        )
    if raw == "rescheduled":
        details["rescheduled_for"] = status.get("rescheduled_for")
        return SyncStatus(
            SyncState.RUNNING,
            raw,
            ref,
            f"waiting for source quota until {status.get('rescheduled_for')}",
            details=details,
        )
    return SyncStatus(SyncState.RUNNING, raw, ref, details=details)


@dataclass(frozen=True)
class SyncedTable:
    """One table a sync wrote: its source name and its name in the destination (Fivetran renames)."""

    source_schema: str
    source_table: str
    schema: str
    table: str

    @property
    def name(self) -> str:
        """``schema.table`` in the destination: what the asset and the lineage output are named after."""
        return f"{self.schema}.{self.table}"


def synced_tables(config: dict[str, Any], only: dict[str, list[str]] | None = None) -> list[SyncedTable]:
    """Enabled tables of a schema config (``GET /connections/{id}/schemas``), or of ``only`` (source names)."""
    found = []
    for source_schema, schema in sorted((config.get("schemas") or {}).items()):
        if not schema.get("enabled") and only is None:
            continue
        for source_table, table in sorted((schema.get("tables") or {}).items()):
            wanted = source_table in (only or {}).get(source_schema, ()) if only is not None else table.get("enabled")
            if wanted:
                dest_schema = schema.get("name_in_destination") or source_schema
                dest_table = table.get("name_in_destination") or source_table
                found.append(SyncedTable(source_schema, source_table, dest_schema, dest_table))
    return found


def _needs_manual_retrigger(connection: dict[str, Any], status: SyncStatus, now: datetime) -> bool:
    due = _moment((connection.get("status") or {}).get("rescheduled_for"), "status.rescheduled_for")
    return (
        status.raw_state == "rescheduled"
        and connection.get("schedule_type") == "manual"
        and (due is None or due <= now)
    )


class FivetranHook(HttpApiHook):
    """Fivetran connections (see the module docstring for the connection and how syncs are tracked).

    ``cancel_sync`` returns False: Fivetran's API cannot stop a sync (a timed-out task fails; the sync finishes).
    """

    conn_type = "fivetran_api"
    default_url = "https://api.fivetran.com"
    default_conn_name = "fivetran_default"
    hook_name = "Fivetran (airflow-connectors)"
    connector_id_key: ClassVar[str] = "id"
    resync_takes_schema_map: ClassVar[bool] = True  # {"schema": ["table"]}: the API's form, for dotted names
    base_headers = {"Accept": "application/json;version=2"}
    has_run_ids = False

    def auth_headers(self, conn: Any) -> dict[str, str]:
        if not conn.login or not conn.password:
            raise ValueError(f"connection {self.conn_id!r}: Fivetran needs the API key (login) and secret (password)")
        return self.basic_auth(conn.login, conn.password)

    def secrets(self, conn: Any) -> list[str]:
        return [value for value in (conn.password, conn.login) if value]

    def unwrap(self, payload: Any) -> Any:
        return payload.get("data", payload) if isinstance(payload, dict) else payload

    # -- connections --------------------------------------------------------------------------------------------
    def create_connector(self, body: dict[str, Any], *, idempotency_key: str | None = None) -> dict[str, Any]:
        """Create a connection (``group_id`` and ``service`` required). Fivetran has no idempotency keys: the
        create operator's ``if_exists`` (by schema name) is what makes retries safe."""
        fields = {key: value for key, value in body.items() if key != "id"}
        for required in ("group_id", "service"):
            if not fields.get(required):
                raise ValueError(f"{required}: required to create a Fivetran connection")
        validate_fields(fields, creating=True)
        return dict(self._call("POST", API, json=fields))

    def get_connector(self, connector_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"{API}/{connector_id}"))

    def list_connectors(self, group_id: str | None = None, page_size: int = 1000) -> list[dict[str, Any]]:
        """Every connection (following ``next_cursor``), optionally of one group."""
        params: dict[str, Any] = {"limit": page_size, **({"group_id": group_id} if group_id else {})}
        found: list[dict[str, Any]] = []
        while True:
            page = self._call("GET", API, params=params)
            found.extend(page.get("items") or [])
            if not page.get("next_cursor"):
                return found
            params["cursor"] = page["next_cursor"]

    def find_connector_by_name(self, name: str) -> dict[str, Any] | None:
        """Fivetran connections are named by their destination ``schema``."""
        return next((c for c in self.list_connectors() if c.get("schema") == name), None)

    def validate_patch(self, patch: dict[str, Any], current: dict[str, Any] | None = None) -> None:
        validate_fields(patch, current)

    def patch_connector(self, connector_id: str, patch: dict[str, Any]) -> dict[str, Any]:
        """PATCH merges natively on Fivetran (``config`` fields left out are kept)."""
        self.validate_patch(patch)
        return dict(self._call("PATCH", f"{API}/{connector_id}", json=patch))

    def delete_connector(self, connector_id: str) -> None:
        self._call("DELETE", f"{API}/{connector_id}")

    def set_schedule(self, connector_id: str, schedule: dict[str, Any]) -> dict[str, Any]:
        """``sync_frequency`` (minutes), ``daily_sync_time`` ("HH:MM", daily only), ``schedule_type``."""
        unknown = set(schedule) - SCHEDULE_FIELDS
        if unknown:
            raise ValueError(f"schedule.{sorted(unknown)[0]}: Fivetran schedules take {sorted(SCHEDULE_FIELDS)}")
        return self.patch_connector(connector_id, schedule)

    def pause_connector(self, connector_id: str) -> None:
        self.patch_connector(connector_id, {"paused": True})

    def resume_connector(self, connector_id: str) -> None:
        self.patch_connector(connector_id, {"paused": False})

    def run_setup_tests(
        self, connector_id: str, *, trust_certificates: bool = False, trust_fingerprints: bool = False
    ) -> dict[str, Any]:
        body = {"trust_certificates": trust_certificates, "trust_fingerprints": trust_fingerprints}
        return dict(self._call("POST", f"{API}/{connector_id}/test", json=body))

    # -- syncs ------------------------------------------------------------------------------------------------------
    def trigger_sync(
        self,
        connector_id: str,
        *,
        resync: bool | list[str] | dict[str, list[str]] = False,
        force: bool = False,
        **options: Any,
    ) -> SyncRef:
        """``/sync`` (``force`` restarts a running sync), ``/resync`` for ``resync=True``, or a table resync for
        ``resync=["schema.table", ...]`` or ``{"schema": ["table", ...]}`` (the API's own form, for names with
        dots). ``unpause=True`` resumes a paused connection first."""
        unpause = bool(options.pop("unpause", False))
        if options:
            raise ValueError(f"{sorted(options)[0]}: not an option of Fivetran syncs")
        tables = _tables_by_schema(resync) if isinstance(resync, (list, dict)) else None
        connection = self.get_connector(connector_id)
        if connection.get("paused"):
            if not unpause:
                raise ValueError(f"connector_id: Fivetran connection {connector_id} is paused; pass unpause=True")
            self.resume_connector(connector_id)
        baseline = {
            "succeeded_at": connection.get("succeeded_at"),
            "failed_at": connection.get("failed_at"),
            "kind": "resync" if resync else "sync",
            **({"tables": tables} if tables is not None else {}),  # what a table resync writes (lineage, assets)
        }
        if tables is not None:
            self._call("POST", f"{API}/{connector_id}/schemas/tables/resync", json=tables)
        elif resync:
            self._call("POST", f"{API}/{connector_id}/resync", json={})
        else:
            self._call("POST", f"{API}/{connector_id}/sync", json={"force": force})
        return SyncRef(conn_type=self.conn_type, connector_id=connector_id, baseline=baseline)

    def get_sync_status(self, ref: SyncRef) -> SyncStatus:
        connection = self.get_connector(ref.connector_id)
        status = sync_status(ref, connection)
        if _needs_manual_retrigger(connection, status, datetime.now(UTC)):
            self.log.info("Fivetran connection %s: quota wait over; triggering the manual sync again", ref.connector_id)
            self._call("POST", f"{API}/{ref.connector_id}/sync", json={"force": False})
        return status

    async def aget_sync_status(self, ref: SyncRef) -> SyncStatus:
        connection = await self._acall("GET", f"{API}/{ref.connector_id}")
        status = sync_status(ref, connection)
        if _needs_manual_retrigger(connection, status, datetime.now(UTC)):
            await self._acall("POST", f"{API}/{ref.connector_id}/sync", json={"force": False})
        return status

    def sync_ended_after(self, connector_id: str, moment: datetime) -> SyncRef:
        """The baseline is the moment itself: only a success or failure stamped after it ends the wait."""
        stamp = moment.isoformat()
        return SyncRef(
            conn_type=self.conn_type, connector_id=connector_id, baseline={"succeeded_at": stamp, "failed_at": stamp}
        )

    def cancel_sync(self, ref: SyncRef) -> bool:
        return False

    async def acancel_sync(self, ref: SyncRef) -> bool:
        return False

    def find_active_sync(self, connector_id: str) -> SyncRef | None:
        connection = self.get_connector(connector_id)
        if (connection.get("status") or {}).get("sync_state") not in ("syncing", "rescheduled"):
            return None
        baseline = {"succeeded_at": connection.get("succeeded_at"), "failed_at": connection.get("failed_at")}
        return SyncRef(conn_type=self.conn_type, connector_id=connector_id, baseline=baseline)

    # -- what a sync writes (lineage, assets) -------------------------------------------------------------------------
    def schema_config(self, connector_id: str) -> dict[str, Any] | None:
        """The connection's schema config (schemas and tables, enabled, names in the destination); None for
        connectors that have none (Fivetran answers 404)."""
        try:
            return dict(self._call("GET", f"{API}/{connector_id}/schemas"))
        except ApiNotFound:
            return None

    def get_destination(self, group_id: str) -> dict[str, Any] | None:
        """The group's destination (service and config: where the tables are written), None when not visible."""
        try:
            return dict(self._call("GET", f"/v1/destinations/{group_id}"))
        except ApiNotFound:
            return None

    def written_tables(self, ref: SyncRef) -> list[SyncedTable]:
        """The tables the sync ``ref`` wrote: a table resync's tables, else every enabled table."""
        config = self.schema_config(ref.connector_id)
        return synced_tables(config or {}, ref.baseline.get("tables"))

    def written_table_names(self, ref: SyncRef) -> tuple[str, ...]:
        return tuple(table.name for table in self.written_tables(ref))

    def lineage_datasets(self, ref: SyncRef, tables: Sequence[str]) -> tuple[list[Dataset], list[Dataset]]:
        """Source tables in (database sources), destination tables out, in the warehouse the group writes to."""
        connection = self.get_connector(ref.connector_id)
        destination = self.get_destination(str(connection.get("group_id")))
        synced = [table for table in self.written_tables(ref) if table.name in tables]
        return fivetran_datasets(connection, destination, synced)

    # -- links -------------------------------------------------------------------------------------------------------
    def connector_url(self, connector_id: str) -> str | None:
        return f"https://fivetran.com/dashboard/connectors/{connector_id}"

    def sync_url(self, ref: SyncRef) -> str | None:
        return f"https://fivetran.com/dashboard/connectors/{ref.connector_id}/status"

    def test_connection(self) -> tuple[bool, str]:
        try:
            self._call("GET", API, params={"limit": 1})
        except Exception as exc:  # shown in the UI; the HTTP layer's messages carry no secret
            return False, str(exc)
        return True, "Fivetran API reachable, credentials accepted"


def _tables_by_schema(tables: list[str] | dict[str, list[str]]) -> dict[str, list[str]]:
    """The table-resync body: ``{"schema": ["table", ...]}`` given as is, or built from ``["schema.table", ...]``.

    A name with more than one dot is ambiguous (schemas and tables may both contain dots): it is refused with a
    pointer to the explicit form rather than split at a guess."""
    if isinstance(tables, dict):
        for schema, names in tables.items():
            if not isinstance(schema, str) or not schema:
                raise ValueError(f"resync: schema names must be non-empty strings, got {schema!r}")
            if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
                raise ValueError(f"resync.{schema}: expected a non-empty list of table names")
        if not tables:
            raise ValueError("resync: give at least one schema with tables, or True for a full historical resync")
        return {schema: list(names) for schema, names in tables.items()}
    grouped: dict[str, list[str]] = defaultdict(list)
    for name in tables:
        schema, dot, table = str(name).partition(".")
        if not dot or not schema or not table:
            raise ValueError(f'resync: tables must be written "schema.table", got {name!r}')
        if "." in table:
            raise ValueError(
                f'resync: {name!r} is ambiguous (which dot separates schema and table?); write {{"schema": ["table"]}}'
            )
        grouped[schema].append(table)
    if not grouped:
        raise ValueError("resync: give at least one table, or True for a full historical resync")
    return dict(grouped)
