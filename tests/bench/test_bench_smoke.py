"""The benchmark harness runs end to end at tiny sizes (speed goals live in bench/, never in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_bench_runs_and_reports_every_scenario(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "bench", "--rows", "3000", "--transactions", "400", "--out", str(tmp_path)],
        check=True, capture_output=True, timeout=600, cwd=Path(__file__).resolve().parents[2],
    )
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["snapshot"][0]["rows"] == 3000 and results["snapshot"][0]["ours_s"] > 0
    assert results["update"]["native_s"] > 0 and results["stream"]["ours_lag_s"] >= 0
    assert "| snapshot 3,000 rows |" in (tmp_path / "RESULTS.md").read_text()
