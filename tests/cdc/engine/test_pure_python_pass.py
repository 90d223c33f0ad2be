"""The engine's end-to-end tests again, on the pure-Python hot path: the compiled one is optional, both must
replicate alike (the decoder and COPY-line unit tests run on both in every session already: the ``hot_path`` fixture).

The hot path is chosen once per process, at import (``engine/_accel.py``), so this pass is a pytest of its own with
``CDC_PURE_PYTHON=1``. It runs as one test of the main session rather than as a second pytest after it, so that under
pytest-xdist (``make test``) it takes one worker's time beside the rest of the suite instead of a sequential phase of
its own at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_connectors.cdc.engine import _accel

ROOT = Path(__file__).resolve().parents[3]
PURE_PYTHON_TESTS = (
    "tests/cdc/engine/test_run.py",
    "tests/cdc/engine/test_hard_cases.py",
    "tests/cdc/engine/test_streaming.py",
)
TIMEOUT = 1200  # seconds; the pass takes one to three minutes


@pytest.mark.slow
@pytest.mark.first
@pytest.mark.timeout(TIMEOUT + 60)
def test_the_engine_end_to_end_tests_pass_on_the_pure_python_hot_path(tmp_path: Path) -> None:
    if _accel.ACTIVE is _accel.PURE:
        pytest.skip("this session runs the pure-Python hot path already (CDC_PURE_PYTHON set, or nothing compiled)")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_XDIST_")}
    env["CDC_PURE_PYTHON"] = "1"
    command = [sys.executable, "-m", "pytest", "-m", "not slow", "-p", "no:cacheprovider", *PURE_PYTHON_TESTS]
    # Its own basetemp: a new numbered one would count towards pytest's rotation of this session's.
    command += ["--basetemp", str(tmp_path / "basetemp")]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    print(result.stdout, result.stderr, sep="\n")  # shown with the failure, like the inner session's own report
    assert "cdc engine hot path: python (CDC_PURE_PYTHON set)" in result.stdout
    assert result.returncode == 0, result.stdout.strip().splitlines()[-1]
