"""The real Airflow UI shows our DAGs and the cdc_resync trigger form (needs Playwright, in the test extra, and the
system's chromium package; see :func:`tests.ui.browser.require_browser`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ui.browser import require_browser


@pytest.mark.slow
@pytest.mark.airflow
@pytest.mark.first
def test_dag_list_and_trigger_form_render(tmp_path: Path) -> None:
    require_browser()
    from tests.ui.airflow_ui import screenshot

    shots = screenshot(tmp_path)
    assert [path.name for path in shots] == ["dag_list.png", "cdc_resync_trigger_form.png"]
    assert all(path.stat().st_size > 10_000 for path in shots)
