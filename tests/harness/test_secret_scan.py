"""The suite-wide secret scan finds a registered secret in captured output and in log files."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[2]
CONFTEST = f"import sys\nsys.path.insert(0, {str(ROOT)!r})\npytest_plugins = ['tests.fixtures.secret_scan']\n"


@pytest.fixture(autouse=True)
def only_the_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    """The inner sessions load the scan alone: importing every installed plugin costs each one about 4 s."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def test_a_leaked_secret_fails_the_session(pytester) -> None:  # type: ignore[no-untyped-def]
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        from tests.fixtures.secret_scan import register_secret

        def test_prints_a_secret():
            register_secret("s3cret-value-123")
            print("connecting with s3cret-value-123")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*known test secrets leaked into: *test_prints_a_secret*"])
    assert "connecting with" not in "\n".join(line for line in result.outlines if "leaked" in line)


def test_a_leak_in_a_pytest_xdist_worker_fails_the_session(pytester) -> None:  # type: ignore[no-untyped-def]
    """`make test` runs the suite in workers: a worker's exit status is not the session's, so its leaks must reach
    the controller."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        from tests.fixtures.secret_scan import register_secret

        def test_prints_a_secret():
            register_secret("s3cret-value-456")
            print("connecting with s3cret-value-456")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "xdist.plugin", "-n", "1")
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*known test secrets leaked into: *test_prints_a_secret*"])


def test_log_files_are_scanned(pytester, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "service.log"
    log.write_text("token=t0ken-abcdefgh\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        f"""
        from pathlib import Path
        from tests.fixtures.secret_scan import register_log_dir, register_secret

        def test_registers():
            register_secret("t0ken-abcdefgh")
            register_log_dir(Path({str(tmp_path)!r}))
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 1
    result.stdout.fnmatch_lines([f"*leaked into: {log}*"])
