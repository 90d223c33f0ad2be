"""The benchmark harness runs end to end at tiny sizes (speed goals live in bench/, never in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import report


@pytest.mark.slow
@pytest.mark.first
def test_bench_measures_every_scenario_both_ways_and_writes_the_report(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "bench", "--rows", "2000", "--transactions", "200", "--repeat", "1"]
    subprocess.run(
        [*command, "--servers", "18", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=900,
        cwd=Path(__file__).resolve().parents[2],
    )
    results = json.loads((tmp_path / "results.json").read_text())
    (server,) = results["servers"]
    snapshot, update, stream = server["snapshot"][0], server["update"], server["stream"]
    assert [snapshot["errors"], update["errors"], stream["errors"]] == [{}, {}, {}]
    assert server["release"] == 18 and snapshot["rows"] == 2000
    assert snapshot["native_s"] > 0 and snapshot["copy_pipe_s"] > 0 and snapshot["engine_s"] > 0
    assert snapshot["api_s"] > 0 and 0 < server["service_rss_mb"]
    for kind in ("catch_up", "continuous"):
        assert update[kind]["engine"]["from_start_s"] > 0 and update[kind]["api"]["from_start_s"] > 0
    assert update["catch_up"]["engine"]["rows"] == update["catch_up"]["api"]["rows"] == 2000
    assert stream["native"]["lag_s"] >= 0 and stream["ours"]["engine"]["lag_s"] >= 0
    assert stream["ours"]["api"]["lag_s"] >= 0
    text = (tmp_path / "RESULTS.md").read_text()
    assert "| snapshot of 2,000 rows (initial copy) |" in text and "Reproduce: `python -m bench --rows 2000" in text
    assert "## Missing figures" not in text
    readme = tmp_path / "README.md"  # the summary quotes the report's own figures
    readme.write_text(f"before\n{report.SUMMARY_START}\nold\n{report.SUMMARY_END}\nafter\n")
    report.write_summary(results, readme)
    summary = readme.read_text()
    assert "old" not in summary and summary.startswith("before\n") and summary.endswith("after\n")
    for row in report.rows_of(server):
        assert row["api"] in text and row["api"] in summary
