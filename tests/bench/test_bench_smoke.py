"""The benchmark harness runs end to end at tiny sizes (speed goals live in bench/, never in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_bench_measures_every_scenario_and_writes_the_report(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench", "--rows", "2000", "--transactions", "200", "--repeat", "1"]
    subprocess.run(
        [*command, "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=600,
        cwd=Path(__file__).resolve().parents[2],
    )
    results = json.loads((tmp_path / "results.json").read_text())
    snapshot, update, stream = results["snapshot"][0], results["update"], results["stream"]
    assert [snapshot["ours_error"], update["ours_error"], stream["ours_error"]] == [None, None, None]
    assert snapshot["rows"] == 2000 and snapshot["native_s"] > 0 and snapshot["copy_pipe_s"] > 0
    assert snapshot["ours_s"] > 0 and snapshot["ours_rss_mb"] > 0
    assert update["native_s"] > 0 and update["ours_s"] > 0 and update["ours_rows"] == 2000
    assert stream["native"]["lag_s"] >= 0 and stream["ours"]["lag_s"] >= 0 and stream["ours_rss_mb"] > 0
    verify = results["verify"]
    assert verify["ours_error"] is None and verify["ours_s"] > 0 and verify["whole_table_s"] > 0
    assert verify["corruption_caught"] is True
    report = (tmp_path / "RESULTS.md").read_text()
    assert "| verification of a 2,000-row replica" in report
    assert "| snapshot of 2,000 rows |" in report and "Reproduce: `python -m bench --rows 2000" in report
    assert "## Missing figures" not in report
