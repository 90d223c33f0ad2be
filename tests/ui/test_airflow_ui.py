"""The real Airflow UI shows our DAGs and the cdc_resync trigger form (needs Chromium and Playwright, which the
``ui`` extra and the system's chromium package provide; skipped where they are not installed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.ui.airflow_ui import CHROMIUM


@pytest.mark.slow
@pytest.mark.airflow
def test_dag_list_and_trigger_form_render(tmp_path: Path) -> None:
    pytest.importorskip("playwright", reason="install the 'ui' extra for the browser test")
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from tests.ui.airflow_ui import screenshot

    shots = screenshot(tmp_path)
    assert [path.name for path in shots] == ["dag_list.png", "cdc_resync_trigger_form.png"]
    assert all(path.stat().st_size > 10_000 for path in shots)
