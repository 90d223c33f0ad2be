"""Extra links on the task page: the run (the CDC core console's run page, Fivetran / Polytomic sync page) and the
connector (the CDC core console's connector page, Fivetran connection dashboard, Polytomic connection page).

The operator asks its hook for the URLs while it runs and pushes them to XCom; the links only read them back, so
rendering a task page never calls an API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

RUN_URL_KEY = "run_url"
CONNECTOR_URL_KEY = "connector_url"


class ConnectorRunLink(BaseOperatorLink):
    """The sync / run this task started or watched."""

    name = "Connector run"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return XCom.get_value(ti_key=ti_key, key=RUN_URL_KEY) or ""


class ConnectorLink(BaseOperatorLink):
    """The connector this task acted on."""

    name = "Connector"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return XCom.get_value(ti_key=ti_key, key=CONNECTOR_URL_KEY) or ""
